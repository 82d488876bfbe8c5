"""Bounded expensive work: the gate itself, and what each route answers when it is full.

Beyond capacity every route that hashes or seals answers 503 with Retry-After, stores
nothing and counts nothing, and keeps what the person typed; the same request later works.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask

from intake import accounts, capacity, create_app, crypto, receipts, reports, store
from intake.app import GATE
from intake.config import Capacity, Config
from intake.instance import Created

from support import csrf_token, enrol, translate

BUSY = "Too many people are using this service right now. Wait a minute, then try again."

# --- The gate ------------------------------------------------------------------------------


def test_no_more_than_the_slots_run_at_once() -> None:
    gate = capacity.Gate(2, waiting=8, wait_seconds=5)
    running, most, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal running, most
        with gate.slot():
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with lock:
                running -= 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 2


def test_a_full_queue_is_refused_at_once_and_a_waiter_times_out() -> None:
    gate = capacity.Gate(1, waiting=1, wait_seconds=0.3)
    with gate.slot():
        outcome: list[str] = []

        def waiter() -> None:
            try:
                with gate.slot():
                    outcome.append("slot")
            except capacity.Busy:
                outcome.append("busy")

        queued = threading.Thread(target=waiter)
        queued.start()
        time.sleep(0.05)  # now it waits in the only place in the queue
        start = time.monotonic()
        with pytest.raises(capacity.Busy) as info, gate.slot():
            pass
        assert time.monotonic() - start < 0.1  # no place to wait: refused at once
        assert info.value.retry_after == capacity.RETRY_AFTER_SECONDS
        queued.join()
        assert outcome == ["busy"]  # the slot was not freed within its wait
    # Everything was given back: the slot and the place in the queue.
    with gate.slot():
        pass
    assert gate._queued == 0


def test_a_waiter_gets_the_slot_when_it_frees() -> None:
    gate = capacity.Gate(1, waiting=1, wait_seconds=5)
    got = threading.Event()
    with gate.slot():
        def waiter() -> None:
            with gate.slot():
                got.set()

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.05)
        assert not got.is_set()
    thread.join(timeout=5)
    assert got.is_set()


def test_no_gate_bounds_nothing() -> None:
    with capacity.slot(None), capacity.slot(None):
        pass


def test_the_default_is_one_slot_per_core() -> None:
    assert Capacity().slots == len(os.sched_getaffinity(0))
    assert Capacity(hash_slots=3).slots == 3


# --- Routes when every slot is taken -------------------------------------------------------


@pytest.fixture
def full_app(instance: Created) -> Flask:
    """An app whose only slot the test can hold, with nowhere to wait."""
    return create_app(replace(instance.config, capacity=Capacity(hash_slots=1, wait_seconds=0)))


@contextmanager
def all_slots_taken(app: Flask) -> Iterator[None]:
    gate: capacity.Gate = app.extensions[GATE]
    with ExitStack() as stack:
        for _ in range(gate.slots):
            stack.enter_context(gate.slot())
        yield


def _count(instance: Created, table: str) -> int:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


def test_the_api_answers_503_with_retry_after_and_stores_nothing(full_app: Flask, instance: Created) -> None:
    data = crypto.seal({"schema": 1, "what": "busy"}, instance.config.recipients)
    body = {"envelope": crypto.b64encode(data), "receipt_code": receipts.new_code(), "language": "fr"}
    client = full_app.test_client()
    with all_slots_taken(full_app):
        answer = client.post("/api/reports", json=body, headers={"Accept-Language": "fr"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(capacity.RETRY_AFTER_SECONDS)
    assert answer.get_json()["error"] == "busy"
    assert answer.get_json()["message"] == translate("fr", BUSY)  # the language asked for
    assert _count(instance, "reports") == 0
    # The same body, once there is room, is stored as usual.
    assert client.post("/api/reports", json=body).status_code == 201
    assert _count(instance, "reports") == 1


def test_the_form_without_javascript_comes_back_whole_with_503(full_app: Flask, instance: Created) -> None:
    client = full_app.test_client()
    page = client.get("/en/").text
    report_id = re.search(r'name="report_id" type="hidden" value="([0-9a-f]+)"', page)
    assert report_id
    form = {"csrf_token": csrf_token(page), "report_id": report_id.group(1),
            "what": "marker-busy-4410", "place": "near the river"}
    with all_slots_taken(full_app):
        answer = client.post("/en/", data=form)
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "marker-busy-4410" in answer.text and "near the river" in answer.text
    assert report_id.group(1) in answer.text  # sent again, it is the same report
    assert "has not been sent yet" in answer.text
    assert _count(instance, "reports") == 0
    again = client.post("/en/", data=form)
    assert again.status_code == 200 and _count(instance, "reports") == 1


def test_the_status_page_keeps_the_code_and_counts_no_failure(full_app: Flask, instance: Created) -> None:
    client = full_app.test_client()
    token = csrf_token(client.get("/en/status").text)
    code = receipts.display(receipts.new_code())
    with all_slots_taken(full_app):
        answer = client.post("/en/status", data={"csrf_token": token, "code": code})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert f'value="{code}"' in answer.text and "Too many people" in answer.text
    assert _count(instance, "status_failures") == 0
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        counted = conn.execute("SELECT coalesce(sum(failures), 0) FROM throttle_clients")
        assert counted.fetchone()[0] == 0
    finally:
        conn.close()


def test_a_login_refused_for_lack_of_room_is_not_a_failed_login(full_app: Flask, instance: Created) -> None:
    config = full_app.config["INTAKE"]
    conn = store.connect(config.db_path, config.db_key)
    try:
        officer = enrol(conn, config, "alice", now=reports.utcnow() - timedelta(minutes=1))
    finally:
        conn.close()
    client = full_app.test_client()
    token = csrf_token(client.get("/en/console/login").text)
    form = {"csrf_token": token, "username": "alice", "password": officer.password,
            "code": officer.code(reports.utcnow())}
    with all_slots_taken(full_app):
        answer = client.post("/en/console/login", data=form)
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert 'value="alice"' in answer.text
    assert _count(instance, "login_failures") == 0
    conn = store.connect(config.db_path, config.db_key)
    try:
        row = conn.execute("SELECT failed_logins FROM users").fetchone()
        assert row[0] == 0
        assert "login_failed" not in [r[0] for r in conn.execute("SELECT action FROM audit_log")]
    finally:
        conn.close()
    assert client.post("/en/console/login", data=form).status_code == 302


def test_a_busy_login_hash_takes_back_every_count(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    gate = capacity.Gate(1, waiting=0, wait_seconds=0)
    with gate.slot(), pytest.raises(capacity.Busy):
        accounts.authenticate(db, config.audit_key, username="alice", password="wrong one",
                              totp_code="000000", params=config.password_hash,
                              now=reports.utcnow(), client_address="192.0.2.7", gate=gate)
    assert db.execute("SELECT failed_logins, last_failed_at FROM users").fetchone() == (0, None)
    assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 0
    assert db.execute("SELECT coalesce(sum(failures), 0) FROM throttle_clients").fetchone()[0] == 0
    assert officer.login(db, config, reports.utcnow() + timedelta(minutes=1))



def test_saturated_says_whether_a_request_now_would_be_refused() -> None:
    gate = capacity.Gate(1, waiting=1, wait_seconds=5)
    assert not gate.saturated()
    with gate.slot():
        assert not gate.saturated()  # one may still wait
        release = threading.Event()

        def waiter() -> None:
            with gate.slot():
                release.wait(5)

        thread = threading.Thread(target=waiter)
        thread.start()
        for _ in range(100):
            if gate.saturated():
                break
            time.sleep(0.01)
        assert gate.saturated()
    release.set()
    thread.join()
    assert not gate.saturated()
