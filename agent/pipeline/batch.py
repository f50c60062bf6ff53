"""The pipeline: records in, a planned database write out -- filter, match, log.

Everything in ``agent.pipeline`` is pure: it decides what a batch means
(which interactions, which participants, who may become a contact, which
facts were observed, what was skipped and why) and hands ``storage.ingest``
a ``BatchWrite``. The sync pass then writes it, with the connector's cursor,
in one transaction. Mail goes through ``agent.pipeline.emails``, meetings
through ``agent.pipeline.meetings``.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.pipeline.emails import plan_mail
from agent.pipeline.filters import Skip
from agent.pipeline.meetings import plan_meeting, plan_replies
from agent.pipeline.planned import Answered, BatchPlan, Planned
from agent.pipeline.policy import Policy
from connectors.errors import BadItem
from connectors.records import (
    CalendarEvent,
    CalendarReply,
    Item,
    Limited,
    MailMessage,
    SourceRemoved,
    Unreadable,
)


def plan_batch(items: Sequence[Item], policy: Policy) -> BatchPlan:
    """What ``items`` mean for the database. Never raises for a bad item: it is quarantined."""
    plan = BatchPlan()
    for item in items:
        if isinstance(item, SourceRemoved):
            plan.write.removed.append((policy.connector, item.source_id))
            continue
        if isinstance(item, Unreadable):
            plan.write.quarantined.append((policy.connector, item.source_id, item.reason))
            continue
        if isinstance(item, Limited):
            plan.limited.append(item)
            continue
        if isinstance(item, CalendarReply):
            # an answer, not an interaction: it is applied, or counted as
            # rsvp_without_meeting by the write that finds no meeting for it
            plan.write.responses.extend(plan_replies([item], policy))
            continue
        try:
            outcome = _plan_item(item, policy)
        except BadItem as exc:
            plan.write.quarantined.append((policy.connector, item.source_id, exc.reason))
            continue
        except Exception as exc:  # a parser bug must cost one item, not the sync
            reason = f"unexpected {type(exc).__name__}: {exc}"
            plan.write.quarantined.append((policy.connector, item.source_id, reason))
            continue
        if isinstance(outcome, Skip):
            plan.skipped[outcome.reason] += 1
            if isinstance(outcome, Answered):
                plan.write.responses.extend(outcome.responses)
                plan.limited.extend(outcome.limited)
            if outcome.reason == "private_label":
                # also when the label came after the message was logged
                plan.write.withdrawn.append((policy.connector, item.source_id))
            continue
        for planned in [outcome] if isinstance(outcome, Planned) else outcome:
            plan.write.interactions.append(planned.record)
            plan.write.new_contacts.extend(planned.new_contacts)
            plan.write.facts.extend(planned.facts)
            plan.limited.extend(planned.limited)
        plan.logged += 1
    return plan


def _plan_item(item: MailMessage | CalendarEvent, policy: Policy) -> Planned | list[Planned] | Skip:
    return plan_mail(item, policy) if isinstance(item, MailMessage) else plan_meeting(item, policy)
