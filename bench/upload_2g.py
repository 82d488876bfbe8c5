"""Uploading 5 MB of attachment over a slow link: 400 kbit/s each way, 400 ms round trip.

A real Chromium sends a report with a 5 MB video to `intake serve` (production argon2id),
its network throttled with CDP's Network.emulateNetworkConditions. The time runs from
"Send my report" to the page saying the report was received (sealing, queueing, opening the
upload, 40 chunks of 128 KiB, each answered), against the time the bytes alone need at
that speed. It takes about two minutes.
Run: .venv/bin/python bench/upload_2g.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

from server import new_instance, serving

from intake import attachments as att

from harness import launch_chromium

SIZE = 5 * 1024 * 1024
KBIT_PER_S = 400
RTT_MS = 400


def measure() -> dict[str, Any]:
    """Seconds from send to received for 5 MB at 400 kbit/s and 400 ms, and what they cost."""
    data = os.urandom(SIZE)
    bytes_per_s = KBIT_PER_S * 1000 / 8
    with serving(new_instance()) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        # The page sends: a service worker's requests would escape the page's throttling.
        context = browser.new_context(service_workers="block")
        page = context.new_page()
        puts: list[float] = []
        page.on("requestfinished",
                lambda r: puts.append(time.monotonic()) if r.method == "PUT" else None)
        page.goto(f"http://127.0.0.1:{port}/en/")
        page.set_input_files("#file-input",
                             [{"name": "v.mp4", "mimeType": "video/mp4", "buffer": data}])
        page.wait_for_function(
            "() => document.querySelectorAll('#attachment-list li').length === 1")
        page.fill("#what", "benchmark")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": RTT_MS,
            "downloadThroughput": bytes_per_s, "uploadThroughput": bytes_per_s,
        })
        start = time.monotonic()
        page.click("#send")
        page.locator("#delivery", has_text="Your report was received.").wait_for(timeout=900_000)
        total = time.monotonic() - start
        browser.close()
    sealed = att.sealed_size(SIZE)
    ideal = sealed / bytes_per_s
    return {
        "name": "upload_2g", "bytes": SIZE, "sealed_bytes": sealed, "kbit_per_s": KBIT_PER_S,
        "rtt_ms": RTT_MS, "chunks": att.chunk_count(SIZE), "seconds": total,
        "line_seconds": ideal, "overhead": total / ideal - 1,
        "effective_kbit_per_s": SIZE * 8 / 1000 / total,
        "first_chunk_after_seconds": (puts[0] - start) if puts else None,
    }


def main() -> None:
    r = measure()
    print(f"{r['bytes']} bytes in {r['chunks']} chunks over {r['kbit_per_s']} kbit/s, "
          f"{r['rtt_ms']} ms RTT: {r['seconds']:.1f} s from send to received "
          f"(the bytes alone need {r['line_seconds']:.1f} s; overhead {r['overhead']:.0%}; "
          f"effective {r['effective_kbit_per_s']:.0f} kbit/s)")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
