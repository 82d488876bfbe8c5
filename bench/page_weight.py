"""Page weight of the report page's first visit, as served by `intake serve`.

Prints bytes transferred (compressed bodies plus headers, as Chromium counts them) and the
request count, for each language. Run: .venv/bin/python bench/page_weight.py
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from intake import instance  # noqa: E402
from intake.receipts import HashParams  # noqa: E402

from harness import launch_chromium  # noqa: E402

BUDGET_BYTES, BUDGET_REQUESTS = 40 * 1024, 10


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    created = instance.create(
        base / "instance", key_out=base / "org.key", passphrase=secrets.token_hex(16),
        hash_params=HashParams(), secure_cookies=False,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "INTAKE_INSTANCE": str(created.config.instance_dir)}
    server = subprocess.Popen([sys.executable, "-m", "intake", "serve", "--port", str(port)],
                              env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        with sync_playwright() as p:
            browser = launch_chromium(p)
            for lang in ("en", "fr", "ar"):
                context = browser.new_context()
                page = context.new_page()
                requests: list[Any] = []

                def record(request: Any, sink: list[Any] = requests) -> None:
                    # Playwright cannot take a bound builtin such as list.append.
                    sink.append(request)

                page.on("requestfinished", record)
                page.goto(f"http://127.0.0.1:{port}/{lang}/", wait_until="networkidle")
                total = 0
                for r in requests:
                    sizes = r.sizes()
                    total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
                rows.append({"page": f"/{lang}/", "bytes": total, "requests": len(requests)})
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"{'page':8} {'bytes':>8} {'requests':>9}"
          f"   budget: {BUDGET_BYTES} B, {BUDGET_REQUESTS} requests")
    for row in rows:
        print(f"{row['page']:8} {row['bytes']:>8} {row['requests']:>9}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
