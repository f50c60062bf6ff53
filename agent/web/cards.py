"""The Gmail add-on's cards, as the JSON of Google's card reference (Cards v1).

Pure functions from what ``storage`` read to the JSON the add-on endpoints
answer with: a ``RenderActions`` object (``{"renderActions": {"action":
{"navigations": [{"pushCard": CARD}]}}}``, ``updateCard`` after a button) whose
cards have a ``header``, ``sections`` and widgets (``decoratedText``,
``textParagraph``, ``buttonList``). A button either opens a link
(``onClick.openLink.url``) or posts back (``onClick.action.function`` = the
endpoint's URL, ``parameters`` = ``[{"key", "value"}]``, returned in the next
event's ``commonEventObject.parameters``).

Card text fields render a subset of HTML (``<b>``, ``<font>``, ``<a href>``), so
every text that comes from data -- names, subjects, addresses, anything an
email's sender chose -- goes through :func:`esc` and shows as text, never as
markup or a link. The reference formats text in ``textParagraph`` and
``decoratedText``; headers and button labels are escaped all the same, so a
name with ``&`` or ``<`` may show an entity there: a cost taken so that no
field's rendering has to be trusted.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.runtime.inert_text import plain
from storage.history import Entry
from storage.profiles import CompanyProfile, ContactProfile
from storage.thread_marks import ThreadState

Json = dict[str, Any]
MAX_TEXT = 500
"""Longer texts are cut: a side panel is narrow, and the web app has the rest."""
MAX_PEOPLE = 8


def esc(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` as card text that shows these characters and obeys none: markup escaped,
    controls and the bidi overrides that reorder what a reader sees removed (as
    :func:`agent.runtime.inert_text.plain` does for terminals)."""
    value = " ".join(plain(str(text)).split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return html.escape(value, quote=True)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "never"


@dataclass(frozen=True)
class Links:
    """Where buttons go: the add-on's action endpoints and the web app's pages."""

    actions: str
    """The URL the action endpoints live under (``…/addon/actions``)."""
    web: str
    """The web app's root."""

    def action(self, name: str, parameters: Mapping[str, str]) -> Json:
        return {
            "action": {
                "function": f"{self.actions}/{name}",
                "parameters": [{"key": k, "value": v} for k, v in parameters.items()],
            }
        }

    def open(self, path: str) -> Json:
        return {"openLink": {"url": f"{self.web}{path}"}}


# -- widgets


def text(value: str) -> Json:
    """A paragraph of already escaped text."""
    return {"textParagraph": {"text": value}}


def decorated(top: str, value: str, bottom: str | None = None) -> Json:
    """A labelled value (all three already escaped)."""
    widget: Json = {"topLabel": top, "text": value or "—", "wrapText": True}
    if bottom:
        widget["bottomLabel"] = bottom
    return {"decoratedText": widget}


def button(label: str, on_click: Json) -> Json:
    return {"text": label, "onClick": on_click}


def buttons(*items: Json) -> Json:
    return {"buttonList": {"buttons": list(items)}}


def section(header: str | None, widgets: Sequence[Json]) -> Json:
    body: Json = {"widgets": list(widgets)}
    if header:
        body["header"] = header
    return body


def card(name: str, title: str, subtitle: str | None, sections: Sequence[Json]) -> Json:
    header: Json = {"title": title}
    if subtitle:
        header["subtitle"] = subtitle
    return {"name": name, "header": header, "sections": list(sections)}


def push(*cards: Json) -> Json:
    """Show ``cards`` (the first at the bottom of the stack)."""
    return {"renderActions": {"action": {"navigations": [{"pushCard": c} for c in cards]}}}


def update(shown: Json, notification: str | None = None) -> Json:
    """Replace the card on top with ``shown``; ``notification`` is already escaped."""
    action: Json = {"navigations": [{"updateCard": shown}]}
    if notification:
        action["notification"] = {"text": notification}
    return {"renderActions": {"action": action}}


# -- cards


def sign_in_card(sign_in_url: str, email: str | None) -> Json:
    """For someone the team's database does not know, or a disabled user: no data."""
    who = f"{esc(email)} is not" if email else "You are not"
    return card(
        "sign-in",
        "crm-sync",
        "Sign in needed",
        [
            section(
                None,
                [
                    text(
                        f"{who} a user of the team's crm-sync. Ask an admin to add you "
                        "(crm-sync users add), then sign in to the web app."
                    ),
                    buttons(button("Open crm-sync", {"openLink": {"url": sign_in_url}})),
                ],
            )
        ],
    )


def home_card(email: str, links: Links) -> Json:
    return card(
        "home",
        "crm-sync",
        esc(email),
        [
            section(
                None,
                [
                    text("Open a message to see its sender and recipients in the CRM."),
                    buttons(
                        button("Search the CRM", links.open("/search")),
                        button("My activity", links.open("/activity")),
                    ),
                ],
            )
        ],
    )


def _entry_text(entry: Entry) -> str:
    subject = esc(entry.subject or "(no subject)", 200)
    return f"{_when(entry.occurred_at)} · {subject}"


def contact_card(
    profile: ContactProfile,
    links: Links,
    *,
    thread: Json | None = None,
    others: Sequence[Json] = (),
) -> Json:
    """A contact: fields, company, last conversation and its topic, the teammates who know
    them, open conflicts; then the open thread's controls and the message's other people."""
    title = esc(profile.name or "") or esc(
        profile.emails[0] if profile.emails else f"#{profile.id}"
    )
    subtitle = esc(profile.emails[0]) if profile.emails else None
    sections = [_fields_section(profile), _history_section(profile)]
    if profile.conflicts:
        sections.append(_conflicts_section(profile))
    if thread is not None:
        sections.append(thread)
    if others:
        sections.append(section("Also on this message", list(others)))
    actions = [button("Open in crm-sync", links.open(f"/contacts/{profile.id}"))]
    if profile.company_id is not None:
        actions.append(
            button("Company", links.action("show_company", {"company": str(profile.company_id)}))
        )
    sections.append(section(None, [buttons(*actions)]))
    return card(f"contact-{profile.id}", title, subtitle, sections)


def _fields_section(profile: ContactProfile) -> Json:
    details = [
        decorated(esc(line.name), esc(line.value or ""), esc(line.source) if line.source else None)
        for line in profile.fields
        if line.value and line.name != "company"
    ]
    if profile.company:
        company = decorated("Company", esc(profile.company), esc(profile.company_domain or ""))
        details.insert(0, company)
    return section(None, details or [text("No fields yet.")])


def _conflicts_section(profile: ContactProfile) -> Json:
    return section(
        "Open conflicts",
        [
            decorated(
                esc(c.field),
                f"{esc(c.manual or '—')} / {esc(c.latest or '—')}",
                f"{esc(c.manual_by or '?')} / {esc(c.latest_by or '?')}",
            )
            for c in profile.conflicts[:MAX_PEOPLE]
        ],
    )


def _history_section(profile: ContactProfile) -> Json:
    widgets = []
    if profile.last is not None:
        widgets.append(decorated("Last conversation", _entry_text(profile.last)))
    else:
        widgets.append(text("No conversation you can see yet."))
    if profile.timeline.hidden:
        widgets.append(text(f"{profile.timeline.hidden} private interaction(s) not shown."))
    widgets.extend(
        decorated(
            "Knows them",
            esc(t.name or t.email),
            f"{t.interactions} interaction(s), last {_when(t.last_at)}",
        )
        for t in profile.teammates[:MAX_PEOPLE]
    )
    return section("History", widgets)


def company_card(profile: CompanyProfile, links: Links) -> Json:
    people = [
        decorated(
            esc(p.title or "Person"), esc(p.name or p.email or f"#{p.id}"), esc(p.email or "")
        )
        for p in profile.people[:MAX_PEOPLE]
    ]
    history = [
        decorated("First contact", _when(profile.first_at)),
        decorated("Last contact", _when(profile.last_at)),
    ]
    if profile.last is not None:
        history.append(decorated("Last conversation", _entry_text(profile.last)))
    history.extend(
        decorated("Knows them", esc(t.name or t.email), f"{t.interactions} interaction(s)")
        for t in profile.teammates[:MAX_PEOPLE]
    )
    return card(
        f"company-{profile.id}",
        esc(profile.name),
        esc(", ".join(profile.domains)),
        [
            section("History", history),
            section("People", people or [text("Nobody yet.")]),
            section(
                None, [buttons(button("Open in crm-sync", links.open(f"/companies/{profile.id}")))]
            ),
        ],
    )


def not_in_crm_card(
    email: str,
    name: str | None,
    links: Links,
    *,
    thread: Json | None = None,
    others: Sequence[Json] = (),
) -> Json:
    shown = esc(name or email)
    sections = [
        section(
            None,
            [
                decorated("Not in the CRM yet", shown, esc(email)),
                buttons(
                    button(
                        "Create contact",
                        links.action("create_contact", {"email": email, "name": name or ""}),
                    )
                ),
            ],
        )
    ]
    if thread is not None:
        sections.append(thread)
    if others:
        sections.append(section("Also on this message", list(others)))
    return card("not-in-crm", shown, esc(email), sections)


def person_button(label: str, email: str, links: Links) -> Json:
    return buttons(button(esc(label, 60), links.action("show_person", {"email": email})))


def thread_section(state: ThreadState, parameters: Mapping[str, str], links: Links) -> Json:
    """Private / share for the open thread. The mark is applied to the team's database only:
    the connectors read Gmail without a modify scope, so no Gmail label is written."""
    if state.interactions == 0:
        return section(
            "This thread", [text("Not logged from your mailbox (yet): nothing to mark.")]
        )
    status = "private: only you see it" if state.is_private else "shared with the team"
    widgets = [
        decorated("In the CRM", f"{state.interactions} message(s), {status}"),
        buttons(
            button("Share with the team", links.action("thread_shared", parameters))
            if state.is_private
            else button("Make private", links.action("thread_private", parameters))
        ),
        text("Applies to the team's database; the Gmail label is not changed."),
    ]
    return section("This thread", widgets)


# -- the admins' preview


def preview_page(shown: Sequence[Json]) -> str:
    """``shown`` cards drawn as a plain HTML page, each beside its JSON.

    Card text is already escaped for Google's HTML subset; here it is unescaped
    and escaped again, so it shows exactly the characters a card shows and
    nothing in it is ever markup."""
    body = "".join(
        f'<section class="card"><div>{_preview_card(c)}</div>'
        f"<details><summary>JSON</summary><pre>{html.escape(_json(c))}</pre></details></section>"
        for c in shown
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Gmail add-on cards</title>"
        '<link rel="stylesheet" href="/static/app.css"></head>'
        f"<body><main><h1>Gmail add-on cards</h1>{body}</main></body></html>"
    )


def _json(value: Json) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _shown(value: object) -> str:
    return html.escape(html.unescape(str(value)))


def _preview_card(shown: Json) -> str:
    header = shown.get("header", {})
    parts = [f"<h2>{_shown(header.get('title', ''))}</h2>"]
    if header.get("subtitle"):
        parts.append(f"<p><small>{_shown(header['subtitle'])}</small></p>")
    for body in shown.get("sections", []):
        if body.get("header"):
            parts.append(f"<h3>{_shown(body['header'])}</h3>")
        parts.extend(_preview_widget(w) for w in body.get("widgets", []))
    return "".join(parts)


def _preview_widget(widget: Json) -> str:
    if "textParagraph" in widget:
        return f"<p>{_shown(widget['textParagraph']['text'])}</p>"
    if "decoratedText" in widget:
        d = widget["decoratedText"]
        bottom = f"<br><small>{_shown(d['bottomLabel'])}</small>" if d.get("bottomLabel") else ""
        return (
            f"<p><small>{_shown(d.get('topLabel', ''))}</small><br>{_shown(d['text'])}{bottom}</p>"
        )
    labels = " ".join(
        f'<button type="button" disabled>{_shown(b["text"])}</button>'
        for b in widget.get("buttonList", {}).get("buttons", [])
    )
    return f"<p>{labels}</p>"
