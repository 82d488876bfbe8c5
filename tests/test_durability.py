"""Crash durability: kill -9 a real `intake serve` in the middle of a burst of reports.

Every report that got a 201 must be there after a restart, whole (its first event, its
deadline) and decryptable with the organisation's key; the database must pass SQLite's
and SQLCipher's integrity checks with no orphan rows; and every report that got no answer
is stored exactly once when its device sends it again.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from intake import crypto, receipts, store
from intake import instance as instance_mod
from intake.config import Config

from serving import Server, submission
from support import CHEAP_HASH, PASSPHRASE

REPORTS = 300  # about two seconds of reports at full speed on two cores
CLIENTS = 8


def _burst(server: Server, items: list[tuple[str, str, str]], kill_at: int, extra: float
           ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Send every item from CLIENTS threads; SIGKILL the server `extra` seconds after the
    `kill_at`-th acknowledgement. Returns (acknowledged, not acknowledged).

    The moment is counted in acknowledgements, not seconds from the start, so that the kill
    falls inside the burst however fast or busy the machine is (a timed kill once came after
    all 300 reports on an idle machine)."""
    acked: list[tuple[str, str, str]] = []
    unanswered: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    reached = threading.Event()
    queue = iter(items)

    def client() -> None:
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            try:
                status, _, body = server.post("/api/reports", item[2], timeout=10)
            except (OSError, http.client.HTTPException):
                status, body = 0, b""
            with lock:
                if status == 201:
                    assert item[0].encode() in body
                    acked.append(item)
                    if len(acked) >= kill_at:
                        reached.set()
                else:
                    # 503 is the server at capacity: the device keeps the report and sends
                    # it again later, as it does when the connection drops (status 0).
                    assert status in (0, 503), f"an answer other than 201 or 503: {status}"
                    unanswered.append(item)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    assert reached.wait(timeout=120), "the server acknowledged too few reports"
    time.sleep(extra)
    server.kill()
    for t in threads:
        t.join(timeout=30)
    return acked, unanswered


def _check_database(config: Config, org_key: crypto.PrivateKey,
                    acked: list[tuple[str, str, str]]) -> int:
    """Integrity, no half-written rows, every acknowledged report whole. Returns the count."""
    conn = store.connect(config.db_path, config.db_key)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA cipher_integrity_check").fetchall() == []  # every page's HMAC
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # Each report has exactly its first event, and its deadline (set in the same
        # transaction); no event, message or note without its report.
        assert conn.execute(
            "SELECT r.id FROM reports r LEFT JOIN report_events e ON e.report_id = r.id"
            " GROUP BY r.id HAVING count(e.id) != 1 OR min(e.status) != 'received'"
            " OR r.due_at = '9999'"
        ).fetchall() == []
        for table in ("report_events", "messages", "notes", "triage", "referrals"):
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} WHERE report_id NOT IN (SELECT id FROM reports)"  # noqa: S608
            ).fetchone()[0]
            assert orphans == 0, table
        stored = {item.report_id: item.envelope for item in store.envelopes(conn)}
    finally:
        conn.close()
    for report_id, _code, _body in acked:
        assert report_id in stored, f"acknowledged report {report_id} was lost"
    for envelope in stored.values():
        what = crypto.unseal(envelope, org_key).payload["what"]
        assert str(what).startswith("crash-")
    return len(stored)


def _status(server: Server, code: str) -> int:
    """Check a code on the status page, as a browser without JavaScript does."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{server.port}/en/status"
    page = opener.open(base, timeout=10).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    data = urllib.parse.urlencode({"csrf_token": token.group(1), "code": code}).encode()
    try:
        return int(opener.open(base, data=data, timeout=10).status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize("seed", [5, 2718, 31337])
def test_a_kill_9_during_a_burst_loses_no_acknowledged_report(tmp_path: Path, seed: int) -> None:
    created = instance_mod.create(
        tmp_path / "instance", key_out=tmp_path / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=False,
    )
    config = created.config
    org_key = crypto.read_key_file(created.key_file.read_bytes(), PASSPHRASE)
    items = [submission(config, f"crash-{seed}-{i}") for i in range(REPORTS)]
    server = Server(config.instance_dir, tmp_path / "server.log").start()
    chance = random.Random(seed)  # noqa: S311  (a repeatable moment)
    kill_at, extra = chance.randrange(20, REPORTS - 60), chance.uniform(0, 0.05)
    try:
        acked, unanswered = _burst(server, items, kill_at, extra)
        # The kill fell in the middle of the burst, not before or after it.
        assert len(acked) >= kill_at and unanswered, (len(acked), kill_at)
        stored = _check_database(config, org_key, acked)
        # Reports in flight at the kill may or may not have been stored: either way whole.
        assert len(acked) <= stored <= len(acked) + CLIENTS

        server.start()
        # Devices send again what got no answer, and some of what did (a lost answer):
        # each is stored exactly once, and a repeat gets the first answer.
        for report_id, _code, body in unanswered + acked[:5]:
            status, _, answer = server.post("/api/reports", body)
            assert (status, report_id.encode() in answer) == (201, True)
        assert _status(server, receipts.display(acked[0][1])) == 200
        assert _status(server, receipts.new_code()) == 404
    finally:
        server.stop()
    assert _check_database(config, org_key, items) == REPORTS
