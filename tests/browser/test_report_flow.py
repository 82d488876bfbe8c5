"""The whole public flow in a real Chromium against a real `intake serve`:
report, receipt, status, no plaintext on the server's disk, decryption by the CLI."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from babel.dates import format_date

from intake import receipts
from intake.config import AVAILABLE_LANGUAGES

from pages import ReportPage, StatusPage
from support import translate


def _received_title(lang: str) -> str:
    return translate(lang, "Status: %(status)s", status=translate(lang, "Received"))


def _assert_marker_absent(server: Any, marker: str) -> None:
    files = server.written_files()
    names = {p.name for p in files}
    assert "intake.db" in names and "server.log" in names
    for path in files:
        data = path.read_bytes()
        for form in (marker.encode("utf-8"), marker.encode("utf-16-le")):
            assert form not in data, f"report text found in plaintext in {path}"


def _decrypted(server: Any) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = json.loads(server.decrypt())
    return documents


@pytest.mark.parametrize("lang", AVAILABLE_LANGUAGES)
def test_report_sealed_in_the_browser(live_server: Any, context: Any, lang: str) -> None:
    marker = f"marker-{secrets.token_hex(8)}"
    page = context.new_page()
    posted: list[bytes] = []
    page.on("request", lambda r: posted.append(r.post_data_buffer or b"") if r.method == "POST" else None)
    report = ReportPage(page, live_server.url, lang).open()
    assert page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    # The instance shows times in UTC (its default time zone); the day may turn meanwhile.
    days = {format_date(datetime.now(UTC), "long", locale=lang)}
    history_before = page.evaluate("history.length")
    report.fill(f"{marker} — ما حدث", place="Bria", perpetrator_nationality="unknown-xyz")
    report.choose("reporter-1").choose("consent_statistics-1").choose("help-0")
    report.send()
    shown = report.receipt_code()
    code = receipts.normalise(shown)  # raises if the page showed a malformed code
    assert shown == receipts.display(code)

    # The report left the device sealed: no request body carried the text.
    assert posted and all(marker.encode() not in body for body in posted)
    # Nothing of the report stays in the page, the history or browser storage.
    assert report.field_value("what") == "" and report.field_value("place") == ""
    assert page.evaluate("history.length") == history_before
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert marker not in page.content()

    status = StatusPage(page, live_server.url, lang)
    status.check(shown)
    assert status.result_title() == _received_title(lang)
    # The date on the timeline is written in the page's language too (Latin digits in
    # Arabic, as Babel writes them: README, Languages).
    days.add(format_date(datetime.now(UTC), "long", locale=lang))
    when = page.locator(".timeline .when").inner_text()
    assert any(when.startswith(day) for day in days), when

    _assert_marker_absent(live_server, marker)
    (document,) = _decrypted(live_server)
    assert document["sealed_by"] == "device"
    payload = document["report"]
    assert payload["what"] == f"{marker} — ما حدث" and payload["language"] == lang
    assert payload["place"] == "Bria" and payload["reporter"] == "carer"
    assert payload["help"] == ["medical"] and payload["consent_statistics"] is True
    assert payload["consent_contact"] is False


def test_report_without_javascript_is_sealed_by_the_server(live_server: Any, browser: Any) -> None:
    marker = f"marker-{secrets.token_hex(8)}"
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        report = ReportPage(page, live_server.url, "fr").open()
        report.fill(marker, place="Kinshasa")
        report.send()
        shown = report.receipt_code()
        receipts.normalise(shown)
        StatusPage(page, live_server.url, "fr").check(shown)
        assert page.locator("#result-title").inner_text() == _received_title("fr")
    finally:
        context.close()
    _assert_marker_absent(live_server, marker)
    (document,) = _decrypted(live_server)
    assert document["sealed_by"] == "server" and document["report"]["what"] == marker


def test_mistyped_code_is_caught_before_any_request(live_server: Any, context: Any) -> None:
    page = context.new_page()
    code = receipts.new_code()
    typo = code[:5] + str((int(code[5]) + 1) % 10) + code[6:]
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    status = StatusPage(page, live_server.url, "en")
    status.check(receipts.display(typo))
    assert status.error() == translate("en", "This code has a mistake: one digit is wrong or two are swapped. Check it and try again.")
    assert posts == []
    assert page.input_value("#code") == receipts.display(typo)


def test_empty_report_keeps_the_page_and_says_what_is_needed(live_server: Any, context: Any) -> None:
    page = context.new_page()
    report = ReportPage(page, live_server.url, "en").open()
    page.fill("#place", "kept-place")
    report.send()
    assert page.locator("#form-status").inner_text() == translate("en", "Please tell us what happened: write it, or record a voice note. It is the only thing you must give us.")
    assert report.field_value("place") == "kept-place"


def test_no_request_leaves_the_instance(live_server: Any, context: Any) -> None:
    page = context.new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    ReportPage(page, live_server.url, "ar").open()
    StatusPage(page, live_server.url, "ar").check("0000")
    page.goto(f"{live_server.url}/ar/about")
    assert hosts == {live_server.url.split("/")[2]}
