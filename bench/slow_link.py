"""The report page on a slow link: time to a usable form, and from "Send" to the receipt.

The link is Chromium's network emulation (CDP Network.emulateNetworkConditions): 400 kbit/s
down and up, 400 ms round trip. It is applied to the page and to the service worker, which
is a target of its own: the worker fetches the page on a repeat visit (network first) and
may send the queue itself (Background Sync), so a page-only emulation would let those go at
loopback speed. Chromium adds the latency once per request and shares the throughput among
requests; it does not model TCP or TLS handshakes, so a real link of this kind is slower.

Usable: the form is painted (first contentful paint) and report.js has run: queue.js has
written the "reports waiting" line (`#queue-waiting`), which happens after the whole module
graph has loaded and executed, the submit handler is attached, and IndexedDB has answered.
The time is the later of the two, from the start of navigation (`performance.now()`).

Submit: a 2,000-word report typed into "What happened?" (filled at once; typing is not
timed), then from the click on "Send my report" to the receipt code on screen, and to
"Your report was received." (the server stored it). The page shows the code before the
upload, so the second figure is the one that depends on the link and the server.

Each figure is the median of RUNS, in a fresh profile for first visits and in one profile
with the service worker installed for repeat visits and submissions.
Run: .venv/bin/python bench/slow_link.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from sample import report_text  # noqa: E402
from server import discard, new_instance, serving  # noqa: E402

from harness import launch_chromium  # noqa: E402

RUNS = 5
REPORT_WORDS = 2000
LINK = {
    "offline": False,
    "latency": 400,  # ms, round trip
    "downloadThroughput": 400_000 / 8,  # bytes/s
    "uploadThroughput": 400_000 / 8,
}

# Installed before any script of the page runs; records when the form became usable.
USABLE_PROBE = """(() => {
  const marks = window.__bench = {};
  const check = () => {
    if (marks.usable) return;
    const queue = document.getElementById('queue-waiting');
    if (document.getElementById('send') && queue && queue.textContent) {
      marks.usable = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true});
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.name === 'first-contentful-paint') marks.fcp = entry.startTime;
    }
  }).observe({type: 'paint', buffered: true});
})()"""

# page.wait_for_function would evaluate a string, which the page's CSP forbids; a promise
# that polls needs no eval.
WAIT_FOR = """([condition, timeoutMs]) => new Promise((resolve, reject) => {
  const until = performance.now() + timeoutMs;
  const tick = () => {
    let met = false;
    if (condition === 'usable') met = window.__bench && window.__bench.usable && window.__bench.fcp;
    if (condition === 'received') met = window.__submit && window.__submit.received;
    if (met) resolve(true);
    else if (performance.now() > until) reject(new Error(condition + ': timed out'));
    else setTimeout(tick, 10);
  };
  tick();
})"""
TIMEOUT_MS = 60_000

READ_USABLE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {usable_ms: Math.max(window.__bench.usable, window.__bench.fcp),
          script_ready_ms: window.__bench.usable, first_paint_ms: window.__bench.fcp,
          dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd};
}"""

# Installed just before the click; records the click, the code on screen, the server's yes.
SUBMIT_PROBE = """() => {
  const marks = window.__submit = {};
  const received = JSON.parse(document.getElementById('page-data').textContent)
    .strings.delivery_sent;
  document.getElementById('send').addEventListener('click', () => {
    marks.click = performance.now();
  }, {capture: true});
  new MutationObserver(() => {
    const now = performance.now();
    if (!marks.code && document.getElementById('receipt-code').textContent.trim()) {
      marks.code = now;
    }
    if (!marks.received && document.getElementById('delivery').textContent === received) {
      marks.received = now;
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


class Link:
    """Applies the emulated link to pages and to the service worker of one browser."""

    def __init__(self, browser: Any) -> None:
        self.session = browser.new_browser_cdp_session()
        self.workers: set[str] = set()
        self.errors: list[str] = []
        self.session.on("Target.receivedMessageFromTarget", self._answer)

    def _answer(self, event: dict[str, Any]) -> None:
        message = json.loads(event["message"])
        if "error" in message:
            self.errors.append(str(message["error"]))

    def page(self, context: Any, page: Any) -> None:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", LINK)

    def service_workers(self) -> int:
        """Emulate the link in every service worker not yet done; returns how many are."""
        targets = self.session.send("Target.getTargets")["targetInfos"]
        for target in targets:
            if target["type"] != "service_worker" or target["targetId"] in self.workers:
                continue
            # Playwright's CDP sessions do not address child sessions of the flat protocol,
            # so the worker is reached by the older message-passing form.
            attached = self.session.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": False}
            )
            for number, (method, params) in enumerate(
                (("Network.enable", {}), ("Network.emulateNetworkConditions", LINK)), start=1
            ):
                self.session.send("Target.sendMessageToTarget", {
                    "sessionId": attached["sessionId"],
                    "message": json.dumps({"id": number, "method": method, "params": params}),
                })
            self.workers.add(target["targetId"])
        if self.errors:
            raise RuntimeError(f"network emulation in the service worker failed: {self.errors}")
        return len(self.workers)


def _usable(page: Any) -> dict[str, float]:
    page.evaluate(WAIT_FOR, ["usable", TIMEOUT_MS])
    marks: dict[str, float] = page.evaluate(READ_USABLE)
    return marks


def _first_visit(browser: Any, link: Link, url: str) -> dict[str, float]:
    context = browser.new_context()
    try:
        context.add_init_script(USABLE_PROBE)
        page = context.new_page()
        link.page(context, page)
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
        return _usable(page)
    finally:
        context.close()


def _submit(page: Any, text: str) -> dict[str, float]:
    page.fill("#what", text)
    page.evaluate(SUBMIT_PROBE)
    page.click("#send")
    page.evaluate(WAIT_FOR, ["received", TIMEOUT_MS])
    marks: dict[str, float] = page.evaluate("window.__submit")
    return {"receipt_code_ms": marks["code"] - marks["click"],
            "received_ms": marks["received"] - marks["click"]}


def _repeat_visits(browser: Any, link: Link, url: str, runs: int) -> list[dict[str, Any]]:
    context = browser.new_context()
    text = report_text(REPORT_WORDS)
    try:
        context.add_init_script(USABLE_PROBE)
        first = context.new_page()  # at full speed: only the worker's install is wanted
        first.goto(url, wait_until="load")
        first.evaluate("navigator.serviceWorker.ready.then(() => true)")
        first.close()
        results = []
        for _ in range(runs):
            page = context.new_page()
            link.page(context, page)
            workers = link.service_workers()
            page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
            marks: dict[str, Any] = _usable(page)
            marks["controlled_by_worker"] = page.evaluate("!!navigator.serviceWorker.controller")
            marks["emulated_workers"] = workers
            marks.update(_submit(page, text))
            page.close()
            results.append(marks)
        return results
    finally:
        context.close()


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(row[key] for row in rows))


def measure(runs: int = RUNS) -> dict[str, Any]:
    with serving(created := new_instance()) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        link = Link(browser)
        url = f"http://127.0.0.1:{port}/en/"
        first = [_first_visit(browser, link, url) for _ in range(runs)]
        repeat = _repeat_visits(browser, link, url, runs)
        browser.close()
    discard(created)
    return {
        "link": {"down_kbit_s": 400, "up_kbit_s": 400, "rtt_ms": LINK["latency"]},
        "runs": runs, "report_words": REPORT_WORDS,
        "first_visit_usable_ms": _median(first, "usable_ms"),
        "repeat_visit_usable_ms": _median(repeat, "usable_ms"),
        "submit_to_receipt_code_ms": _median(repeat, "receipt_code_ms"),
        "submit_to_received_ms": _median(repeat, "received_ms"),
        "first_visit": first, "repeat_visit": repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    result = measure(parser.parse_args().runs)
    print(f"emulated link: 400 kbit/s down and up, {LINK['latency']} ms round trip; "
          f"median of {result['runs']}")
    print(f"usable form, first visit          {result['first_visit_usable_ms']:7.0f} ms")
    print(f"usable form, repeat visit         {result['repeat_visit_usable_ms']:7.0f} ms")
    print(f"{REPORT_WORDS}-word report, Send to code      "
          f"{result['submit_to_receipt_code_ms']:7.0f} ms")
    print(f"{REPORT_WORDS}-word report, Send to received  "
          f"{result['submit_to_received_ms']:7.0f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
