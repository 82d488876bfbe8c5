"""Guessing limits: receipt-code checks per client and overall, and what a client id is.

Real SQLCipher and real argon2 (cheap); the clock is passed in. A right code from a client
that must wait is not checked either, or every guess would be answered; the waits are
capped, so nobody waits more than `status_max_wait_seconds` after the last wrong try from
their address, or the overall window after the last wrong try anywhere.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from intake import accounts, capacity, crypto, receipts, reports, store, throttle
from intake.config import Config, Throttle

from support import T0, csrf_token, enrol

VILLAGE = "198.51.100.23"  # one address for a whole village behind a mobile operator's NAT
ELSEWHERE = "203.0.113.9"


@pytest.fixture
def known(db: store.Connection, config: Config) -> str:
    """The receipt code of a stored report."""
    code = receipts.new_code()
    data = crypto.seal({"schema": 1, "what": "x"}, config.recipients)
    reports.accept_envelope(db, config, data=data, receipt_code=code, language="en")
    return code


def _check(db: store.Connection, config: Config, code: str, at: datetime,
           address: str | None = VILLAGE) -> str:
    """'found', 'not found', or the wait in seconds as text."""
    try:
        view = reports.check_status(db, config, code, client_address=address, now=lambda: at)
    except throttle.Throttled as exc:
        return str(exc.retry_after)
    return "found" if view else "not found"


def _wrong() -> str:
    return receipts.new_code()


def test_five_wrong_codes_are_free_then_each_wait_doubles_up_to_ten_minutes(db: store.Connection, config: Config, known: str) -> None:
    at = T0
    for _ in range(5):
        assert _check(db, config, _wrong(), at) == "not found"
        at += timedelta(seconds=1)
    last = at - timedelta(seconds=1)
    # Throttled: even the right code is not checked, and asking again changes nothing.
    assert _check(db, config, known, at) == "29"
    assert _check(db, config, _wrong(), at) == "29"
    waits: list[int] = []
    for _ in range(8):
        at = last + timedelta(seconds=waits[-1] if waits else 30)
        assert _check(db, config, _wrong(), at) == "not found"
        last = at
        waits.append(int(_check(db, config, known, at)))
    assert waits == [60, 120, 240, 480, 600, 600, 600, 600]
    # Once the wait is over, the right code is found, and that is no failure.
    assert _check(db, config, known, last + timedelta(minutes=10)) == "found"
    assert _check(db, config, known, last + timedelta(minutes=10)) == "found"


def test_another_address_is_not_held_by_a_guesser(db: store.Connection, config: Config, known: str) -> None:
    for _ in range(6):
        _check(db, config, _wrong(), T0)
    assert _check(db, config, known, T0).isdigit()
    assert _check(db, config, known, T0, address=ELSEWHERE) == "found"


def test_found_codes_never_add_up_to_a_wait(db: store.Connection, config: Config, known: str) -> None:
    for i in range(20):
        assert _check(db, config, known, T0 + timedelta(seconds=i)) == "found"
    assert db.execute("SELECT coalesce(sum(failures), 0) FROM throttle_clients").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM status_failures").fetchone()[0] == 0


def test_malformed_codes_count_as_wrong_ones(db: store.Connection, config: Config) -> None:
    code = _wrong()
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)  # the check digit catches it
    for text in ["", "1234", "x" * 64, typo, "٤" * 16]:
        assert _check(db, config, text, T0) == "not found"
    assert _check(db, config, _wrong(), T0).isdigit()


def test_a_client_is_forgotten_an_hour_after_its_last_wrong_code(db: store.Connection, config: Config, known: str) -> None:
    for _ in range(5):
        _check(db, config, _wrong(), T0)
    assert db.execute("SELECT count(*) FROM throttle_clients").fetchone()[0] == 1
    later = T0 + timedelta(hours=1, seconds=1)
    assert _check(db, config, known, later, address=ELSEWHERE) == "found"
    # Forgotten at the next count of any client: here, a wrong code from elsewhere.
    assert _check(db, config, _wrong(), later, address=ELSEWHERE) == "not found"
    assert db.execute("SELECT count(*) FROM throttle_clients").fetchone()[0] == 1
    for _ in range(5):
        assert _check(db, config, _wrong(), later) == "not found"  # free again


def test_too_many_wrong_codes_overall_hold_every_client_for_the_window(db: store.Connection, config: Config, known: str) -> None:
    config = replace(config, throttle=Throttle(status_overall_failures=4,
                                               status_overall_window_seconds=60))
    for i in range(4):  # four addresses, one wrong code each: none is held on its own
        assert _check(db, config, _wrong(), T0 + timedelta(seconds=i), f"192.0.2.{i}") == "not found"
    # Every client now waits until the oldest of the four is a minute old.
    assert _check(db, config, known, T0 + timedelta(seconds=10), ELSEWHERE) == "50"
    assert _check(db, config, known, T0 + timedelta(seconds=60), ELSEWHERE) == "found"
    # Rows older than the window are dropped as new ones come.
    _check(db, config, _wrong(), T0 + timedelta(minutes=5), ELSEWHERE)
    assert db.execute("SELECT count(*) FROM status_failures").fetchone()[0] == 1


def test_without_an_address_only_the_overall_limit_applies(db: store.Connection, config: Config, known: str) -> None:
    for _ in range(20):
        assert _check(db, config, _wrong(), T0, address=None) == "not found"
    assert db.execute("SELECT count(*) FROM throttle_clients").fetchone()[0] == 0
    assert _check(db, config, known, T0, address=None) == "found"


def test_a_check_refused_for_lack_of_room_does_not_count(db: store.Connection, config: Config) -> None:
    gate = capacity.Gate(1, waiting=0, wait_seconds=0)
    with gate.slot():
        for _ in range(10):
            with pytest.raises(capacity.Busy):
                reports.check_status(db, config, _wrong(), client_address=VILLAGE,
                                     now=lambda: T0, gate=gate)
    assert db.execute("SELECT count(*) FROM status_failures").fetchone()[0] == 0
    assert _check(db, config, _wrong(), T0) == "not found"


def test_many_guesses_sent_at_once_get_no_more_checks_than_the_limit(config: Config) -> None:
    """Tries are counted before their hash, so threads racing past the check cannot
    all be answered."""
    answers: list[str] = []
    lock = threading.Lock()

    def guess() -> None:
        conn = store.connect(config.db_path, config.db_key)
        try:
            outcome = _check(conn, config, _wrong(), T0)
        finally:
            conn.close()
        with lock:
            answers.append(outcome)

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count("not found") == config.throttle.status_free_failures
    assert all(a.isdigit() for a in answers if a != "not found")


# --- What a client id is -------------------------------------------------------------------


def _client(db: store.Connection, address: str | None, at: datetime = T0) -> bytes | None:
    return throttle.client_id(db, address, at)


def test_a_client_id_is_eight_bytes_stable_for_a_day_and_never_the_address(db: store.Connection) -> None:
    one = _client(db, VILLAGE)
    assert one is not None and len(one) == throttle.CLIENT_BYTES
    assert _client(db, VILLAGE, T0 + timedelta(hours=3)) == one
    assert _client(db, ELSEWHERE) != one
    packed = ipaddress.ip_address(VILLAGE).packed
    dump = "\n".join(str(row) for table in ("meta", "throttle_clients")
                     for row in db.execute(f"SELECT * FROM {table}"))  # noqa: S608
    assert VILLAGE not in dump and packed.hex() not in dump and repr(packed) not in dump


def test_a_new_day_brings_a_new_key_and_forgets_every_client(db: store.Connection, config: Config) -> None:
    for _ in range(6):
        _check(db, config, _wrong(), T0)
    key = db.execute("SELECT value FROM meta WHERE name = 'client_key'").fetchone()[0]
    assert key.startswith("2025-03-04 ") and len(key.split()[1]) == 64
    today = _client(db, VILLAGE, T0)
    tomorrow = datetime(2025, 3, 5, 0, 0, 1, tzinfo=UTC)
    assert _client(db, VILLAGE, tomorrow) != today
    assert db.execute("SELECT count(*) FROM throttle_clients").fetchone()[0] == 0
    new_key = db.execute("SELECT value FROM meta WHERE name = 'client_key'").fetchone()[0]
    assert new_key.split()[1] != key.split()[1]
    assert _check(db, config, _wrong(), tomorrow) == "not found"


@pytest.mark.parametrize(("one", "other", "same"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one household's device
    ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
    ("::ffff:198.51.100.23", VILLAGE, True),  # IPv4 written as IPv6 is the same client
    ("fe80::1%eth0", "fe80::2", True),
])
def test_which_addresses_are_one_client(db: store.Connection, one: str, other: str, same: bool) -> None:
    assert (_client(db, one) == _client(db, other)) is same


@pytest.mark.parametrize("address", [None, "", "unix:/run/intake.sock", "not an address"])
def test_no_usable_address_is_no_client(db: store.Connection, address: str | None) -> None:
    assert _client(db, address) is None


# --- Officer logins per client -------------------------------------------------------------


def _login(db: store.Connection, config: Config, username: str, at: datetime,
           address: str = VILLAGE) -> int:
    """Try a wrong login; 0 for a plain refusal, else the wait in seconds."""
    try:
        accounts.authenticate(db, config.audit_key, username=username, password="wrong one",
                              totp_code="000000", params=config.password_hash, now=at,
                              client_address=address)
    except accounts.LoginRefused as exc:
        return exc.retry_after
    return 0


def test_one_client_trying_many_names_is_slowed_before_everyone(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    at = T0 + timedelta(minutes=1)
    free = accounts.CLIENT_POLICY.free_failures
    for i in range(free):
        assert _login(db, config, f"guess{i}", at) == 0
    assert _login(db, config, "guess-next", at) == 60
    assert _login(db, config, "guess-next", at + timedelta(minutes=1)) == 0
    assert _login(db, config, "guess-next", at + timedelta(minutes=1)) == 120
    # Another address, and the officer herself, are not held by it.
    assert officer.login(db, config, at, client_address=ELSEWHERE)


def test_a_login_client_waits_at_most_fifteen_minutes(db: store.Connection, config: Config) -> None:
    at, waits = T0, []
    for i in range(accounts.CLIENT_POLICY.free_failures + 8):
        wait = _login(db, config, f"guess{i}", at)
        if wait:
            waits.append(wait)
            at += timedelta(seconds=wait)
            assert _login(db, config, f"guess{i}", at) == 0  # checked (and wrong)
    assert waits == [60, 120, 240, 480, 900, 900, 900, 900]


# --- Over HTTP ---------------------------------------------------------------------------


def test_the_status_page_says_how_long_to_wait_and_keeps_the_code(client: FlaskClient) -> None:
    def post(code: str, address: str) -> Any:
        page = client.get("/en/status", environ_base={"REMOTE_ADDR": address}).text
        return client.post("/en/status", data={"csrf_token": csrf_token(page), "code": code},
                           environ_base={"REMOTE_ADDR": address})

    for _ in range(Throttle().status_free_failures):
        assert post(_wrong(), VILLAGE).status_code == 404
    code = receipts.display(_wrong())
    answer = post(code, VILLAGE)
    assert answer.status_code == 429
    assert 25 <= int(answer.headers["Retry-After"]) <= 30
    assert "Wait 1 minute, then try again." in answer.text
    assert f'value="{code}"' in answer.text  # still in the box for when the wait is over
    # The village's wait is its own: elsewhere, codes are checked as usual.
    assert post(code, ELSEWHERE).status_code == 404


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "client"), [
    ("203.0.113.9", None, "loopback", "203.0.113.9"),  # no proxy: the connection
    ("203.0.113.9", "198.51.100.1", "loopback", "203.0.113.9"),  # a header from anyone else
    ("127.0.0.1", "198.51.100.1", "loopback", "198.51.100.1"),  # Caddy on this machine
    ("::1", "2001:db8::7", "loopback", "2001:db8::7"),
    ("::ffff:127.0.0.1", "198.51.100.1", "loopback", "198.51.100.1"),
    ("127.0.0.1", "192.0.2.66, 198.51.100.1", "loopback", "198.51.100.1"),  # the proxy's own
    ("127.0.0.1", None, "loopback", None),  # the proxy names nobody
    ("127.0.0.1", "127.0.0.1", "loopback", None),  # through Tor: every visitor alike
    ("127.0.0.1", "unknown", "loopback", None),
    ("127.0.0.1", "198.51.100.1", "none", "127.0.0.1"),
    ("10.0.0.2", "198.51.100.1", "10.0.0.2", "198.51.100.1"),
    ("10.0.0.3", "198.51.100.1", "10.0.0.2", "10.0.0.3"),
    ("127.0.0.1", "198.51.100.1", "10.0.0.2", "127.0.0.1"),
])
def test_which_address_stands_for_the_client(peer: str, forwarded: str | None, trusted: str, client: str | None) -> None:
    assert throttle.client_address(peer, forwarded, trusted) == client


def test_behind_caddy_on_this_machine_clients_are_told_apart_by_its_header(client: FlaskClient) -> None:
    def post(code: str, forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        page = client.get("/en/status", headers=headers).text
        return client.post("/en/status", data={"csrf_token": csrf_token(page), "code": code},
                           headers=headers).status_code

    for _ in range(Throttle().status_free_failures):
        assert post(_wrong(), VILLAGE) == 404
    assert post(_wrong(), VILLAGE) == 429
    assert post(_wrong(), ELSEWHERE) == 404
