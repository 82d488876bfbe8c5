"""Page weight of the report page, as served by `intake serve`: first and repeat visit.

First visit: bytes transferred (compressed bodies plus headers, as Chromium counts them)
and the request count, for each language, in a fresh browser profile; and the bodies'
size uncompressed, which is how some other projects quote their page weight. The service worker
registers after the page has loaded; it and what it keeps are not counted.

Repeat visit: once the service worker is installed, the same page opened again. Counts
what still crossed the network, including what the worker itself fetched (Chromium reports
those requests with the worker as their initiator), and what the worker answered from its
cache without the network.
Run: .venv/bin/python bench/page_weight.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))


from server import discard, new_instance, serving  # noqa: E402

from harness import launch_chromium  # noqa: E402

BUDGET_BYTES, BUDGET_REQUESTS = 40 * 1024, 10
# After the repeat visit's network goes idle, how long to go on listening for what the
# worker fetches on its own (an update check of sw.js, say).
SETTLE_S = 1.0


def _wire_bytes(request: Any) -> int:
    sizes = request.sizes()
    return int(sizes["responseBodySize"] + sizes["responseHeadersSize"])


def _first_visit(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context()
    page = context.new_page()
    requests: list[Any] = []

    def record(request: Any, sink: list[Any] = requests) -> None:
        # Playwright cannot take a bound builtin such as list.append.
        sink.append(request)

    page.on("requestfinished", record)
    page.goto(url, wait_until="networkidle")
    total = sum(_wire_bytes(r) for r in requests)
    # Bodies as the page got them, decompressed: to compare with figures quoted that way.
    uncompressed = sum(len(r.response().body()) for r in requests)
    context.close()
    return {"bytes": total, "requests": len(requests), "uncompressed_body_bytes": uncompressed}


def _repeat_visit(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context()
    first = context.new_page()
    first.goto(url, wait_until="load")
    # The worker is active and its install, which keeps the shell, is done.
    first.evaluate("navigator.serviceWorker.ready.then(() => true)")
    first.close()
    # Context-wide, so that requests the worker makes are seen too.
    requests: list[Any] = []

    def record(request: Any, sink: list[Any] = requests) -> None:
        sink.append(request)

    context.on("requestfinished", record)
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    controlled = page.evaluate("!!navigator.serviceWorker.controller")
    time.sleep(SETTLE_S)
    network, from_worker = [], []
    for request in requests:
        response = request.response()
        (from_worker if response and response.from_service_worker else network).append(request)
    static = [r for r in network if "/static/" in r.url]
    # The page itself is answered by the worker too, with what it fetched from the network.
    fetched = {r.url for r in network}
    from_cache = [r for r in from_worker if r.url not in fetched]
    result = {
        "controlled_by_worker": controlled,
        "network_bytes": sum(_wire_bytes(r) for r in network),
        "network_requests": ["/" + r.url.split("/", 3)[3] for r in network],
        "static_network_bytes": sum(_wire_bytes(r) for r in static),
        "from_worker_cache": len(from_cache),
    }
    context.close()
    return result


def measure() -> dict[str, Any]:
    """First visit per language, repeat visit in English."""
    with serving(created := new_instance()) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        base = f"http://127.0.0.1:{port}"
        first = [{"page": f"/{lang}/", **_first_visit(browser, f"{base}/{lang}/")}
                 for lang in ("en", "fr", "ar")]
        repeat = {"page": "/en/", **_repeat_visit(browser, f"{base}/en/")}
        version = browser.version
        browser.close()
    discard(created)
    return {"chromium": version, "budget_bytes": BUDGET_BYTES,
            "budget_requests": BUDGET_REQUESTS, "first_visit": first, "repeat_visit": repeat}


def main() -> None:
    result = measure()
    print(f"{'page':8} {'bytes':>8} {'requests':>9} {'uncompressed':>13}"
          f"   budget: {BUDGET_BYTES} B, {BUDGET_REQUESTS} requests")
    for row in result["first_visit"]:
        print(f"{row['page']:8} {row['bytes']:>8} {row['requests']:>9}"
              f" {row['uncompressed_body_bytes']:>13}")
    repeat = result["repeat_visit"]
    print(f"repeat visit to {repeat['page']} with the service worker: "
          f"{repeat['network_bytes']} B over the network "
          f"({', '.join(repeat['network_requests']) or 'nothing'}), of which static files "
          f"{repeat['static_network_bytes']} B; {repeat['from_worker_cache']} requests "
          "answered from the worker's cache")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
