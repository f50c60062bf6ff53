"""Bad input through the whole planning path: logged, skipped or quarantined -- never a crash."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.pipeline.batch import plan_batch
from agent.pipeline.emails import plan_mail
from agent.pipeline.filters import Skip
from agent.pipeline.policy import Policy
from config import parse_settings
from connectors.errors import BadItem
from connectors.records import MailMessage
from tests.support.paths import FIXTURES

POLICY = Policy.from_settings(
    parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None),
    "robust",
    "me@northwind.example",
)

CORPUS = sorted(
    path
    for source in ("flanker", "mikel-mail", "cpython-test_email", "talon")
    for path in (FIXTURES / source).rglob("*")
    if path.is_file()
    and path.suffix in {".eml", ".txt", ".msg", ""}
    and path.name not in {"LICENSE", "ATTRIBUTION.md", "mailbox_valid.txt", "mailbox_invalid.txt"}
)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) > 100


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_real_messages_are_planned_skipped_or_quarantined(path: Path) -> None:
    message = MailMessage(path.name, "me@northwind.example", path.read_bytes())
    try:
        outcome = plan_mail(message, POLICY)
    except BadItem as exc:
        assert exc.reason
        return
    if isinstance(outcome, Skip):
        assert outcome.reason
    elif isinstance(outcome, list):  # an invitation: the meetings it announces
        assert all(planned.record.kind == "meeting" for planned in outcome)
    else:
        assert outcome.record.dedupe_key


HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Reply-To",
        "List-Id",
        "Auto-Submitted",
        "X-Gmail-Labels",
    ]
)


@st.composite
def raw_messages(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=80)), max_size=12))
    body = draw(st.binary(max_size=400))
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(raw_messages(), st.binary(max_size=600)))
def test_random_bytes_never_escape_as_an_exception(raw: bytes) -> None:
    message = MailMessage("fuzz", "me@northwind.example", raw)
    with contextlib.suppress(BadItem):
        plan_mail(message, POLICY)
    plan = plan_batch([message], POLICY)
    assert plan.logged + sum(plan.skipped.values()) + len(plan.write.quarantined) == 1
    assert not any(reason.startswith("unexpected") for _, _, reason in plan.write.quarantined)
