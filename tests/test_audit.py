"""The audit log's keyed hash chain: every edit, move or cut is caught; details hold no text.

The tampering below is done as someone holding the database key but not the audit key
would do it: with plain SQL on the SQLCipher file.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pytest

from intake import audit, cases, store, triage
from intake.config import Config

from support import T0, audit_rows, enrol, file_report

REPORT = "ab" * 16
COLUMNS = ("seq", "at", "actor", "action", "report_id", "detail", "mac")
ENTRIES = 4


@pytest.fixture
def log(db: store.Connection, config: Config) -> list[tuple[Any, ...]]:
    """Four entries with and without actor, case and detail; returns them as stored."""
    entries: list[tuple[int | None, str, str | None, audit.Detail | None]] = [
        (None, "user_added", None, {"user": 1, "role": "officer"}),
        (1, "login", None, None),
        (1, "status_changed", REPORT, {"from": "received", "to": "reviewing", "outcome": None}),
        (1, "field_changed", REPORT, {"field": "place", "value": None}),
    ]
    for i, (actor, action, report_id, detail) in enumerate(entries):
        with store.transaction(db):
            audit.record(db, config.audit_key, actor=actor, action=action, report_id=report_id,
                         detail=detail, now=T0 + timedelta(minutes=i))
    rows = audit_rows(db)
    assert len(rows) == ENTRIES
    return rows


def _sql(db: store.Connection, query: str, *params: object) -> None:
    with store.transaction(db):
        db.execute(query, params)


def _head(db: store.Connection) -> str:
    return str(db.execute("SELECT value FROM meta WHERE name = ?", (audit.HEAD,)).fetchone()[0])


def _broken(db: store.Connection, config: Config, match: str | None = None) -> None:
    with pytest.raises(audit.AuditChainBroken, match=match):
        audit.verify(db, config.audit_key)


def test_an_intact_log_verifies(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    count, head = audit.verify(db, config.audit_key)
    assert (count, head) == (ENTRIES, bytes(log[-1][6]).hex())
    assert [row[0] for row in log] == [1, 2, 3, 4]
    assert log[0][1] == "2025-03-04T09:00:10+00:00"  # UTC, to the second


def test_an_empty_log_verifies(db: store.Connection, config: Config) -> None:
    assert audit.verify(db, config.audit_key) == (0, audit.GENESIS.hex())


def _changed(column: str, value: Any) -> object:
    """Another value of the same column, as a forger would write it."""
    if column == "seq":
        return int(value) + 100
    if column == "at":
        return "2030-01-01T00:00:00+00:00"
    if column == "actor":
        return 2 if value != 2 else 3
    if column == "action":
        return "logout" if value != "logout" else "login"
    if column == "report_id":
        return "cd" * 16 if value is None else None
    if column == "detail":
        return '{"x":1}'
    assert column == "mac"
    return bytes([bytes(value)[0] ^ 1]) + bytes(value)[1:]


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("seq", range(1, ENTRIES + 1))
def test_editing_any_column_of_any_entry_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]], seq: int, column: str) -> None:
    old = log[seq - 1][COLUMNS.index(column)]
    query = f"UPDATE audit_log SET {column} = ? WHERE seq = ?"  # noqa: S608  (our column names)
    _sql(db, query, _changed(column, old), seq)
    _broken(db, config, f"entry {seq} ")


def test_the_same_detail_written_differently_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    same = json.dumps(json.loads(str(log[0][5])))  # equal as JSON, spaced differently
    assert same != log[0][5]
    _sql(db, "UPDATE audit_log SET detail = ? WHERE seq = 1", same)
    _broken(db, config, "entry 1 was changed")


@pytest.mark.parametrize(("a", "b"), [(1, 2), (2, 3), (1, 4), (3, 4)])
def test_swapping_two_entries_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]], a: int, b: int) -> None:
    _sql(db, "UPDATE audit_log SET seq = -1 WHERE seq = ?", a)
    _sql(db, "UPDATE audit_log SET seq = ? WHERE seq = ?", a, b)
    _sql(db, "UPDATE audit_log SET seq = ? WHERE seq = -1", b)
    _broken(db, config, f"entry {a} was changed")


@pytest.mark.parametrize("seq", range(1, ENTRIES))
def test_deleting_an_entry_before_the_last_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]], seq: int) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = ?", seq)
    _broken(db, config, f"entry {seq} is missing")


def test_renumbering_after_a_deletion_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = 2")
    _sql(db, "UPDATE audit_log SET seq = seq - 1 WHERE seq > 2")
    _broken(db, config, "entry 2 was changed")


def test_deleting_the_last_entry_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    _sql(db, "DELETE FROM audit_log WHERE seq = ?", ENTRIES)
    _broken(db, config, f"ends at entry {ENTRIES - 1} but was last written at entry {ENTRIES}")


@pytest.mark.parametrize("head_mac", ["kept", "entry", "zeros"])
def test_deleting_the_last_entry_and_rewriting_the_head_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]], head_mac: str) -> None:
    previous = bytes(log[-2][6]).hex()
    forged = {"kept": _head(db).split(":")[2], "entry": previous, "zeros": "00" * 32}[head_mac]
    _sql(db, "DELETE FROM audit_log WHERE seq = ?", ENTRIES)
    _sql(db, "UPDATE meta SET value = ? WHERE name = ?",
         f"{ENTRIES - 1}:{previous}:{forged}", audit.HEAD)
    _broken(db, config, "last entry was changed")


def test_emptying_the_whole_log_is_caught(db: store.Connection, config: Config) -> None:
    enrol(db, config, "alice")  # every account is added with an entry
    _sql(db, "DELETE FROM audit_log")
    _sql(db, "DELETE FROM meta WHERE name = ?", audit.HEAD)
    _broken(db, config, "missing")


def test_a_rollback_to_an_earlier_head_needs_the_head_noted_elsewhere(db: store.Connection, config: Config) -> None:
    """A copy of the head from an earlier moment is a valid head. Only the head that
    `intake audit verify` prints, noted outside the server, shows that entries went."""

    def login(minute: int) -> None:
        with store.transaction(db):
            audit.record(db, config.audit_key, actor=1, action="login",
                         now=T0 + timedelta(minutes=minute))

    login(0)
    old_copy = _head(db)
    login(1)
    noted = audit.verify(db, config.audit_key)
    _sql(db, "DELETE FROM audit_log WHERE seq = 2")
    _sql(db, "UPDATE meta SET value = ? WHERE name = ?", old_copy, audit.HEAD)
    rolled_back = audit.verify(db, config.audit_key)
    assert rolled_back[0] == 1 and rolled_back != noted


@pytest.mark.parametrize("value", ["3:xyz:abc", "garbage", "", "4:{mac}:{head}:extra", "5:{mac}:{head}", "4:{mac}:{zero}"])
def test_editing_the_head_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]], value: str) -> None:
    _, mac, head = _head(db).split(":")
    _sql(db, "UPDATE meta SET value = ? WHERE name = ?",
         value.format(mac=mac, head=head, zero="00" * 32), audit.HEAD)
    _broken(db, config)


def test_deleting_the_head_is_caught(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    _sql(db, "DELETE FROM meta WHERE name = ?", audit.HEAD)
    _broken(db, config, "ends at entry 4 but was last written at entry 0")


def test_another_audit_key_does_not_verify(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    with pytest.raises(audit.AuditChainBroken):
        audit.verify(db, os.urandom(32))


def test_record_runs_only_inside_the_actions_transaction(db: store.Connection, config: Config) -> None:
    with pytest.raises(RuntimeError, match="inside the action's transaction"):
        audit.record(db, config.audit_key, actor=None, action="login", now=T0)
    with pytest.raises(ValueError, match="unknown audit action"), store.transaction(db):
        audit.record(db, config.audit_key, actor=None, action="made_up", now=T0)
    with pytest.raises(ZeroDivisionError), store.transaction(db):
        audit.record(db, config.audit_key, actor=None, action="login", now=T0)
        _ = 1 / 0  # the action fails after its entry was written: both go
    assert audit_rows(db) == []
    assert audit.verify(db, config.audit_key) == (0, audit.GENESIS.hex())


def test_entries_are_listed_newest_first_for_one_case_or_all(db: store.Connection, config: Config, log: list[tuple[Any, ...]]) -> None:
    everything = list(audit.entries(db))
    assert [e.seq for e in everything] == [4, 3, 2, 1]
    assert everything[-1].detail == {"user": 1, "role": "officer"}
    assert [e.action for e in audit.entries(db, report_id=REPORT)] == ["field_changed", "status_changed"]
    assert [e.seq for e in audit.entries(db, limit=1)] == [4]


# --- What a detail may hold -------------------------------------------------------------


def _text_anywhere(db: store.Connection, text: str) -> bool:
    return any(text in str(value) for row in audit_rows(db) for value in row)


def test_a_message_is_recorded_by_its_length_only(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    report = file_report(db, config, at=T0)
    body = "  Secret words: meet at the market at noon.  "
    cases.send_message(db, config, report_id=report, body=body, actor=officer.user.id, now=T0)
    cases.set_status(db, config, report_id=report, status="reviewing", outcome=None,
                     message="Another secret sentence.", actor=officer.user.id, now=T0)
    sent = [e for e in audit.entries(db, report_id=report) if e.action == "message_sent"]
    assert [e.detail for e in sent] == [{"chars": 24}, {"chars": len(body.strip())}]
    assert not _text_anywhere(db, "Secret") and not _text_anywhere(db, "secret")


def test_the_triage_place_is_recorded_as_changed_without_its_value(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    report = file_report(db, config, at=T0)
    for place in ("Camp Alpha, near the river", "Camp Beta", ""):
        triage.save(db, config, report_id=report, values={"place": place, "risk": "high"},
                    actor=officer.user.id, now=T0)
    places = [e.detail for e in audit.entries(db, report_id=report)
              if e.detail.get("field") == "place"]
    assert places == [{"field": "place", "value": None}] * 3
    assert not _text_anywhere(db, "Camp")


def test_a_referral_is_recorded_without_the_service(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    report = file_report(db, config, at=T0)
    cases.record_consent(db, config, report_id=report, refer=True, share=False,
                         statistics=False, actor=officer.user.id, now=T0)
    cases.add_referral(db, config, report_id=report, service="Dr Named Person's clinic",
                       referred_on="2025-03-05", actor=officer.user.id, now=T0)
    last = next(audit.entries(db, limit=1))
    assert (last.action, last.detail) == ("referral_added", {"referred_on": "2025-03-05"})
    assert not _text_anywhere(db, "Named")
