"""Page weight of the report page's first visit, as served by `intake serve`.

Prints bytes transferred (compressed bodies plus headers, as Chromium counts them) and the
request count, for each language. Run: .venv/bin/python bench/page_weight.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))


from server import new_instance, serving  # noqa: E402

from harness import launch_chromium  # noqa: E402

BUDGET_BYTES, BUDGET_REQUESTS = 40 * 1024, 10


def main() -> None:
    with serving(new_instance()) as port:
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
    print(f"{'page':8} {'bytes':>8} {'requests':>9}"
          f"   budget: {BUDGET_BYTES} B, {BUDGET_REQUESTS} requests")
    for row in rows:
        print(f"{row['page']:8} {row['bytes']:>8} {row['requests']:>9}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
