"""Offline reporting in a real Chromium against a real `intake serve`: a focal point's
tablet takes three reports with the network off, keeps only ciphertext, and delivers each
exactly once when the network returns; a status check made offline says so plainly."""

from __future__ import annotations

import json
import secrets
from typing import Any

from device import cached_responses, indexeddb, wait_for_worker

from intake import receipts

from pages import DeviceReportPage, FocalPage, OfflineStatusPage, QueueControl, StatusPage
from support import translate

WAITING = "Reports waiting on this device to be sent: %(num)d"


def _decrypted(server: Any) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = json.loads(server.decrypt())
    return documents


def _enrolled_tablet(server: Any, context: Any, name: str) -> tuple[Any, str]:
    point_id, code = server.focal_add(name)
    page = context.new_page()
    focal = FocalPage(page, server.url, "en").open()
    focal.state(translate("en", "This tablet is not enrolled."))
    focal.enrol(code)
    focal.state(translate("en", "This tablet is enrolled as %(name)s.", name=name))
    wait_for_worker(page)
    return page, point_id


def test_focal_tablet_reports_offline_and_delivers_each_once(
    live_server: Any, context: Any
) -> None:
    page, point_id = _enrolled_tablet(live_server, context, "Village A")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    context.set_offline(True)
    report = DeviceReportPage(page, live_server.url, "en").open()  # the kept shell
    assert page.locator("input[name=csrf_token]").count() == 0
    assert report.focal_banner() == translate("en", "Focal point: %(name)s", name="Village A")

    markers = [f"marker-{secrets.token_hex(8)}" for _ in range(3)]
    codes = []
    for n, marker in enumerate(markers, start=1):
        report.fill(f"{marker} happened", place=f"place-{marker}")
        report.choose("consent_statistics-1")
        report.send()
        # The code is shown at once, without the server.
        code = receipts.normalise(report.receipt_code())
        codes.append(code)
        report.wait_for_delivery(translate("en", "Your report is locked and kept on this device. It has not reached us yet: it will be sent when there is a connection."))
        QueueControl(page).expect_waiting(translate("en", WAITING, num=n))
        assert report.field_value("what") == ""
        report.next_person()
        # Nothing of the last person is left on screen.
        assert report.form_visible() and not report.receipt_visible()
        assert page.inner_text("#receipt-code") == ""
        assert marker not in page.content()
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert len(set(codes)) == 3
    QueueControl(page).expect_waiting(translate("en", WAITING, num=3))

    # What a searched tablet holds: ciphertext, a signature, page shells. No report text,
    # no receipt code, no CSRF token.
    stored = indexeddb(page)
    assert set(stored) == {"intake"}
    queue = stored["intake"]["queue"]
    assert len(queue) == 3 and all(item["state"] == "waiting" for item in queue)
    for item in queue:
        assert set(item) == {"id", "body", "state"}
        body = json.loads(item["body"])
        assert set(body) == {"envelope", "sealed_receipt", "focal_point", "signature"}
        assert body["focal_point"] == point_id
    (identity,) = stored["intake"]["focal"]
    assert identity["name"] == "Village A" and identity["privateKey"]["extractable"] is False
    kept = cached_responses(page)
    assert {r["url"] for r in kept} >= {f"{live_server.url}/en/", f"{live_server.url}/ar/status"}
    assert all("/api/" not in r["url"] for r in kept)
    everything = json.dumps(stored) + "".join(r["body"] for r in kept)
    for marker in markers:
        assert marker not in everything
    for code in codes:
        assert code not in everything and receipts.display(code) not in everything
    assert "csrf_token" not in everything

    # Nothing reached the server while offline.
    assert _decrypted(live_server) == []

    context.set_offline(False)  # the page's "online" handler sends the queue
    QueueControl(page).wait_until_empty()
    documents = _decrypted(live_server)
    assert len(documents) == 3
    texts = [d["report"]["what"] for d in documents]
    for marker in markers:
        assert sum(marker in text for text in texts) == 1
    assert {d["channel"] for d in documents} == {f"focal:{point_id}"}
    assert {d["sealed_by"] for d in documents} == {"device"}
    assert indexeddb(page)["intake"]["queue"] == []

    status = StatusPage(page, live_server.url, "en")
    for code in codes:
        status.check(receipts.display(code))
        assert status.result_title() == translate(
            "en", "Status: %(status)s", status=translate("en", "Received"))


def test_send_now_delivers_what_waited(live_server: Any, browser: Any) -> None:
    # The browser believes it is online, but uploads fail (a dead link, a captive portal):
    # no "online" event will come, and the person presses "Send now". No service worker,
    # so that the route below sees every upload.
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.route("**/api/reports", lambda route: route.abort("connectionreset"))
        report = DeviceReportPage(page, live_server.url, "fr").open()
        marker = f"marker-{secrets.token_hex(8)}"
        report.fill(marker)
        report.send()
        code = receipts.normalise(report.receipt_code())
        report.wait_for_delivery(translate("fr", "Your report is locked and kept on this device. It has not reached us yet: it will be sent when there is a connection."))
        control = QueueControl(page)
        control.expect_waiting(translate("fr", WAITING, num=1))
        assert _decrypted(live_server) == []

        page.unroute("**/api/reports")
        control.send_now()
        control.wait_until_empty()
        report.wait_for_delivery(translate("fr", "Your report was received."))
        (document,) = _decrypted(live_server)
        assert document["report"]["what"] == marker and document["channel"] == "web"
        assert document["report"]["language"] == "fr"
        StatusPage(page, live_server.url, "fr").check(code)
        assert page.locator("#result-title").is_visible()
    finally:
        context.close()


def test_status_check_offline_says_so(live_server: Any, context: Any) -> None:
    page = context.new_page()
    report = DeviceReportPage(page, live_server.url, "en").open()
    wait_for_worker(page)
    context.set_offline(True)
    report.fill(f"marker-{secrets.token_hex(8)}")
    report.send()
    report.receipt_code()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    status = OfflineStatusPage(page, live_server.url, "en")
    code = receipts.display(receipts.new_code())
    status.check(code)
    assert status.offline_note() == translate("en", "There is no connection, so the status of a report cannot be checked now. Try again when you are online.")
    QueueControl(page).expect_waiting(translate("en", WAITING, num=1))
    assert page.input_value("#code") == code
    assert not any("/status" in url for url in posts)

    # A post that goes out anyway (no script ran, or the browser thought it was online)
    # gets the kept offline page from the service worker, not the browser's error page.
    page.evaluate("HTMLFormElement.prototype.submit.call(document.getElementById('status-form'))")
    page.locator("h1", has_text=translate("en", "You are offline")).wait_for(timeout=10_000)
    assert page.url == f"{live_server.url}/en/status"
    QueueControl(page).expect_waiting(translate("en", WAITING, num=1))


def test_focal_tablet_empties_itself_when_idle(live_server: Any, context: Any) -> None:
    context.clock.install()
    page, _ = _enrolled_tablet(live_server, context, "Village B")
    report = DeviceReportPage(page, live_server.url, "en").open()
    report.focal_banner()
    report.fill("first person's report")
    report.send()
    report.receipt_code()
    page.clock.fast_forward("04:00")
    assert report.receipt_visible()
    page.clock.fast_forward("01:30")  # five minutes (the default) without input
    page.locator("#done").wait_for(state="hidden", timeout=10_000)
    assert page.inner_text("#receipt-code") == ""
    report.fill("half written")
    page.clock.fast_forward("05:30")
    page.locator("#what").wait_for(state="visible")
    assert report.field_value("what") == ""


def test_enrolment_code_works_once(live_server: Any, context: Any) -> None:
    _, code = live_server.focal_add("Village C")
    first = FocalPage(context.new_page(), live_server.url, "en").open()
    first.enrol(code)
    first.state(translate("en", "This tablet is enrolled as %(name)s.", name="Village C"))
    other = FocalPage(context.browser.new_context().new_page(), live_server.url, "en").open()
    try:
        other.enrol(code)
        assert other.enrol_error() == translate("en", "This enrolment code is not valid, or was already used. Ask your organisation for a new one.")
    finally:
        other.page.context.close()


def test_export_writes_a_queue_file_of_ciphertext(live_server: Any, context: Any, tmp_path: Any) -> None:
    page, point_id = _enrolled_tablet(live_server, context, "Village D")
    context.set_offline(True)
    report = DeviceReportPage(page, live_server.url, "en").open()
    marker = f"marker-{secrets.token_hex(8)}"
    report.fill(marker)
    report.send()
    report.receipt_code()
    focal = FocalPage(page, live_server.url, "en").open()
    saved = tmp_path / "queue.json"
    focal.export().save_as(saved)
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["format"] == "intake-queue" and data["version"] == 1
    (item,) = data["items"]
    assert set(item) == {"envelope", "sealed_receipt", "focal_point", "signature"}
    assert item["focal_point"] == point_id and marker not in saved.read_text(encoding="utf-8")
    # Exporting removes nothing: the report still waits to be sent.
    QueueControl(page).expect_waiting(translate("en", WAITING, num=1))


def test_refused_report_is_kept_and_what_was_typed_comes_back(
    live_server: Any, browser: Any
) -> None:
    # A page whose key the instance does not know (as after a key was withdrawn while a
    # phone kept an old page): the server refuses the envelope for good.
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from intake.crypto import b64encode

    stranger = b64encode(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint))
    (key,) = live_server.created.config.recipients
    context = browser.new_context(service_workers="block")  # so that the route sees the page
    try:
        page = context.new_page()

        def other_key(route: Any) -> None:
            response = route.fetch()
            route.fulfill(response=response, body=response.text().replace(key.text, stranger))

        page.route(f"{live_server.url}/en/", other_key)
        report = DeviceReportPage(page, live_server.url, "en").open()
        marker = f"marker-{secrets.token_hex(8)}"
        report.fill(marker, place="kept-place")
        report.send()
        report.receipt_code()
        report.wait_for_delivery(translate("en", "Your report could not be accepted, so this receipt code will not work. It is kept, locked, on this device."))
        assert translate("en", "The report was locked with a key this organisation does not use. Reload the page and send it again.") in report.delivery()
        (item,) = indexeddb(page)["intake"]["queue"]
        assert item["state"] == "refused" and item["error"] == "unknown_key"
        page.locator("#queue-refused", has_text=translate("en", "Reports that were not accepted, kept locked on this device: %(num)d", num=1)).wait_for()

        page.click("#back-to-report")
        assert report.form_visible()
        assert report.field_value("what") == marker and report.field_value("place") == "kept-place"
        assert _decrypted(live_server) == []
    finally:
        context.close()
