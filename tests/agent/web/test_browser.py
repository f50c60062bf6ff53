"""The web app in a real browser (Chromium), against ``crm-sync serve`` on both databases.

What only a browser shows: the search box's as-you-type results (``app.js``),
forms posted with their CSRF tokens and followed through their redirects,
two people editing the same field at once, what a member may not see, and
that hostile mail stays text under the page's Content-Security-Policy --
no script runs, no dialog opens, nothing loads from another host.

Each test edits a field no other test touches (``title``, ``lead_source``,
``preferred_channel``) and resolves the conflicts it opens, so the tests
pass in any order against the module's one seeded team
(:func:`tests.agent.web.conftest.served`).

With ``CRM_SYNC_SCREENSHOTS=FOLDER`` the last test also writes the pages'
screenshots at 1280×800 into FOLDER (``docs/screenshots`` for the docs);
without it nothing is written, so a CI run never writes into the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from tests.agent.web.conftest import Served
from tests.support.browser import Watch, new_page, sign_in

CSP_WORDS = ("Content Security Policy", "Content-Security-Policy", "Refused to", "violates the")
RECORD_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""
"""Installed before any page script (Playwright's init scripts are not subject to the
page's CSP): every violation the browser reports, whatever the console says."""


def signed_in(page: Page, served: Served, email: str) -> Page:
    sign_in(page, served.url, email, served.team.password)
    return page


def edit_form(page: Page, name: str) -> Locator:
    """The contact page's one ``<form class="edit">`` for field ``name``."""
    return page.locator("form.edit").filter(
        has=page.locator(f"input[name=value][aria-label='{name}']")
    )


def save_field(page: Page, name: str, value: str) -> None:
    form = edit_form(page, name)
    form.locator("input[name=value]").fill(value)
    with page.expect_navigation():
        form.get_by_role("button", name="Save").click()


def field_row(page: Page, name: str) -> Locator:
    return page.locator("table.fields tr").filter(has=page.locator(f"th:text-is('{name}')"))


def open_conflict(page: Page, name: str) -> Locator:
    """The contact page's line for an open conflict on ``name``."""
    return page.locator("section.conflicts p.conflict").filter(
        has=page.locator(f"strong:text-is('{name}')")
    )


def make_conflict(browser: Browser, served: Served, name: str, first: str, second: str) -> None:
    """Bob and Ann open Dana's page; Bob saves ``first``, then Ann, from the same page as
    she opened it, saves ``second``: the app must keep both as a conflict."""
    dana = f"{served.url}/contacts/{served.team.dana_id}"
    with new_page(browser) as bob, new_page(browser) as ann:
        signed_in(bob, served, served.team.member).goto(dana)
        signed_in(ann, served, served.team.admin).goto(dana)
        seen = edit_form(ann, name).locator("input[name=seen]").input_value()
        assert edit_form(bob, name).locator("input[name=seen]").input_value() == seen

        save_field(bob, name, first)
        expect(bob.locator(".flash")).to_contain_text(f"{name} saved")

        save_field(ann, name, second)
        expect(ann.locator(".flash.error")).to_contain_text(
            f"{name}: someone changed it since you opened the page"
        )
        expect(ann.get_by_role("heading", name="Open conflicts")).to_be_visible()
        line = open_conflict(ann, name)
        expect(line).to_have_count(1)
        expect(line).to_contain_text(first)
        expect(line).to_contain_text(second)


def resolve(page: Page, served: Served, name: str, keep: str) -> None:
    """As an admin on /admin/conflicts: keep ``keep`` for Dana's open conflict on ``name``."""
    page.goto(f"{served.url}/admin/conflicts")
    card = (
        page.locator("section.card.conflict")
        .filter(has=page.locator(f"a[href='/contacts/{served.team.dana_id}']"))
        .filter(has=page.locator("form.resolve"))
        .filter(has_text=f"· {name}")
    )
    expect(card).to_have_count(1)
    button = card.locator("button[name=keep]").filter(has_text=f"Keep “{keep}”")
    expect(button).to_have_count(1)
    assert button.get_attribute("value") in ("manual", "latest")
    with page.expect_navigation():
        button.click()
    expect(page.locator(".flash")).to_contain_text(f"resolved: {name} = {keep}")


def test_search_as_you_type_then_the_contact(served: Served, browser: Browser) -> None:
    team = served.team
    with new_page(browser) as page:
        signed_in(page, served, team.member)
        page.goto(f"{served.url}/search")
        expect(page.locator("#results")).not_to_contain_text("Dana Whitfield")
        # A mark on this document: still there after the results change, it proves they
        # were swapped in by the page's script, not by loading another page.
        page.evaluate("window.__same_document = true")
        with page.expect_response(lambda r: "/search/results?q=" in r.url) as fetched:
            page.locator("#q").press_sequentially("acm", delay=40)
        assert fetched.value.status == 200

        results = page.locator("#results")
        expect(results).to_contain_text("Dana Whitfield")
        expect(results).to_contain_text("Acme Widgets")
        expect(page).to_have_url(f"{served.url}/search?q=acm")
        assert page.evaluate("window.__same_document") is True

        with page.expect_navigation():
            results.get_by_role("link", name="Dana Whitfield").click()
        expect(page).to_have_url(f"{served.url}/contacts/{team.dana_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Dana Whitfield")
        expect(page.locator(".timeline").get_by_text(team.shared_subject).first).to_be_visible()
        knows = page.locator("section.card").filter(
            has=page.get_by_role("heading", name="Who on the team knows them")
        )
        expect(knows).to_be_visible()
        expect(knows.locator("ol.teammates li").filter(has_text="Bob")).to_have_count(1)


def test_a_saved_field_shows_who_set_it(served: Served, browser: Browser) -> None:
    team = served.team
    with new_page(browser) as page:
        signed_in(page, served, team.member)
        page.goto(f"{served.url}/contacts/{team.dana_id}")
        save_field(page, "title", "Chief Financial Officer")

        expect(page).to_have_url(f"{served.url}/contacts/{team.dana_id}")
        expect(page.locator(".flash")).to_contain_text("title saved")
        row = field_row(page, "title")
        expect(row.locator("input[name=value]")).to_have_value("Chief Financial Officer")
        expect(row.locator(".provenance")).to_contain_text(f"set by user:{team.member}")
        expect(open_conflict(page, "title")).to_have_count(0)

        page.reload()  # the flash was for one page only; the value stays
        expect(page.locator(".flash")).to_have_count(0)
        expect(field_row(page, "title").locator("input[name=value]")).to_have_value(
            "Chief Financial Officer"
        )


def test_two_people_edit_one_field_and_an_admin_resolves_it(
    served: Served,
    browser: Browser,
) -> None:
    team = served.team
    make_conflict(browser, served, "lead_source", "Trade show", "Referral")
    with new_page(browser) as ann:
        signed_in(ann, served, team.admin)
        resolve(ann, served, "lead_source", keep="Referral")

        ann.goto(f"{served.url}/contacts/{team.dana_id}")
        expect(field_row(ann, "lead_source").locator("input[name=value]")).to_have_value("Referral")
        expect(open_conflict(ann, "lead_source")).to_have_count(0)
        ann.goto(f"{served.url}/admin/conflicts")
        expect(ann.locator("section.card.conflict").filter(has_text="· lead_source")).to_have_count(
            0
        )


def test_a_member_sees_only_what_is_theirs_to_see(served: Served, browser: Browser) -> None:
    team = served.team
    dana = f"{served.url}/contacts/{team.dana_id}"
    with new_page(browser) as bob, new_page(browser) as cat:
        signed_in(bob, served, team.member).goto(dana)
        expect(bob.get_by_text(team.shared_subject).first).to_be_visible()
        expect(bob.get_by_text(team.private_subject)).to_have_count(0)
        assert team.private_subject not in bob.content()
        expect(bob.locator(".timeline")).to_contain_text(
            "1 private interaction in someone else's mailbox not shown"
        )
        expect(bob.get_by_role("link", name="Admin")).to_have_count(0)
        for path in ("/admin/connectors", "/admin/conflicts", "/admin/audit", "/admin/users"):
            response = bob.goto(f"{served.url}{path}")
            assert response is not None
            assert response.status == 403, path

        signed_in(cat, served, team.other).goto(dana)
        expect(cat.get_by_text(team.private_subject).first).to_be_visible()
        expect(
            cat.locator(".timeline .entry").filter(has_text=team.private_subject)
        ).to_contain_text("private")
        expect(cat.locator(".timeline")).not_to_contain_text("not shown")


def assert_inert(page: Page, watch: Watch, served: Served) -> None:
    """Hostile markup on ``page`` stayed text: nothing ran, opened, or loaded from elsewhere."""
    assert page.evaluate("typeof window.__pwned") == "undefined", "a hostile script ran"
    assert watch.dialogs == [], "a dialog opened"
    assert any(url == f"{served.url}/static/app.js" for url in watch.requests)  # recording
    strangers = [url for url in watch.requests if not url.startswith(served.url + "/")]
    assert strangers == [], "requests to other hosts"
    literal = page.get_by_text("<script>window.__pwned=1</script>", exact=False)
    assert literal.count() >= 1, "the hostile markup is not shown as text"
    expect(literal.first).to_be_visible()
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert scripts == [f"{served.url}/static/app.js"]
    for tag in ("iframe", "svg", "style", "img", "object", "embed", "base"):
        assert page.locator(tag).count() == 0, f"a <{tag}> element in the page"
    sheets = page.evaluate("[...document.querySelectorAll('link')].map(l => l.href)")
    assert sheets == [f"{served.url}/static/app.css"]
    assert page.locator("a[href^='javascript:' i]").count() == 0
    assert page.locator("[onerror], [onload], [style]").count() == 0
    assert "\u202e" not in page.evaluate("document.body.innerText"), "a bidi override shown"
    assert page.evaluate("window.__csp") == [], "CSP violations"
    blocked = [line for line in watch.console if any(w in line for w in CSP_WORDS)]
    assert blocked == [], "CSP violations in the console"


def test_hostile_mail_stays_text(served: Served, browser: Browser) -> None:
    team = served.team
    watch = Watch()
    with new_page(browser, watch) as page:
        page.add_init_script(RECORD_CSP)
        signed_in(page, served, team.member)

        page.goto(f"{served.url}/contacts/{team.hostile_id}")
        page.wait_for_load_state("networkidle")
        expect(page.locator(".timeline .entry")).to_have_count(1)
        assert_inert(page, watch, served)

        page.goto(f"{served.url}/search?q=evil")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#results ul.hits li")).not_to_have_count(0)
        assert_inert(page, watch, served)

        # The same results, swapped in by the page's script as the person types.
        page.goto(f"{served.url}/search")
        with page.expect_response(lambda r: "/search/results?q=evil" in r.url):
            page.locator("#q").press_sequentially("evil", delay=40)
        expect(page.locator("#results")).to_contain_text("mallory@evil.example")
        page.wait_for_load_state("networkidle")
        assert_inert(page, watch, served)
        assert any("/search/results?q=evil" in url for url in watch.requests)


def test_pages_at_1280_by_800(served: Served, browser: Browser) -> None:
    """Each page renders for an admin; with CRM_SYNC_SCREENSHOTS set (and on SQLite only,
    so one run writes one set), its screenshot is written there."""
    team = served.team
    folder = os.environ.get("CRM_SYNC_SCREENSHOTS", "")
    write = bool(folder) and served.database_url.startswith("sqlite")
    # An open conflict, so the conflicts page and the contact page show one.
    make_conflict(browser, served, "preferred_channel", "phone", "email")
    with new_page(browser) as page:
        signed_in(page, served, team.admin)
        pages = {
            "search.png": "/search?q=acme",
            "contact.png": f"/contacts/{team.dana_id}",
            "company.png": f"/companies/{team.company_id}",
            "admin-connectors.png": "/admin/connectors",
            "admin-conflicts.png": "/admin/conflicts",
        }
        for name, path in pages.items():
            response = page.goto(f"{served.url}{path}")
            assert response is not None
            assert response.status == 200, path
            shot = page.screenshot(full_page=False)
            assert shot.startswith(b"\x89PNG")
            if write:
                Path(folder).mkdir(parents=True, exist_ok=True)
                (Path(folder) / name).write_bytes(shot)
        resolve(page, served, "preferred_channel", keep="phone")
