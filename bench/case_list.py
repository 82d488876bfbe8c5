"""Case-list page time with 100,000 cases: median and p95, over HTTP from `intake serve`.

Fills a fresh instance with 100,000 reports spread over a year, a fifth of them triaged,
assigned and acknowledged, then times whole GET requests of the officer's case list
(logged in with a real session): the first page (overdue first), a filtered page, and a
deep page. Run: .venv/bin/python bench/case_list.py [--cases N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from server import new_instance, serving

from intake import accounts, cases, crypto, reports, store

RUNS = 40


def _fill(conn: store.Connection, count: int, officer: int, rng: random.Random) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    envelope = os.urandom(1200)
    statuses = ("received", "reviewing", "referred", "investigating", "closed")
    rows = []
    for _ in range(count):
        received = now - timedelta(minutes=rng.randrange(365 * 24 * 60))
        status = rng.choice(statuses)
        acknowledged = None if status == "received" else received.isoformat()
        rows.append((
            secrets.token_hex(16), received.isoformat(), rng.choice(("web", "focal:0a1b2c3d")),
            rng.choice(("en", "fr", "ar", "sw", "ln", "sg", "ht")), status,
            os.urandom(32), os.urandom(32), envelope,
            officer if rng.random() < 0.2 else None,
            rng.choice(("urgent", "high", "normal", "normal", "low")), acknowledged,
        ))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO reports (id, received_at, channel, language, schema_version, status,"
        " sealed_by, receipt_hash, envelope_sha256, envelope, assignee, priority,"
        " acknowledged_at) VALUES (?, ?, ?, ?, 1, ?, 'device', ?, ?, ?, ?, ?, ?)", rows,
    )
    conn.execute("COMMIT")


def _officer(conn: store.Connection, config: Any) -> tuple[int, str, bytes]:
    password = secrets.token_hex(12)
    user, code = accounts.add(conn, config.audit_key, username="bench", role="officer",
                              actor=None, now=reports.utcnow(), setup_hours=1)
    secret = accounts.begin_setup(conn, username="bench", code=code, password=password,
                                  params=config.password_hash, now=reports.utcnow())
    earlier = reports.utcnow() - timedelta(seconds=60)
    accounts.finish_setup(conn, config.audit_key, username="bench", code=code,
                          totp_code=crypto.totp_code(secret, at=earlier.timestamp()), now=earlier)
    return user.id, password, secret


def _login(port: int, password: str, secret: bytes) -> str:
    """Log in over HTTP as a browser would: CSRF cookie and token, then the form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/en/console/login")
    answer = conn.getresponse()
    page = answer.read().decode()
    cookie = answer.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    body = (f"csrf_token={token.group(1)}&username=bench&password={password}"
            f"&code={crypto.totp_code(secret, at=time.time())}")
    conn.request("POST", "/en/console/login", body, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    answer = conn.getresponse()
    answer.read()
    session = [h.split(";", 1)[0] for k, h in answer.getheaders()
               if k.lower() == "set-cookie" and h.startswith("intake_console=")]
    assert answer.status == 302 and session, f"login failed: {answer.status}"
    return session[0]


def _time(port: int, cookie: str, path: str) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200, (path, answer.status)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (RUNS - 1))]}


def measure(count: int = 100_000) -> dict[str, Any]:
    created = new_instance()
    config = created.config
    conn = store.open_ready(config.db_path, config.db_key, config.receipt_hash)
    officer, password, secret = _officer(conn, config)
    _fill(conn, count, officer, random.Random(7))  # noqa: S311  (synthetic data, not secrets)
    cases.refresh_due(conn, config.service_levels)
    conn.close()
    pages = {
        "first page": "/en/console/cases",
        "filtered (status, priority)": "/en/console/cases?status=received&priority=high",
        "page 1000": "/en/console/cases?page=1000",
    }
    with serving(created) as port:
        cookie = _login(port, password, secret)
        results = {name: _time(port, cookie, path) for name, path in pages.items()}
    return {"cases": count, "runs": RUNS, "pages": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    result = measure(parser.parse_args().cases)
    print(f"case list with {result['cases']} cases ({RUNS} requests each)")
    for name, row in result["pages"].items():
        print(f"  {name:30} median {row['median_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
