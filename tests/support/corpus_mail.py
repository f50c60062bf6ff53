"""The fixture corpora as mail one mailbox received, and a pass's worth of batches of it.

Planning tests (``agent.pipeline.workers``) feed real mail (replies, HTML,
8-bit, malformed, invitations) through the planner. A script run in a child
process imports these too, so they live here rather than in a test module.
"""

from __future__ import annotations

from typing import Any

from agent.pipeline.policy import Policy
from config import parse_settings
from connectors.records import Batch, MailMessage
from tests.support.paths import FIXTURES

ME = "alice@northwind.example"


def corpus_mail() -> list[MailMessage]:
    """Every .eml of the fixture corpora: replies, HTML, 8-bit, malformed, invitations."""
    paths = sorted(FIXTURES.rglob("*.eml"))
    assert len(paths) > 100
    return [MailMessage(f"eml-{n}", ME, path.read_bytes()) for n, path in enumerate(paths)]


def corpus_policy() -> Policy:
    """The policy of ``ME``'s mailbox, with northwind.example as the internal domain."""
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    return Policy.from_settings(settings, "corpus", ME)


def batches(items: list[Any], size: int) -> list[Batch]:
    """``items`` in batches of ``size``, each with a cursor naming the position after it."""
    return [
        Batch(items[start : start + size], {"position": start + size})
        for start in range(0, len(items), size)
    ]
