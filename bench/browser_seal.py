"""Browser sealing throughput: envelope.js against plain WebCrypto AES-GCM on the same bytes.

Sealing is HPKE for the content key (fixed cost) plus AES-256-GCM over the padded JSON
payload, so for large payloads the ratio to plain AES-GCM shows the format's overhead
(JSON encoding, padding, copies). Real Chromium, median of 5 runs per size.
Run: .venv/bin/python bench/browser_seal.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

from intake import crypto

from harness import launch_chromium, static_server

MEASURE = """async ([size, publicKey]) => {
  const env = await import('/static/js/envelope.js');
  const b = await import('/static/js/bytes.js');
  const alphabet = 'abcdefghijklmnopqrstuvwxyz ';
  const chars = new Array(size);
  for (let i = 0; i < size; i++) chars[i] = alphabet[i % 27];
  const text = chars.join('');
  const payload = {schema: 1, what: text};
  const bytes = new TextEncoder().encode(JSON.stringify(payload));
  const recipients = [{publicKey: b.fromBase64url(publicKey)}];
  const key = await crypto.subtle.generateKey({name: 'AES-GCM', length: 256}, false, ['encrypt']);
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const sealTimes = [], aesTimes = [];
  for (let run = 0; run < 5; run++) {
    let t = performance.now();
    await env.seal(payload, recipients);
    sealTimes.push(performance.now() - t);
    t = performance.now();
    await crypto.subtle.encrypt({name: 'AES-GCM', iv: new Uint8Array(12)}, key, bytes);
    aesTimes.push(performance.now() - t);
  }
  return {seal_ms: median(sealTimes), aes_ms: median(aesTimes)};
}"""


def measure() -> dict[str, Any]:
    """Median seal and AES-GCM times for 1 MB and 10 MB, and their ratio."""
    public = crypto.generate_private_key().public_key.text
    rows = []
    with static_server() as base, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(base + "/")
        for size in (1_000_000, 10_000_000):
            result = page.evaluate(MEASURE, [size, public])
            rows.append({"bytes": size, **result, "ratio": result["seal_ms"] / result["aes_ms"]})
        browser.close()
    return {"runs": 5, "rows": rows}


def main() -> None:
    rows = measure()["rows"]
    print(f"{'payload':>10} {'seal ms':>9} {'AES-GCM ms':>11} {'ratio':>7}")
    for row in rows:
        print(f"{row['bytes']:>10} {row['seal_ms']:>9.1f} {row['aes_ms']:>11.1f} "
              f"{row['ratio']:>7.2f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
