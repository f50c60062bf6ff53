"""The mailbox driver: plans threads, renders their messages in date order, copies them per mailbox.

A first pass counts the threads it takes to put ``messages`` messages into
the requested mailboxes; a second spreads those threads over the date
window and renders through a heap of the threads in flight, so memory holds
open threads, never the mailbox, and the benchmark can stream 20,000
messages. Each copy adds what only its mailbox has: Delivered-To, the
sender's Bcc, Takeout's thread id and labels.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tests.support.mailgen.bulk import render_list, render_spam
from tests.support.mailgen.conversation import render_chat, render_conversation
from tests.support.mailgen.dates import (
    BASE_DATE,
    DEFAULT_DAYS,
    office_hours,
    schedule,
    thread_cap,
    thread_start,
)
from tests.support.mailgen.faults import render_bounce, render_malformed
from tests.support.mailgen.invites import render_invite
from tests.support.mailgen.people import PRIYA, World, build_world
from tests.support.mailgen.presets import BENCH_ATTACHMENT_BYTES, DEMO_MAILBOXES
from tests.support.mailgen.rendering import OpenThread, Rendered
from tests.support.mailgen.threads import Thread, plan_thread
from tests.support.mailgen.writing import text_context

TAKEOUT_LABELS = frozenset(
    {
        "Inbox",
        "Sent",
        "Important",
        "Starred",
        "Opened",
        "Unread",
        "Archived",
        "Spam",
        "Trash",
        "Chat",
        "Customers",
        "Category Promotions",
        "Category Updates",
        "Category Social",
        "Category Forums",
    }
)


@dataclass(frozen=True)
class Mail:
    """One generated message and its copy in each requested mailbox that holds it.

    The copies share a Message-ID but not all their bytes: a mailbox adds
    Delivered-To (mail it received), Bcc (mail it sent with one), and with
    ``takeout`` Google Takeout's ``X-GM-THRID`` and ``X-Gmail-Labels``.
    ``defect`` names the deliberate fault (one of ``MALFORMED``), if any.
    """

    message_id: str
    thread: int
    kind: str
    date: datetime
    defect: str | None
    copies: Mapping[str, bytes]


def iter_mail(
    seed: int,
    messages: int,
    contacts: int,
    *,
    mailboxes: Sequence[str] = DEMO_MAILBOXES,
    takeout: bool = False,
    days: int = DEFAULT_DAYS,
    base: datetime = BASE_DATE,
    attachment_bytes: tuple[int, int] = BENCH_ATTACHMENT_BYTES,
    attachment_share: float = 1.0,
) -> Iterator[Mail]:
    """``messages`` distinct messages that land in at least one of ``mailboxes``, oldest first.

    Streams: memory holds the threads in flight, not the mailbox.
    ``attachment_share`` keeps that share of the attachments threads plan
    (below 1, a benchmark's big attachments fit on a smaller disk).
    """
    if not 0 <= attachment_share <= 1:
        raise ValueError("attachment_share must be within 0..1")
    if days < 2:
        raise ValueError("days must be at least 2")
    world = build_world(seed, contacts)
    owners = tuple(world.member(m).email for m in mailboxes)
    wanted = frozenset(owners)
    threads = _threads_needed(world, seed, messages, wanted)
    cap = thread_cap(days)
    heap: list[tuple[datetime, int, int]] = []
    opened: dict[int, OpenThread] = {}
    emitted = 0
    for index in range(threads):
        thread = plan_thread(world, seed, index)
        if not thread.holders & wanted:
            continue
        thread = _thinned(thread, seed, attachment_share)
        raw = thread_start(index, thread.jitter, threads, base, days)
        horizon = raw - timedelta(days=2)
        while heap and heap[0][0] < horizon and emitted < messages:
            yield _emit(heapq.heappop(heap), opened, seed, owners, takeout, attachment_bytes)
            emitted += 1
        dates = schedule(thread, office_hours(raw), cap)
        context = text_context(thread, thread.steps[0], dates[0])
        thread = replace(thread, subject=thread.subject.format_map(context))
        held = [j for j, step in enumerate(thread.steps) if step.holders & wanted]
        opened[index] = OpenThread(thread, dates, pending=len(held))
        for j in held:
            heapq.heappush(heap, (dates[j], index, j))
    while heap and emitted < messages:
        yield _emit(heapq.heappop(heap), opened, seed, owners, takeout, attachment_bytes)
        emitted += 1


def _thinned(thread: Thread, seed: int, share: float) -> Thread:
    """The thread with each planned attachment kept with probability ``share``.

    The draws come from a stream of their own, and at 1 none is made, so the
    default output (the committed demo data, the benchmark's seeds) stays
    byte for byte what it was.
    """
    if share >= 1 or not any(step.attachment for step in thread.steps):
        return thread
    rng = random.Random(f"{seed}:attachments:{thread.index}")
    steps = tuple(
        replace(step, attachment="") if step.attachment and rng.random() >= share else step
        for step in thread.steps
    )
    return replace(thread, steps=steps)


def _threads_needed(world: World, seed: int, messages: int, wanted: frozenset[str]) -> int:
    count = index = 0
    while count < messages:
        if index > 100 * messages + 1000:
            raise ValueError(f"no generated mail lands in {sorted(wanted)}")
        thread = plan_thread(world, seed, index)
        count += sum(1 for step in thread.steps if step.holders & wanted)
        index += 1
    return index


def _emit(
    entry: tuple[datetime, int, int],
    opened: dict[int, OpenThread],
    seed: int,
    owners: Sequence[str],
    takeout: bool,
    sizes: tuple[int, int],
) -> Mail:
    when, index, j = entry
    state = opened[index]
    while len(state.done) <= j:
        _render(seed, state, sizes)
    rendered = state.done[j]
    state.pending -= 1
    if state.pending == 0:
        del opened[index]
    thread, step = state.thread, state.thread.steps[j]
    copies = {}
    for owner in owners:
        if owner in step.holders:
            labels = _labels(seed, thread, j, owner) if takeout else None
            copies[owner] = _copy(rendered, owner, labels, thread.gmail_id)
    return Mail(rendered.message_id, index, thread.kind, when, thread.defect or None, copies)


def _render(seed: int, opened: OpenThread, sizes: tuple[int, int]) -> Rendered:
    thread = opened.thread
    i = len(opened.done)
    rng = random.Random(f"{seed}:{thread.index}:{i}")
    render = {
        "newsletter": render_list,
        "notification": render_list,
        "spam": render_spam,
        "invite": render_invite,
        "chat": render_chat,
        "bounce": render_bounce,
        "malformed": render_malformed,
    }.get(thread.kind, render_conversation)
    rendered = render(rng, opened, i, sizes)
    step = thread.steps[i]
    chain: tuple[str, ...] = (rendered.message_id,)
    if step.replies_to >= 0 and not step.auto_reply:
        chain = (*opened.chains[step.replies_to], rendered.message_id)
    opened.done.append(rendered)
    opened.chains.append(chain)
    return rendered


def _copy(rendered: Rendered, owner: str, labels: str | None, gmail_id: int) -> bytes:
    lines: list[str] = []
    if labels is not None:
        lines += [f"X-GM-THRID: {gmail_id}", f"X-Gmail-Labels: {labels}"]
    if owner != rendered.sender:
        lines.append(f"Delivered-To: {owner}")
    lines += rendered.head
    if owner == rendered.sender and rendered.bcc:
        lines.append(rendered.bcc)
    lines += rendered.tail
    return "\n".join(lines).encode("ascii") + b"\n\n" + rendered.body


def _labels(seed: int, thread: Thread, j: int, owner: str) -> str:
    """Takeout's labels for one mailbox's copy: what Gmail would have shown its owner."""
    rng = random.Random(f"{seed}:{thread.index}:{j}:{owner}")
    if thread.kind == "spam":
        return "Spam,Unread" if rng.random() < 0.7 else "Spam"
    if thread.kind == "chat":
        return "Chat"
    step = thread.steps[j]
    if step.sender.email == owner:
        return "Sent,Important" if rng.random() < 0.3 else "Sent"
    labels = ["Trash"] if rng.random() < 0.03 else ["Inbox" if rng.random() < 0.7 else "Archived"]
    if thread.kind in ("customer", "invite") and rng.random() < 0.6:
        labels.append("Important")
    if rng.random() < 0.04:
        labels.append("Starred")
    labels.append("Opened" if rng.random() < 0.85 else "Unread")
    category = {
        "newsletter": "Category Promotions",
        "notification": "Category Updates",
        "bounce": "Category Updates",
    }.get(thread.kind)
    if thread.source is not None and thread.source.name == "London Data Meetup":
        category = "Category Forums"
    if category:
        labels.append(category)
    if thread.kind == "customer" and rng.random() < 0.3:
        labels.append("Customers")
    return ",".join(labels)


def iter_messages(
    seed: int,
    messages: int,
    contacts: int,
    *,
    mailbox: str = PRIYA,
    takeout: bool = False,
    days: int = DEFAULT_DAYS,
    base: datetime = BASE_DATE,
    attachment_bytes: tuple[int, int] = BENCH_ATTACHMENT_BYTES,
    attachment_share: float = 1.0,
) -> Iterator[bytes]:
    """One mailbox's ``messages`` messages (received and sent, like Gmail's All Mail), streamed."""
    for mail in iter_mail(
        seed,
        messages,
        contacts,
        mailboxes=(mailbox,),
        takeout=takeout,
        days=days,
        base=base,
        attachment_bytes=attachment_bytes,
        attachment_share=attachment_share,
    ):
        yield mail.copies[mailbox]


def generate_mailboxes(
    seed: int,
    messages: int,
    contacts: int,
    *,
    mailboxes: Sequence[str] = DEMO_MAILBOXES,
    takeout: bool = False,
    days: int = DEFAULT_DAYS,
    base: datetime = BASE_DATE,
    attachment_bytes: tuple[int, int] = BENCH_ATTACHMENT_BYTES,
) -> dict[str, list[bytes]]:
    """Each owner's mailbox, oldest first; ``messages`` counts distinct messages.

    A thread with several staff on it lands in each of their mailboxes with
    the same Message-ID, which is what the pipeline's dedupe must fold.
    """
    boxes: dict[str, list[bytes]] = {m: [] for m in mailboxes}
    for mail in iter_mail(
        seed,
        messages,
        contacts,
        mailboxes=mailboxes,
        takeout=takeout,
        days=days,
        base=base,
        attachment_bytes=attachment_bytes,
    ):
        for owner, raw in mail.copies.items():
            boxes[owner].append(raw)
    return boxes
