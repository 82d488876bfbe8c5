"""A busy server in a real Chromium: 503 with Retry-After keeps the report queued on the
device, and the page sends it again by itself after that time; it arrives exactly once."""

from __future__ import annotations

import json
from typing import Any

from pages import DeviceReportPage, QueueControl
from support import translate

BUSY = "Too many people are using this service right now. Wait a minute, then try again."


def test_a_report_refused_as_busy_is_kept_and_sent_again_without_a_touch(live_server: Any, browser: Any) -> None:
    # The page alone (no service worker): its own retry is what is tested here.
    context = browser.new_context(service_workers="block")
    answers: list[int] = []

    def busy_twice(route: Any) -> None:
        if len(answers) < 2:
            answers.append(503)
            # Exactly what intake answers when every hash slot is taken (intake/report/api.py).
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body=json.dumps({"error": "busy", "message": BUSY}))
        else:
            answers.append(0)
            route.continue_()

    try:
        page = context.new_page()
        page.route("**/api/reports", busy_twice)
        report = DeviceReportPage(page, live_server.url, "en").open()
        report.fill("marker-busy-5521")
        report.send()
        assert report.receipt_code()  # the receipt is shown at once, queued or not
        report.wait_for_delivery(translate("en", "Your report was received."), timeout=20_000)
        assert answers[:2] == [503, 503] and len(answers) == 3  # nobody pressed anything
        QueueControl(page).wait_until_empty(timeout=5_000)
    finally:
        context.close()
    whats = [d["report"]["what"] for d in json.loads(live_server.decrypt())]
    assert whats == ["marker-busy-5521"]
