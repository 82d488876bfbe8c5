"""Exactly-once delivery over a network that breaks uploads at seeded random points."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from flaky_proxy import flaky_proxy

from intake import crypto, receipts
from intake import envelope as fmt

from pages import DeviceReportPage, QueueControl

SEEDS = [7, 1234, 99991]


def _queue_item(created: Any, marker: str) -> tuple[str, str]:
    data = crypto.seal({"schema": 1, "what": marker}, created.config.recipients)
    code = receipts.new_code()
    report_id = fmt.parse(data, max_size=1 << 20).report_id
    sealed = crypto.seal_receipt(code, "en", report_id=report_id, key=created.config.receipt_public_key)
    return json.dumps({"envelope": crypto.b64encode(data), "sealed_receipt": crypto.b64encode(sealed)}), code


def _send(port: int, body: str) -> int | None:
    """One attempt, as the queue makes it: the status, or None when the network failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/api/reports", body=body, headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_retrying_queue_delivers_every_report_exactly_once(live_server: Any, seed: int) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    items = [_queue_item(live_server.created, f"flaky-{seed}-{i}") for i in range(8)]
    with flaky_proxy(port, seed=seed, cut=0.35, drop=0.35) as proxy:
        waiting = list(items)
        for _ in range(60):  # bounded: each round retries what is still waiting
            waiting = [item for item in waiting if _send(proxy.port, item[0]) != 201]
            if not waiting:
                break
        fates = dict(proxy.fates)
    assert waiting == []
    # The faults really happened: some uploads were cut, some answers were lost.
    assert fates.get("cut", 0) > 0 and fates.get("drop", 0) > 0
    documents = json.loads(live_server.decrypt())
    whats = sorted(d["report"]["what"] for d in documents)
    assert whats == sorted(f"flaky-{seed}-{i}" for i in range(8))  # none lost, none twice


@pytest.mark.parametrize("seed", [31, 2027])
def test_the_browser_queue_delivers_every_report_exactly_once(live_server: Any, browser: Any, seed: int) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    markers = [f"flaky-browser-{seed}-{i}" for i in range(5)]
    with flaky_proxy(port, seed=seed, cut=0.35, drop=0.35) as proxy:
        # The page itself sends the queue (no service worker), all through the proxy.
        context = browser.new_context(service_workers="block")
        try:
            page = context.new_page()
            base = f"http://127.0.0.1:{proxy.port}"
            # First the reports wait on the device: every upload fails at once.
            page.route("**/api/reports", lambda route: route.abort("internetdisconnected"))
            report = DeviceReportPage(page, base, "en")
            for marker in markers:
                report.open().fill(marker)
                report.send()
                report.receipt_code()
            page.unroute("**/api/reports")
            report.open()
            queue = QueueControl(page)
            # Bounded in time, not in presses: on a busy machine a dropped answer can hold
            # a press for seconds, and a count of presses made this test fail 1 run in 5.
            # The control appears once the page has counted the queue, a moment after
            # load: "hidden" counts as done only when it stays hidden for a while.
            deadline, hidden_for = time.monotonic() + 120, 0
            while hidden_for < 4 and time.monotonic() < deadline:
                if queue.visible():
                    hidden_for = 0
                    # A script click: the control may hide between the check and the
                    # click, and a hidden button would make Playwright wait out its timeout.
                    page.evaluate("document.getElementById('send-now').click()")
                else:
                    hidden_for += 1
                page.wait_for_timeout(500)
            assert hidden_for >= 4, "reports still waiting after two minutes of retries"
        finally:
            context.close()
        fates = dict(proxy.fates)
    assert fates.get("cut", 0) + fates.get("drop", 0) > 0
    whats = sorted(d["report"]["what"] for d in json.loads(live_server.decrypt()))
    assert whats == sorted(markers)  # none lost, none twice
