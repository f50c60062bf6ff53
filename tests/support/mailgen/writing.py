"""The words of a message: greetings, paragraphs, sign-offs and signatures, by language.

Customers at French and German companies write in their own language, so
the pipeline's quote and signature handling meets more than English.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from tests.support.mailgen.dates import MONTHS, WEEKDAYS, WEEKDAYS_DE, WEEKDAYS_FR, weekday_after
from tests.support.mailgen.people import (
    COMPANY_NAME,
    FREE_MAIL,
    INTERNAL_DOMAIN,
    LONDON,
    Person,
    time_zone,
)
from tests.support.mailgen.threads import Step, Thread
from tests.support.mailgen.topics import INTERNAL_TOPIC_BY_KEY, TOPIC_BY_KEY, Topic

_FOREIGN: dict[str, tuple[tuple[str, ...], ...]] = {
    "fr": (
        (
            "Merci pour votre message.",
            "Merci pour votre retour rapide.",
            "Je reviens vers vous concernant notre échange de la semaine dernière.",
        ),
        (
            "Pourriez-vous nous envoyer la facture corrigée avec notre numéro de bon de "
            "commande {po} ?",
            "Notre direction financière doit encore valider le budget pour {seats} licences.",
            "Nous souhaitons organiser une réunion le {day_fr} à {time} si cela vous convient.",
            "Le tableau de bord ne s'actualise plus depuis {day_fr} matin.",
        ),
        ("Je vous remercie par avance.", "Bonne journée.", ""),
    ),
    "de": (
        (
            "Vielen Dank für Ihre schnelle Rückmeldung.",
            "Danke für das Angebot.",
            "Ich melde mich wegen unseres Gesprächs von letzter Woche.",
        ),
        (
            "Können Sie uns bitte ein Angebot für weitere {seats} Lizenzen schicken?",
            "Unsere Buchhaltung benötigt die Rechnung mit der Bestellnummer {po}.",
            "Der Export nach Excel funktioniert seit {day_de} nicht mehr.",
            "Passt Ihnen ein Termin am {day_de} um {time} Uhr?",
        ),
        ("Für Rückfragen stehe ich gern zur Verfügung.", "Vielen Dank im Voraus.", ""),
    ),
}
_GREETINGS = {
    "en": ("Hi {name},", "Hello {name},", "Dear {name},", "{name},", "Hi {name},"),
    "fr": ("Bonjour {name},", "Bonjour {name},"),
    "de": ("Hallo {name},", "Guten Tag {name},"),
}
_SIGNOFFS = {
    "en": ("Best,", "Thanks,", "Kind regards,", "Cheers,", "Many thanks,", "Best wishes,"),
    "fr": ("Cordialement,", "Bien à vous,"),
    "de": ("Viele Grüße", "Mit freundlichen Grüßen"),
}
_FOLLOW_UPS = (
    "Just bumping this up your inbox. Any thoughts on the below?",
    "Following up on my note below in case it got buried.",
    "One more thing I forgot to mention: {colleague} will join us too.",
    "Sorry, I forgot the attachment last time.",
)
DISCLAIMER = (
    "This email and any attachments are confidential and intended solely for the "
    "addressee. If you have received it in error, please notify the sender and delete it. "
    "{company} is registered in England and Wales."
)
CHAT_LINES = (
    "are you joining the {company} call?",
    "running 5 min late, start without me",
    "can you send me the latest deck?",
    "👍",
    "just saw your email, will reply after lunch",
    "who owns {company} now?",
    "coffee?",
    "pushed the forecast sheet, take a look",
)


def text_context(thread: Thread, step: Step, when: datetime) -> dict[str, str]:
    facts = thread.facts
    local = when.astimezone(time_zone(LONDON))
    meet = weekday_after(local.date() + timedelta(days=int(facts["in_days"])))
    due = local.date() + timedelta(days=int(facts["due_days"]))
    before = weekday_after(local.date() - timedelta(days=3))
    about = thread.about.company.tz if thread.about else LONDON
    symbol = (
        "$"
        if about.startswith("America/")
        else "€"
        if about in ("Europe/Berlin", "Europe/Paris", "Europe/Amsterdam")
        else "£"
    )
    amount = int(facts["seats"]) * int(facts["unit"])
    return {
        **facts,
        "first": step.to[0].first if step.to else "",
        "me": step.sender.first,
        "amount": f"{symbol}{amount:,}",
        "day": WEEKDAYS[meet.weekday()],
        "day_fr": WEEKDAYS_FR[meet.weekday()],
        "day_de": WEEKDAYS_DE[meet.weekday()],
        "weekday": WEEKDAYS[before.weekday()],
        "date": f"{due.day} {MONTHS[due.month - 1]}",
        "month": MONTHS[local.month - 1],
        "quarter": f"Q{(local.month - 1) // 3 + 1}",
        "iso": local.date().isoformat(),
    }


def _topic_of(thread: Thread) -> Topic:
    return (
        INTERNAL_TOPIC_BY_KEY[thread.topic]
        if thread.kind == "internal"
        else TOPIC_BY_KEY[thread.topic]
    )


def paragraphs(
    rng: random.Random, thread: Thread, step: Step, answered: Step | None, ctx: Mapping[str, str]
) -> list[str]:
    topic = _topic_of(thread)
    sender = step.sender
    slots: tuple[tuple[str, ...], ...]
    if not sender.staff and sender.lang in _FOREIGN:
        slots = _FOREIGN[sender.lang]
    elif answered is None:
        slots = topic.opening
    elif thread.kind == "customer" and answered.sender.staff == sender.staff:
        slots = (_FOLLOW_UPS,)
    elif sender.staff:
        slots = topic.staff or topic.opening
    else:
        slots = topic.customer or topic.opening
    return [choice.format_map(ctx) for slot in slots if (choice := rng.choice(slot))]


def greeting(rng: random.Random, step: Step) -> str:
    names = [p.first for p in step.to]
    lang = step.sender.lang if not step.sender.staff else "en"
    if step.sender.staff and all(p.staff for p in step.to) and rng.random() < 0.5:
        return ""
    if len(names) > 2:
        return {"fr": "Bonjour à tous,", "de": "Hallo zusammen,"}.get(lang, "Hi all,")
    joiner = {"fr": " et ", "de": " und "}.get(lang, " and ")
    return rng.choice(_GREETINGS[lang]).format(name=joiner.join(names))


def signoff(rng: random.Random, person: Person) -> str:
    lang = "en" if person.staff else person.lang
    return f"{rng.choice(_SIGNOFFS[lang])}\n{person.first}"


def signature_lines(rng: random.Random, person: Person) -> list[str]:
    if person.staff:
        return [
            person.name,
            f"{person.title} | {COMPANY_NAME}",
            f"{person.phone} | https://{INTERNAL_DOMAIN}",
        ]
    if person.client == "apple" and rng.random() < 0.6:
        return ["Sent from my iPhone"]
    free = person.company.domain in FREE_MAIL
    label = {"de": "Tel.: ", "fr": "Tél. : "}.get(
        person.lang, "T: " if person.client == "outlook" else ""
    )
    lines = [person.name, person.title]
    if not free:
        lines.append(person.company.name)
    lines.append(label + person.phone)
    return lines
