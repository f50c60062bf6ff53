"""A real browser for the web tests: Debian's Chromium, driven by Playwright.

The :func:`browser` fixture launches the system's Chromium (``/usr/bin/chromium``,
or the file named by ``CRM_SYNC_CHROMIUM``) headless, once per test session,
with everything that would reach the network on its own switched off. Nothing
is downloaded: ``playwright install`` is never needed. Where Chromium is
missing the tests skip with how to install it -- except under ``CI=true``,
where they fail (:func:`tests.support.servers.need_server`).

A conftest registers the fixture with ``pytest_plugins = ["tests.support.browser"]``;
a test module may instead define its own ``browser`` fixture around :func:`launched`
(importing the fixture into a module makes every test's ``browser`` argument a
redefinition to the linters). Tests open pages with :func:`new_page`, one browser
context (cookies, storage) per person, signed in through the real form with
:func:`sign_in`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    ViewportSize,
    sync_playwright,
)

from tests.support.servers import need_server

CHROMIUM = Path(os.environ.get("CRM_SYNC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_HOW_TO = (
    f"Chromium is not installed at {CHROMIUM}: run `sudo bash tests/setup/install_chromium.sh` "
    "(or set CRM_SYNC_CHROMIUM to a Chromium binary)"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000
"""How long a step (a click, a wait for text) may take before the test fails."""


@contextmanager
def launched() -> Iterator[Browser]:
    """Headless Chromium until the block ends; skips (fails in CI) where it is missing."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        need_server(CHROMIUM_HOW_TO)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session; each test opens its own contexts."""
    with launched() as chromium:
        yield chromium


@dataclass
class Watch:
    """Everything a page did that a test may want to rule out: each request's URL, each
    console message, each dialog (``alert``, ``confirm``...) it opened."""

    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@contextmanager
def new_page(browser: Browser, watch: Watch | None = None) -> Iterator[Page]:
    """A page in a new context (no cookies shared with any other) at 1280×800."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        if watch is not None:
            watch.attach(page)
        yield page
    finally:
        context.close()


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in with the real form, as a person does; fails unless the app lets them in."""
    page.goto(f"{base_url}/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.locator("form[action='/login'] button[type=submit]").click()
    if page.url.split("?", 1)[0].endswith("/login"):
        error = page.locator(".flash.error")
        shown = error.inner_text() if error.count() else "(no message)"
        raise AssertionError(f"signing in as {email} failed: {shown}")
