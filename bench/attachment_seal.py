"""Sealing attachments in Chromium: attachment.js against plain WebCrypto AES-GCM.

For 1 MB and 10 MB of attachment, the time attachment.sealReport takes (HKDF, AES-256-GCM
per 128 KiB chunk, SHA-256 of the whole, and the envelope with its HPKE) against one plain
AES-256-GCM encryption of the same bytes, and the ratio. Real Chromium, median of 5 runs.
Run: .venv/bin/python bench/attachment_seal.py
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

SIZES = (1_000_000, 10_000_000)
RUNS = 5

MEASURE = """async ([size, runs, publicKey]) => {
  const att = await import('/static/js/attachment.js');
  const b = await import('/static/js/bytes.js');
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  const recipients = [{publicKey: b.fromBase64url(publicKey)}];
  const files = [{name: 'video.mp4', type: 'video/mp4', kind: 'file', bytes}];
  const key = await crypto.subtle.generateKey({name: 'AES-GCM', length: 256}, false, ['encrypt']);
  const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const sealTimes = [], aesTimes = [];
  for (let run = 0; run < runs; run++) {
    let t = performance.now();
    await att.sealReport({schema: 1, language: 'en'}, recipients, files);
    sealTimes.push(performance.now() - t);
    t = performance.now();
    await crypto.subtle.encrypt({name: 'AES-GCM', iv: new Uint8Array(12)}, key, bytes);
    aesTimes.push(performance.now() - t);
  }
  return {seal_ms: median(sealTimes), aes_ms: median(aesTimes)};
}"""


def measure() -> dict[str, Any]:
    """Median milliseconds per size for sealing and for plain AES-GCM, and their ratio."""
    public = crypto.generate_private_key().public_key.text
    rows = []
    with static_server() as base, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(base + "/")
        for size in SIZES:
            result = page.evaluate(MEASURE, [size, RUNS, public])
            rows.append({
                "bytes": size, **result, "ratio": result["seal_ms"] / result["aes_ms"],
                "seal_mb_per_s": size / 1e6 / (result["seal_ms"] / 1000),
            })
        browser.close()
    return {"name": "attachment_seal", "runs": RUNS, "rows": rows}


def main() -> None:
    result = measure()
    print(f"{'attachment':>10} {'seal ms':>9} {'AES-GCM ms':>11} {'ratio':>7} {'seal MB/s':>10}")
    for row in result["rows"]:
        print(f"{row['bytes']:>10} {row['seal_ms']:>9.1f} {row['aes_ms']:>11.1f} "
              f"{row['ratio']:>7.2f} {row['seal_mb_per_s']:>10.1f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
