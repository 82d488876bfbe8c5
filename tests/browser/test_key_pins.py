"""Key pinning: a device remembers the organisation keys it first sealed to, and does not
seal to another key without telling the person and showing its fingerprint."""

from __future__ import annotations

import json
import secrets
from typing import Any

from device import indexeddb, set_pins

from intake import crypto

from pages import DeviceReportPage
from support import translate


def _report_posts(page: Any) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    return posts


def test_changed_key_is_shown_and_nothing_is_sealed_unless_the_person_agrees(
    live_server: Any, context: Any
) -> None:
    (key,) = live_server.created.config.recipients
    page = context.new_page()
    report = DeviceReportPage(page, live_server.url, "en").open()

    # First use: the page's key is pinned without a question.
    report.fill("first report")
    report.send()
    report.receipt_code()
    report.wait_for_delivery(translate("en", "Your report was received."))
    assert indexeddb(page)["intake"]["pins"] == [{"id": key.key_id.hex()}]

    # The device had seen another key; the page now offers this one.
    other = secrets.token_bytes(32).hex()
    set_pins(page, [other])
    report.open()
    posts = _report_posts(page)
    marker = f"marker-{secrets.token_hex(8)}"
    report.fill(marker, place="kept-place")
    report.send()
    assert report.key_warning_fingerprints() == [crypto.fingerprint(key.key_id)]
    assert not report.receipt_visible()
    assert report.field_value("what") == marker and report.field_value("place") == "kept-place"

    report.dont_send()
    assert not report.key_warning_visible()
    assert report.form_status() == translate("en", "Your report was not sent. Everything you wrote is still here.")
    assert report.field_value("what") == marker
    assert indexeddb(page)["intake"]["queue"] == []
    assert indexeddb(page)["intake"]["pins"] == [{"id": other}]
    assert posts == []

    # Asked again on the next try; "Send anyway" trusts the new key and sends.
    report.send()
    assert report.key_warning_fingerprints() == [crypto.fingerprint(key.key_id)]
    assert indexeddb(page)["intake"]["queue"] == [] and posts == []
    report.send_anyway()
    report.receipt_code()
    report.wait_for_delivery(translate("en", "Your report was received."))
    assert indexeddb(page)["intake"]["pins"] == [{"id": key.key_id.hex()}]
    documents = json.loads(live_server.decrypt())
    assert sorted(d["report"]["what"] for d in documents) == sorted(["first report", marker])


def test_fingerprint_is_on_the_page(live_server: Any, context: Any) -> None:
    (key,) = live_server.created.config.recipients
    page = context.new_page()
    DeviceReportPage(page, live_server.url, "ar").open()
    page.click("details.keys summary")
    assert page.locator(".fingerprint").all_inner_texts() == [crypto.fingerprint(key.key_id)]
