"""The Outlook add-in's task pane in a real browser (Chromium), against ``crm-sync serve``
on both databases.

Outlook is not here, and the tests never reach Microsoft's CDN: the request for Office.js
is answered with an empty script, and a stub ``Office`` object (the open message's
people, the dialog API) is installed before the page's own scripts run. Everything else
is the real pane: its script, the record endpoint, the sign-in form in the dialog, and
the page's Content-Security-Policy.

With ``CRM_SYNC_SCREENSHOTS=FOLDER`` (and on SQLite only, so one run writes one set) the
pane's screenshots at 350×700 are written into FOLDER (``docs/screenshots`` for the docs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, Route, ViewportSize, expect

from agent.web.addin import OFFICE_JS
from tests.agent.web.conftest import Served
from tests.support.browser import TIMEOUT_MS, Watch, sign_in

PANE: ViewportSize = {"width": 350, "height": 700}
DANA = "dana@acme.example"
OFFICE_STUB = """
(function (message) {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    window.__csp.push(e.violatedDirective + " " + e.blockedURI);
  });
  window.__sent = [];
  window.__dialog = null;
  window.Office = {
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    EventType: {
      DialogMessageReceived: "dialogMessageReceived",
      ItemChanged: "olkItemSelectedChanged",
    },
    onReady: function (callback) {
      const info = { host: "Outlook", platform: "PC" };
      if (callback) setTimeout(function () { callback(info); }, 0);
      return Promise.resolve(info);
    },
    context: {
      mailbox: {
        userProfile: { emailAddress: message.me, displayName: "Me" },
        item: message.item,
      },
      ui: {
        displayDialogAsync: function (url, options, callback) {
          const dialog = {
            url: url,
            handlers: {},
            closed: false,
            addEventHandler: function (type, handler) { this.handlers[type] = handler; },
            close: function () { this.closed = true; },
          };
          window.__dialog = dialog;
          callback({ status: "succeeded", value: dialog });
        },
        messageParent: function (text) { window.__sent.push(text); },
      },
    },
  };
})(%s);
"""
"""Installed before any page script (Playwright's init scripts are not subject to the page's
CSP): Office.js's objects as a read-mode message shows them, and every CSP violation."""


def message(sender: str, name: str, *, me: str, cc: tuple[str, ...] = ()) -> str:
    item = {
        "itemType": "message",
        "subject": "Re: renewal",
        "from": {"emailAddress": sender, "displayName": name},
        "sender": {"emailAddress": sender, "displayName": name},
        "to": [{"emailAddress": me, "displayName": "Me"}],
        "cc": [{"emailAddress": a, "displayName": ""} for a in cc],
    }
    return OFFICE_STUB % json.dumps({"me": me, "item": item})


def empty_office_js(route: Route) -> None:
    route.fulfill(status=200, content_type="text/javascript", body="")


@contextmanager
def pane(browser: Browser, stub: str, watch: Watch | None = None) -> Iterator[Page]:
    """A task-pane-sized page in a context of its own, with Office stubbed."""
    context = browser.new_context(viewport=PANE)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(stub)
    context.route(OFFICE_JS, empty_office_js)
    try:
        page = context.new_page()
        if watch is not None:
            watch.attach(page)
        yield page
    finally:
        context.close()


def screenshot(page: Page, served: Served, name: str) -> None:
    shot = page.screenshot(full_page=False)
    assert shot.startswith(b"\x89PNG")
    folder = os.environ.get("CRM_SYNC_SCREENSHOTS", "")
    if folder and served.database_url.startswith("sqlite"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(shot)


def assert_clean(page: Page, watch: Watch, served: Served) -> None:
    """Nothing ran, opened or loaded but the pane's own files and the (stubbed) Office.js."""
    assert page.evaluate("typeof window.__pwned") == "undefined", "a hostile script ran"
    assert watch.dialogs == []
    strangers = [
        url for url in watch.requests if not url.startswith(served.url + "/") and url != OFFICE_JS
    ]
    assert strangers == [], "requests to other hosts"
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert scripts == [OFFICE_JS, f"{served.url}/static/taskpane.js"]
    for tag in ("iframe", "svg", "style", "img", "object", "embed", "base"):
        assert page.locator(tag).count() == 0, f"a <{tag}> element in the pane"
    assert page.locator("[onerror], [onload], [style]").count() == 0
    assert page.evaluate("window.__csp") == [], "CSP violations"


def test_the_pane_shows_the_senders_record(served: Served, browser: Browser) -> None:
    team = served.team
    watch = Watch()
    stub = message(DANA, "Dana Whitfield", me=team.member, cc=("mallory@evil.example",))
    with pane(browser, stub, watch) as page:
        sign_in(page, served.url, team.member, team.password)
        page.goto(f"{served.url}/addin/taskpane")
        record = page.locator("#record")
        expect(record.get_by_role("heading", level=1)).to_have_text("Dana Whitfield")
        expect(record).to_contain_text("Acme Widgets")
        last = record.locator("section.last")
        expect(last).to_contain_text("Re: " + team.shared_subject)
        knows = record.locator("section.knows")
        expect(knows.locator("ol.teammates li").filter(has_text="Bob")).to_have_count(1)
        expect(record.locator(".hidden-count")).to_have_text(
            "1 private interaction in someone else's mailbox not shown"
        )
        expect(record.get_by_role("link", name="Open in crm-sync")).to_have_attribute(
            "href", f"/contacts/{team.dana_id}"
        )
        expect(page.locator("#viewer")).to_have_text(team.member)
        expect(page.locator("#sign-in")).to_be_hidden()
        assert team.private_subject not in page.content()
        people = page.locator("#people button")
        expect(people).to_have_count(2)
        expect(people.first).to_have_attribute("aria-pressed", "true")
        page.wait_for_load_state("networkidle")
        screenshot(page, served, "outlook-taskpane.png")
        assert_clean(page, watch, served)

        # The other person on the message, whose name is hostile markup: shown as text.
        with page.expect_response(lambda r: "/addin/record?address=mallory" in r.url):
            people.nth(1).click()
        expect(record.locator("h1.name")).to_contain_text("<script>window.__pwned=1</script>")
        expect(record.locator("section.last .subject")).to_contain_text("<img src=x")
        expect(people.nth(1)).to_have_attribute("aria-pressed", "true")
        page.wait_for_load_state("networkidle")
        assert_clean(page, watch, served)


def test_a_private_thread_shows_to_its_owner_only(served: Served, browser: Browser) -> None:
    team = served.team
    with pane(browser, message(DANA, "Dana", me=team.other)) as page:
        sign_in(page, served.url, team.other, team.password)
        page.goto(f"{served.url}/addin/taskpane")
        record = page.locator("#record")
        knows = record.locator("section.knows ol.teammates li")
        expect(knows.filter(has_text="Cat")).to_have_count(1)
        expect(record.locator(".hidden-count")).to_have_count(0)
        expect(page.locator("#people")).to_be_hidden()


def test_signed_out_the_pane_offers_sign_in_and_shows_no_data(
    served: Served, browser: Browser
) -> None:
    team = served.team
    watch = Watch()
    with pane(browser, message(DANA, "Dana Whitfield", me=team.member), watch) as page:
        with page.expect_response(lambda r: "/addin/record?" in r.url) as asked:
            page.goto(f"{served.url}/addin/taskpane")
        assert asked.value.status == 401
        card = page.locator("#sign-in")
        expect(card).to_be_visible()
        expect(card.get_by_role("heading", level=1)).to_have_text("Sign in to crm-sync")
        expect(card.get_by_role("link", name="Sign in")).to_be_visible()
        expect(page.locator("#record")).to_be_hidden()
        assert "Acme Widgets" not in page.content()
        # No wait for "networkidle": with a route in place Playwright never sees a 401
        # finish. The page asked for nothing else once the card showed.
        screenshot(page, served, "outlook-taskpane-signed-out.png")
        assert_clean(page, watch, served)


def test_signing_in_through_the_office_dialog(served: Served, browser: Browser) -> None:
    """The button opens the web app's sign-in form in an Office dialog; its last page tells
    the pane, which closes the dialog and shows the record."""
    team = served.team
    with pane(browser, message(DANA, "Dana Whitfield", me=team.member)) as page:
        page.goto(f"{served.url}/addin/taskpane")
        expect(page.locator("#sign-in")).to_be_visible()
        page.get_by_role("link", name="Sign in").click()
        dialog_url = page.evaluate("window.__dialog && window.__dialog.url")
        assert dialog_url == f"{served.url}/login?next=%2Faddin%2Fsigned-in"
        expect(page).to_have_url(f"{served.url}/addin/taskpane")  # the pane stayed

        dialog = page.context.new_page()  # the dialog: the same browser's cookies
        dialog.goto(dialog_url)
        dialog.locator("input[name=email]").fill(team.member)
        dialog.locator("input[name=password]").fill(team.password)
        with dialog.expect_navigation():
            dialog.locator("form[action='/login'] button[type=submit]").click()
        expect(dialog).to_have_url(f"{served.url}/addin/signed-in")
        expect(dialog.get_by_role("heading", level=1)).to_have_text("Signed in")
        dialog.wait_for_function("window.__sent.length > 0")
        sent = dialog.evaluate("window.__sent")
        told = json.loads(sent[0])
        assert told["signedIn"] is True and told["token"]

        page.evaluate(
            """(sent) => window.__dialog.handlers[Office.EventType.DialogMessageReceived](
                { message: sent, origin: location.origin })""",
            sent[0],
        )
        assert page.evaluate("window.__dialog.closed") is True
        expect(page.locator("#record h1")).to_have_text("Dana Whitfield")
        expect(page.locator("#sign-in")).to_be_hidden()


def test_a_message_from_another_origin_is_ignored(served: Served, browser: Browser) -> None:
    with pane(browser, message(DANA, "Dana", me=served.team.member)) as page:
        page.goto(f"{served.url}/addin/taskpane")
        page.get_by_role("link", name="Sign in").click()
        page.evaluate(
            """() => window.__dialog.handlers[Office.EventType.DialogMessageReceived](
                { message: JSON.stringify({ signedIn: true, token: "forged" }),
                  origin: "https://evil.example" })"""
        )
        assert page.evaluate("window.__dialog.closed") is False
        expect(page.locator("#sign-in")).to_be_visible()


def test_a_pane_without_the_session_cookie_reads_with_the_token_the_dialog_handed_over(
    served: Served, browser: Browser
) -> None:
    """Outlook on the web frames the pane in its own site, where the session cookie is not
    sent: here the pane is a browser context with no cookie at all, the dialog another one
    that signs in; the token its last page hands over is all the pane needs."""
    team = served.team
    with pane(browser, message(DANA, "Dana", me=team.member)) as page:
        page.goto(f"{served.url}/addin/taskpane")
        page.get_by_role("link", name="Sign in").click()
        with pane(browser, message(DANA, "Dana", me=team.member)) as dialog:
            sign_in(dialog, served.url, team.member, team.password)
            dialog.goto(f"{served.url}/addin/signed-in")
            dialog.wait_for_function("window.__sent.length > 0")
            sent = dialog.evaluate("window.__sent")[0]
        unsigned = "fetch('/addin/record?address=x%40y.example').then((r) => r.status)"
        assert page.evaluate(unsigned) == 401  # the pane's own cookie holds no sign-in
        with page.expect_response(lambda r: "/addin/record?" in r.url) as asked:
            page.evaluate(
                """(sent) => window.__dialog.handlers[Office.EventType.DialogMessageReceived](
                    { message: sent, origin: location.origin })""",
                sent,
            )
        assert asked.value.status == 200
        assert asked.value.request.headers["authorization"].startswith("Bearer ")
        expect(page.locator("#record h1")).to_have_text("Dana Whitfield")
        expect(page.locator("#sign-in")).to_be_hidden()


def test_the_gmail_add_on_cards_drawn_for_an_admin(served: Served, browser: Browser) -> None:
    """``/addon/preview`` draws the card JSON the add-on answers with; hostile text in the
    cards stays text there too."""
    context = browser.new_context(viewport=ViewportSize(width=1280, height=1600))
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch()
    try:
        page = context.new_page()
        watch.attach(page)
        sign_in(page, served.url, served.team.admin, served.team.password)
        page.goto(f"{served.url}/addon/preview?address=dana%40acme.example")
        expect(page.get_by_text("Dana Whitfield").first).to_be_visible()
        expect(page.get_by_text("Acme Widgets").first).to_be_visible()
        expect(page.get_by_text("New Person").first).to_be_visible()
        expect(page.get_by_text("Sign in").first).to_be_visible()
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert watch.dialogs == []
        assert [u for u in watch.requests if not u.startswith(served.url + "/")] == []
        screenshot(page, served, "gmail-addon-cards.png")
    finally:
        context.close()
