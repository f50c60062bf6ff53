"""Planning a thread: its kind, its people, how many messages, who answers whom and when.

A thread is planned by its own ``Random`` (the seed and its index), so any
thread can be planned alone and cheaply: the mailbox driver plans every
thread twice, once to count and once to render. No text exists yet; that is
rendering's job.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from tests.support.mailgen.people import (
    ACME,
    CAST,
    HANNAH,
    MARCUS,
    PRIYA,
    SALES,
    TOM,
    ZOE,
    Person,
    World,
    staff_member,
)
from tests.support.mailgen.senders import (
    DAEMON,
    NEWSLETTERS,
    NOTIFIERS,
    SPAMMERS,
    Sender,
    sender_person,
)
from tests.support.mailgen.topics import (
    INTERNAL_TOPIC_BY_KEY,
    INTERNAL_TOPICS,
    TOPIC_BY_KEY,
    TOPICS,
)

MALFORMED = ("missing-from-date", "broken-base64", "truncated")
"""Defects made on purpose, so that quarantine has something to show."""


@dataclass(frozen=True)
class Step:
    """One message of a thread, before any text exists; ``replies_to`` indexes the same thread."""

    sender: Person
    to: tuple[Person, ...]
    cc: tuple[Person, ...] = ()
    delay: timedelta = timedelta(0)
    bcc: tuple[Person, ...] = ()
    auto_reply: bool = False
    attachment: str = ""
    replies_to: int = -1

    @property
    def holders(self) -> frozenset[str]:
        """The staff mailboxes this message lands in (a Bcc to a customer lands in none)."""
        people = (self.sender, *self.to, *self.cc)
        return frozenset(p.email for p in people if p.staff)


@dataclass(frozen=True)
class _Plan:
    """What a kind's planner decides; ``plan_thread`` adds what every thread has."""

    topic: str
    subject: str
    steps: tuple[Step, ...]
    about: Person | None = None
    source: Sender | None = None
    defect: str = ""


@dataclass(frozen=True)
class Thread:
    """A planned thread: who writes to whom and when, what about, and how it may be broken."""

    index: int
    kind: str
    topic: str
    subject: str
    """A template until the thread opens: its placeholders need the thread's date."""
    steps: tuple[Step, ...]
    facts: Mapping[str, str]
    jitter: float
    gmail_id: int
    about: Person | None = None
    source: Sender | None = None
    defect: str = ""

    @property
    def holders(self) -> frozenset[str]:
        return frozenset().union(*(s.holders for s in self.steps))


_KINDS = (
    ("customer", 52),
    ("internal", 14),
    ("newsletter", 12),
    ("notification", 9),
    ("invite", 4),
    ("chat", 3),
    ("spam", 2),
    ("bounce", 1),
    ("malformed", 1),
)

_SHOWCASE: tuple[tuple[str, Mapping[str, object]], ...] = (
    (
        "customer",
        {
            "contact": "dana.whitfield@acme.example",
            "topic": "renewal",
            "length": 5,
            "attach": True,
            "extra": (TOM,),
            "auto_reply": True,
            "colleagues": 0,
            "bcc": True,
        },
    ),
    ("newsletter", {"source": 0, "to": PRIYA}),
    (
        "customer",
        {
            "contact": "olivia.grant@uk.umbrella.example",
            "topic": "contract",
            "length": 4,
            "attach": True,
        },
    ),
    ("internal", {"topic": "approval", "from": PRIYA, "to": (TOM,), "length": 2}),
    (
        "customer",
        {
            "contact": "e.fournier@lumiere-conseil.example",
            "topic": "invoice",
            "length": 4,
            "extra": (HANNAH,),
            "attach": True,
        },
    ),
    ("notification", {"source": 0, "to": TOM}),
    (
        "customer",
        {
            "contact": "carla@globex.example",
            "topic": "support",
            "length": 4,
            "colleagues": 1,
            "extra": (MARCUS,),
            "attach": True,
        },
    ),
    (
        "customer",
        {
            "contact": "raj.patel@mail.acme.example",
            "topic": "feature",
            "length": 3,
            "auto_reply": True,
        },
    ),
    ("malformed", {"defect": "missing-from-date", "to": ZOE}),
    ("customer", {"contact": "sam.ortega.consulting@gmail.com", "topic": "enquiry", "length": 3}),
    ("newsletter", {"source": 2, "to": ZOE}),
    ("malformed", {"defect": "broken-base64", "to": PRIYA}),
    ("customer", {"contact": "j.weiss@mueller-soehne.example", "topic": "enquiry", "length": 3}),
    ("invite", {"contact": "shaddad@initech.example"}),
    ("internal", {"topic": "forward", "from": TOM, "to": (PRIYA,), "length": 2}),
    ("chat", {"from": PRIYA, "to": (ZOE,)}),
    ("spam", {"to": TOM}),
    ("bounce", {"to": PRIYA}),
    (
        "customer",
        {"contact": "shaddad@initech.example", "topic": "onboarding", "length": 4, "attach": True},
    ),
    ("notification", {"source": 3, "to": ZOE}),
    ("malformed", {"defect": "truncated", "to": TOM}),
)
"""Threads pinned at indices 0, 3, 6...: even a small demo shows every case once."""


def plan_thread(world: World, seed: int, index: int) -> Thread:
    rng = random.Random(f"{seed}:plan:{index}")
    if index % 3 == 0 and index // 3 < len(_SHOWCASE):
        kind, opts = _SHOWCASE[index // 3]
    else:
        kind = rng.choices([k for k, _ in _KINDS], weights=[w for _, w in _KINDS])[0]
        opts = {}
    planner = {
        "customer": _plan_customer,
        "internal": _plan_internal,
        "newsletter": _plan_newsletter,
        "notification": _plan_notification,
        "spam": _plan_spam,
        "invite": _plan_invite,
        "chat": _plan_chat,
        "bounce": _plan_bounce,
        "malformed": _plan_malformed,
    }[kind]
    facts = _facts(rng, world)
    plan = planner(world, rng, opts, facts)
    return Thread(
        index=index,
        kind=kind,
        topic=plan.topic,
        subject=plan.subject,
        steps=plan.steps,
        facts=facts,
        jitter=rng.random(),
        gmail_id=rng.getrandbits(60) | (1 << 60),
        about=plan.about,
        source=plan.source,
        defect=plan.defect,
    )


def _facts(rng: random.Random, world: World) -> dict[str, str]:
    """Numbers a thread keeps consistent from message to message."""
    seats = rng.choice((10, 15, 20, 25, 40, 50, 75, 120, 200, 350))
    subject_of = rng.choice(world.customers).company if world.customers else ACME
    return {
        "seats": str(seats),
        "unit": str(rng.choice((480, 540, 600, 720))),
        "ticket": f"NW-{rng.randint(1000, 9999)}",
        "po": f"PO-{rng.randint(10000, 99999)}",
        "invoice": f"INV-{rng.randint(2400, 3999)}",
        "time": rng.choice(("9:30", "10:00", "11:00", "14:00", "15:30", "16:00")),
        "in_days": str(rng.randint(2, 9)),
        "due_days": str(rng.randint(14, 60)),
        "n": str(rng.randint(40, 400)),
        "company": subject_of.name,
        "colleague": "Marcus",
    }


def _pick(rng: random.Random, people: Sequence[Person], k: int) -> list[Person]:
    return rng.sample(list(people), k=min(k, len(people)))


def _customer_for(world: World, rng: random.Random, opts: Mapping[str, object]) -> Person:
    wanted = opts.get("contact")
    found = world.find(wanted) if isinstance(wanted, str) else None
    if found is not None:
        return found
    if not world.customers:
        return CAST[0]
    if rng.random() < 0.3 and len(world.customers) > len(CAST):
        return rng.choice(world.customers[: len(CAST)])
    return rng.choice(world.customers)


def _lead_for(world: World, person: Person) -> Person:
    return world.leads.get(person.company) or staff_member(PRIYA)


def _reply_delay(rng: random.Random) -> timedelta:
    minutes = min(rng.lognormvariate(4.6, 1.3), 4 * 24 * 60)
    return timedelta(minutes=max(2.0, minutes), seconds=rng.randint(0, 59))


def _plan_customer(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    contact = _customer_for(world, rng, opts)
    lead = _lead_for(world, contact)
    key = opts.get("topic")
    topic = (
        TOPIC_BY_KEY[key]
        if isinstance(key, str)
        else rng.choices(TOPICS, weights=[t.weight for t in TOPICS])[0]
    )
    others = [p for p in world.colleagues.get(contact.company, ()) if p != contact]
    wanted = opts.get("colleagues")
    count = wanted if isinstance(wanted, int) else rng.choice((0, 0, 0, 1, 1, 2))
    customers = [contact, *_pick(rng, others, count)]
    extra = opts.get("extra")
    if isinstance(extra, tuple):
        staff = [lead, *(world.member(e) for e in extra if e != lead.email)]
    else:
        staff = [lead]
        if topic.copied and topic.copied != lead.email and rng.random() < 0.45:
            staff.append(world.member(topic.copied))
    facts["company"] = contact.company.name
    facts["colleague"] = staff[1].first if len(staff) > 1 else world.member(MARCUS).first
    length = opts.get("length")
    n = (
        length
        if isinstance(length, int)
        else rng.choices(range(1, 9), weights=(14, 24, 22, 15, 10, 7, 5, 3))[0]
    )
    steps = _conversation(rng, staff, customers, topic.starter, n)
    steps = _with_attachment(rng, steps, topic.attachment, bool(opts.get("attach")))
    steps = _with_bcc(rng, steps, others, bool(opts.get("bcc")))
    if opts.get("auto_reply") or rng.random() < 0.05:
        steps = _with_auto_reply(rng, steps)
    subject = rng.choice(topic.subjects)
    return _Plan(topic=topic.key, subject=subject, steps=tuple(steps), about=contact)


def _conversation(
    rng: random.Random, staff: list[Person], customers: list[Person], starter: str, n: int
) -> list[Step]:
    """Reply-all turns: everyone stays on every message, so all staff hold the whole thread."""
    sides = {"staff": staff, "customer": customers}
    everyone = [*staff, *customers]
    steps: list[Step] = []
    side = starter
    previous: Person | None = None
    for j in range(n):
        if j > 0 and rng.random() < 0.8:
            side = "customer" if side == "staff" else "staff"
        team = sides[side]
        sender = team[0] if len(team) == 1 or rng.random() < 0.75 else rng.choice(team[1:])
        other = sides["customer" if side == "staff" else "staff"]
        to = previous if previous is not None and previous not in team else other[0]
        cc = tuple(p for p in everyone if p not in (sender, to))
        steps.append(
            Step(
                sender=sender,
                to=(to,),
                cc=cc,
                delay=_reply_delay(rng) if j else timedelta(0),
                replies_to=j - 1,
            )
        )
        previous = sender
    return steps


def _with_attachment(rng: random.Random, steps: list[Step], kind: str, forced: bool) -> list[Step]:
    if not kind or not (forced or rng.random() < 0.5):
        return steps
    first = steps[0]
    return [replace(first, attachment=kind), *steps[1:]]


def _with_bcc(
    rng: random.Random, steps: list[Step], others: list[Person], forced: bool
) -> list[Step]:
    """Now and then a staff sender Bcc's a customer's colleague who is not on the thread."""
    spare = [p for p in others if all(p not in (*s.to, *s.cc) for s in steps)]
    if not spare or not (forced or rng.random() < 0.08):
        return steps
    for j, step in enumerate(steps):
        if step.sender.staff:
            steps[j] = replace(step, bcc=(rng.choice(spare),))
            break
    return steps


def _with_auto_reply(rng: random.Random, steps: list[Step]) -> list[Step]:
    """An out-of-office answer to the first staff message; it goes to that sender only."""
    for j, step in enumerate(steps):
        recipient = step.to[0]
        if step.sender.staff and not recipient.staff:
            auto = Step(
                sender=recipient,
                to=(step.sender,),
                delay=timedelta(seconds=rng.randint(15, 90)),
                auto_reply=True,
                replies_to=j,
            )
            later = [
                replace(s, replies_to=s.replies_to + (s.replies_to > j)) for s in steps[j + 1 :]
            ]
            return [*steps[: j + 1], auto, *later]
    return steps


def _plan_internal(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    key = opts.get("topic")
    topic = INTERNAL_TOPIC_BY_KEY[key] if isinstance(key, str) else rng.choice(INTERNAL_TOPICS)
    wanted = opts.get("from")
    first = (
        world.member(wanted)
        if isinstance(wanted, str)
        else world.member(rng.choices((*SALES, MARCUS, HANNAH), weights=(4, 3, 3, 1, 1))[0])
    )
    to = opts.get("to")
    if isinstance(to, tuple):
        rest = [world.member(e) for e in to]
    else:
        pool = [p for p in world.staff if p != first]
        rest = _pick(rng, pool, rng.choice((1, 1, 2, 3)))
    about = _customer_for(world, rng, {})
    facts["company"] = about.company.name
    length = opts.get("length")
    n = length if isinstance(length, int) else rng.choices(range(1, 5), weights=(4, 4, 2, 1))[0]
    people = [first, *rest]
    steps: list[Step] = []
    sender = first
    for j in range(n):
        if j:
            sender = rng.choice([p for p in people if p != sender])
        others = tuple(p for p in people if p != sender)
        steps.append(
            Step(sender, others, (), _reply_delay(rng) if j else timedelta(0), replies_to=j - 1)
        )
    if topic.attachment and rng.random() < 0.5:
        steps[0] = replace(steps[0], attachment=topic.attachment)
    if topic.key == "forward":
        subject = "Fwd: " + rng.choice(TOPIC_BY_KEY["support"].subjects)
    else:
        subject = rng.choice(topic.subjects)
    return _Plan(topic=topic.key, subject=subject, steps=tuple(steps), about=about)


def _plan_bulk(
    world: World, rng: random.Random, opts: Mapping[str, object], sources: Sequence[Sender]
) -> _Plan:
    to_email = opts.get("to")
    to = (
        world.member(to_email)
        if isinstance(to_email, str)
        else world.member(rng.choices((*SALES, MARCUS, HANNAH), weights=(4, 3, 3, 2, 2))[0])
    )
    wanted = opts.get("source")
    source = sources[wanted] if isinstance(wanted, int) else rng.choice(sources)
    headline = rng.choice(source.lines)
    subject = rng.choice(source.subjects).format(n=rng.randint(40, 400), headline=headline)
    step = Step(sender_person(source), (to,))
    return _Plan(topic=headline, subject=subject, steps=(step,), source=source)


def _plan_newsletter(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    return _plan_bulk(world, rng, opts, NEWSLETTERS)


def _plan_notification(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    return _plan_bulk(world, rng, opts, NOTIFIERS)


def _plan_spam(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    return _plan_bulk(world, rng, opts, SPAMMERS)


def _plan_invite(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    organizer = _customer_for(world, rng, opts)
    lead = _lead_for(world, organizer)
    facts["company"] = organizer.company.name
    title = rng.choice(
        (
            "{company} / Northwind: quarterly review",
            "Demo: Northwind for {company}",
            "{company} weekly sync",
            "Intro call",
        )
    ).format_map(facts)
    steps = [Step(organizer, (lead,))]
    if rng.random() < 0.6:
        steps.append(Step(lead, (organizer,), delay=_reply_delay(rng)))
    return _Plan(topic=title, subject=title, steps=tuple(steps), about=organizer)


def _plan_chat(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    wanted = opts.get("from")
    one = world.member(wanted) if isinstance(wanted, str) else world.member(rng.choice(SALES))
    to = opts.get("to")
    two = (
        world.member(to[0])
        if isinstance(to, tuple)
        else rng.choice([p for p in world.staff if p != one])
    )
    steps = []
    for j in range(rng.randint(1, 3)):
        a, b = (one, two) if j % 2 == 0 else (two, one)
        steps.append(
            Step(a, (b,), delay=timedelta(seconds=rng.randint(20, 600)) if j else timedelta(0))
        )
    return _Plan(topic="chat", subject="Chat", steps=tuple(steps))


def _plan_bounce(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    about = _customer_for(world, rng, opts)
    to = opts.get("to")
    staff = world.member(to) if isinstance(to, str) else _lead_for(world, about)
    subject = "Delivery Status Notification (Failure)"
    return _Plan(topic="bounce", subject=subject, steps=(Step(DAEMON, (staff,)),), about=about)


def _plan_malformed(
    world: World, rng: random.Random, opts: Mapping[str, object], facts: dict[str, str]
) -> _Plan:
    defect = opts.get("defect")
    defect = defect if isinstance(defect, str) else rng.choice(MALFORMED)
    about = _customer_for(world, rng, opts)
    to = opts.get("to")
    staff = world.member(to) if isinstance(to, str) else _lead_for(world, about)
    subject = {
        "missing-from-date": "Scanned document",
        "broken-base64": "Updated figures",
        "truncated": f"Invoice {facts['invoice']}",
    }[defect]
    return _Plan(
        topic=defect, subject=subject, steps=(Step(about, (staff,)),), about=about, defect=defect
    )
