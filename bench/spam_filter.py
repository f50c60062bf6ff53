"""What the spam and junk filter makes of real spam and of real mail, through the planner.

Every message of the spam corpus (``tests/fixtures/spam``: Apache SpamAssassin's and
rspamd's samples, as upstream has them and as a receiving server stamped them) and of
the real-mail corpora (``tests/fixtures/{mikel-mail,mimekit-mbox,flanker,...}``) goes
through ``agent.pipeline.emails.plan_mail`` with ``auto_create_contacts =
"sent_and_received"``, as the agent would plan it. Printed, one JSON line per corpus:
how many messages, how many skipped by reason, how many logged and of those how many
made no contact for a weak spam signal; for real mail, how many were skipped as spam,
which of those are known spam, and the rest (false positives, which must be 0).

The figures count only what reaches the filters: with ``envelope_keeps_spam_headers``
false, ``agent.mail.envelope`` does not keep the headers the filter reads yet.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.mail.envelope import FILTER_HEADERS  # noqa: E402
from agent.pipeline.emails import plan_mail  # noqa: E402
from agent.pipeline.filters import Skip  # noqa: E402
from agent.pipeline.policy import Policy  # noqa: E402
from config import parse_settings  # noqa: E402
from connectors.errors import BadItem  # noqa: E402
from connectors.headers import SPAM_HEADERS  # noqa: E402
from connectors.records import MailMessage  # noqa: E402
from tests.agent.pipeline.test_spam import KNOWN_SPAM, REAL_MAIL, SPAM_REASONS  # noqa: E402
from tests.support.paths import FIXTURES  # noqa: E402

OWNER = "alice@northwind.example"
RECEIVED = datetime(2024, 3, 1, tzinfo=UTC)
"""When the mailbox received each message: what a connector reports besides the Date header,
and all some corpus messages without one have to be dated by."""


def _policy() -> Policy:
    agent = {"internal_domains": ["northwind.example"], "auto_create_contacts": "sent_and_received"}
    return Policy.from_settings(parse_settings({"agent": agent}, None), "bench", OWNER)


def _outcomes(paths: list[Path]) -> dict[str, Any]:
    """Each message planned: skipped by reason, quarantined, logged, logged without contacts."""
    policy = _policy()
    skipped: Counter[str] = Counter()
    spam_skipped: list[str] = []
    logged = without_contacts = quarantined = 0
    for n, path in enumerate(paths):
        try:
            item = MailMessage(f"bench-{n}", OWNER, path.read_bytes(), internal_date=RECEIVED)
            outcome = plan_mail(item, policy)
        except BadItem:
            quarantined += 1
            continue
        if isinstance(outcome, Skip):
            skipped[outcome.reason] += 1
            if outcome.reason in SPAM_REASONS:
                spam_skipped.append(path.relative_to(FIXTURES).as_posix())
            continue
        logged += 1
        plans = outcome if isinstance(outcome, list) else [outcome]
        if any(item.reason == "weak_spam_signal" for plan in plans for item in plan.limited):
            without_contacts += 1
    return {
        "total": len(paths),
        "skipped": dict(sorted(skipped.items())),
        "skipped_as_spam": len(spam_skipped),
        "spam_skipped_files": sorted(spam_skipped),
        "logged": logged,
        "logged_without_contacts": without_contacts,
        "quarantined": quarantined,
    }


def main() -> None:
    on_envelope = {name.lower() for name in SPAM_HEADERS} <= set(FILTER_HEADERS)
    spam = sorted(
        path
        for path in (FIXTURES / "spam").rglob("*")
        if path.is_file() and path.name not in ("LICENSE", "ATTRIBUTION.md")
    )
    spam_result = _outcomes(spam)
    spam_result.pop("spam_skipped_files")
    print(json.dumps({"corpus": "spam", "envelope_keeps_spam_headers": on_envelope, **spam_result}))
    real = _outcomes(list(REAL_MAIL))
    known = [name for name in real.pop("spam_skipped_files") if name in KNOWN_SPAM]
    real["known_spam"] = known
    real["false_positives"] = real["skipped_as_spam"] - len(known)
    print(json.dumps({"corpus": "real_mail", "envelope_keeps_spam_headers": on_envelope, **real}))


if __name__ == "__main__":
    main()
