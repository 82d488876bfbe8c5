"""Quick exit, by the button and by Esc twice: the form is emptied first, the page is
replaced by a neutral one, and Back does not return to it."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from device import wait_for_worker

from pages import DeviceReportPage
from support import translate

# What the page held when it was unloaded, written where the next page of the same origin
# can read it (the test's own instrument: the app never writes sessionStorage).
_RECORD_ON_LEAVING = """() => addEventListener('pagehide', () => sessionStorage.setItem('left', JSON.stringify({
  what: document.getElementById('what').value,
  code: document.getElementById('receipt-code').textContent,
  text: document.body.innerText,
  hidden: getComputedStyle(document.body).visibility === 'hidden'})))"""


def _left(page: Any) -> dict[str, Any]:
    left: dict[str, Any] = json.loads(page.evaluate("sessionStorage.getItem('left')"))
    return left


@pytest.mark.parametrize("how", ["button", "escape"])
def test_quick_exit_empties_the_page_and_leaves_no_way_back(
    live_server: Any, context: Any, how: str
) -> None:
    page = context.new_page()
    page.goto(f"{live_server.url}/en/about")
    report = DeviceReportPage(page, live_server.url, "en").open()
    before = page.evaluate("history.length")
    marker = f"marker-{secrets.token_hex(8)}"
    report.fill(marker, place="somewhere")
    page.evaluate(_RECORD_ON_LEAVING)
    if how == "button":
        report.quick_exit()
    else:
        page.keyboard.press("Escape")
        page.wait_for_timeout(100)
        assert page.url.endswith("/en/") and report.field_value("what") == marker
        page.keyboard.press("Escape")
    page.wait_for_url(f"{live_server.url}/n")
    # The page was emptied and hidden before it was left.
    left = _left(page)
    assert left["what"] == "" and marker not in left["text"] and left["hidden"]
    assert page.title() == "Notes"
    content = page.content()
    assert marker not in content and "Example Organisation" not in content
    assert page.locator("script").count() == 0
    # The report page's history entry was replaced, not added to.
    assert page.evaluate("history.length") == before
    page.go_back()
    assert page.url == f"{live_server.url}/en/about"
    page.go_forward()
    assert page.url == f"{live_server.url}/n"


def test_quick_exit_clears_the_receipt_code(live_server: Any, context: Any) -> None:
    page = context.new_page()
    report = DeviceReportPage(page, live_server.url, "en").open()
    report.fill(f"marker-{secrets.token_hex(8)}")
    report.send()
    code = report.receipt_code()
    page.evaluate(_RECORD_ON_LEAVING)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_url(f"{live_server.url}/n")
    left = _left(page)
    assert left["code"] == "" and code not in left["text"]
    assert code not in page.content()


def test_quick_exit_works_offline(live_server: Any, context: Any) -> None:
    page = context.new_page()
    DeviceReportPage(page, live_server.url, "en").open()
    wait_for_worker(page)
    context.set_offline(True)
    page.reload()
    page.fill("#what", "typed offline")
    page.click("#quick-exit")
    page.wait_for_url(f"{live_server.url}/n")
    assert page.title() == "Notes"


def test_quick_exit_works_without_javascript(live_server: Any, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/fr/")
        page.click("#quick-exit")
        page.wait_for_url(f"{live_server.url}/n")
        assert page.title() == "Notes"
    finally:
        context.close()


def test_the_information_page_says_what_quick_exit_cannot_hide(
    live_server: Any, context: Any
) -> None:
    page = context.new_page()
    page.goto(f"{live_server.url}/en/about")
    text = page.inner_text("main")
    assert translate("en", "Quick exit cannot hide:") in text
    assert page.locator("#leaving").count() == 1
