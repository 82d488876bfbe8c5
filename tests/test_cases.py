"""Casework: the case list and its deadlines, statuses, messages, consent, referrals,
export, and notes sealed as schema-2 envelopes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from intake import audit, cases, crypto, receipts, reports, store
from intake import envelope as fmt
from intake.config import Config
from intake.instance import Created

from support import PASSPHRASE, T0, Officer, actions, enrol, file_report, seal_note

NOW = T0 + timedelta(days=30)


@pytest.fixture
def officer(db: store.Connection, config: Config) -> Officer:
    return enrol(db, config, "alice")


def _ids(db: store.Connection, **query: Any) -> list[str]:
    page = cases.list_cases(db, cases.CaseQuery(**query), now=NOW, page_size=50)
    return [row.report_id for row in page.rows]


def _due(db: store.Connection, report_id: str) -> datetime | None:
    return cases.get_case(db, report_id).row.due_at


def _status(db: store.Connection, config: Config, officer: Officer, report_id: str,
            status: str, outcome: str | None = None, message: str = "") -> None:
    cases.set_status(db, config, report_id=report_id, status=status, outcome=outcome,
                     message=message, actor=officer.user.id, now=NOW)


# --- The case list -----------------------------------------------------------------------


def test_filters(db: store.Connection, config: Config, officer: Officer) -> None:
    at = NOW - timedelta(hours=1)
    web_en = file_report(db, config, at=at)
    focal_fr = file_report(db, config, at=at, channel="focal:0a1b2c3d", language="fr")
    mine = file_report(db, config, at=at, language="fr")
    late = file_report(db, config, at=NOW - timedelta(days=4), language="ar")
    closed = file_report(db, config, at=NOW - timedelta(days=4))
    cases.set_assignment(db, config, report_id=mine, assignee=officer.user.id,
                         priority="urgent", actor=officer.user.id, now=NOW)
    _status(db, config, officer, mine, "reviewing")
    _status(db, config, officer, closed, "closed", "withdrawn")
    everything = {web_en, focal_fr, mine, late, closed}
    assert set(_ids(db)) == everything
    assert set(_ids(db, status="received")) == {web_en, focal_fr, late}
    assert set(_ids(db, status="closed")) == {closed}
    assert set(_ids(db, status="no-such-status")) == everything  # ignored, not an error
    assert set(_ids(db, channel="web")) == everything - {focal_fr}
    assert set(_ids(db, channel="focal")) == {focal_fr}
    assert set(_ids(db, language="fr")) == {focal_fr, mine}
    assert set(_ids(db, assignee="none")) == everything - {mine}
    assert set(_ids(db, assignee=str(officer.user.id))) == {mine}
    assert set(_ids(db, assignee="999")) == set()
    assert set(_ids(db, priority="urgent")) == {mine}
    assert set(_ids(db, priority="normal")) == everything - {mine}
    assert set(_ids(db, overdue=True)) == {late}
    assert set(_ids(db, status="received", language="fr", channel="focal")) == {focal_fr}


@pytest.mark.parametrize("assignee", ["²", "١", "1a", "-1", " 1", "me"])
def test_an_assignee_filter_that_is_not_an_id_is_ignored(db: store.Connection, config: Config, officer: Officer, assignee: str) -> None:
    report = file_report(db, config, at=NOW)
    cases.set_assignment(db, config, report_id=report, assignee=officer.user.id,
                         priority="normal", actor=officer.user.id, now=NOW)
    assert _ids(db, assignee=assignee) == [report]


def test_a_reference_prefix_finds_its_cases(db: store.Connection, config: Config) -> None:
    first = file_report(db, config, at=NOW, report_id="abcd" + "0" * 28)
    second = file_report(db, config, at=NOW, report_id="abce" + "1" * 28)
    third = file_report(db, config, at=NOW, report_id="0123" + "f" * 28)
    assert _ids(db, ref="ABCD") == [first]
    assert _ids(db, ref=cases.reference(first)) == [first]  # "abcd 0000", as read aloud
    assert set(_ids(db, ref="ab-c")) == {first, second}
    assert _ids(db, ref=third) == [third]
    assert set(_ids(db, ref="ghij")) == {first, second, third}  # no hex digit: no filter
    assert _ids(db, ref="9") == []


def test_pages_are_bounded(db: store.Connection, config: Config) -> None:
    def page(number: int) -> cases.CasePage:
        return cases.list_cases(db, cases.CaseQuery(page=number), now=NOW, page_size=3)

    assert page(1) == cases.CasePage((), 0, 1, 1)
    made = {file_report(db, config, at=NOW - timedelta(minutes=i)) for i in range(7)}
    first, last = page(1), page(3)
    assert (first.total, first.pages, len(first.rows), len(last.rows)) == (7, 3, 3, 1)
    assert page(0) == page(-5) == first
    assert page(99) == last
    assert {r.report_id for n in (1, 2, 3) for r in page(n).rows} == made


def test_overdue_first_then_soonest_due_then_newest(db: store.Connection, config: Config, officer: Officer) -> None:
    def report(hours: float) -> str:
        return file_report(db, config, at=NOW - timedelta(hours=hours))

    very_late, late = report(100), report(80)
    soon, later = report(10), report(1)
    acknowledged = report(5)
    _status(db, config, officer, acknowledged, "reviewing")
    closed_new, closed_old = report(0.5), report(3)
    for report_id in (closed_new, closed_old):
        _status(db, config, officer, report_id, "closed", "no_contact")
    assert _ids(db) == [very_late, late, soon, later, acknowledged, closed_new, closed_old]
    rows = cases.list_cases(db, cases.CaseQuery(), now=NOW, page_size=50).rows
    assert [row.overdue(NOW) for row in rows] == [True, True] + [False] * 5


# --- Deadlines ---------------------------------------------------------------------------


def test_deadlines_follow_the_case(db: store.Connection, config: Config, officer: Officer) -> None:
    levels = config.service_levels
    received = NOW - timedelta(hours=5, seconds=30)
    minute = received.replace(second=0)
    first = file_report(db, config, at=received)
    assert _due(db, first) == minute + timedelta(hours=levels.acknowledge_hours)
    _status(db, config, officer, first, "reviewing")
    assert _due(db, first) == minute + timedelta(days=levels.first_update_days)
    cases.send_message(db, config, report_id=first, body="We have read your report.",
                       actor=officer.user.id, now=NOW)
    assert _due(db, first) is None
    # A first message alone both acknowledges and updates.
    second = file_report(db, config, at=received)
    cases.send_message(db, config, report_id=second, body="Thank you.", actor=officer.user.id,
                       now=NOW)
    assert _due(db, second) is None
    # Closed cases have none; reopened, the clock is where it was.
    third = file_report(db, config, at=received)
    _status(db, config, officer, third, "closed", "withdrawn")
    assert _due(db, third) is None
    _status(db, config, officer, third, "reviewing")
    assert _due(db, third) == minute + timedelta(days=levels.first_update_days)


def test_changed_service_levels_move_every_deadline(db: store.Connection, config: Config) -> None:
    made = [file_report(db, config, at=NOW - timedelta(hours=i)) for i in range(3)]
    levels = replace(config.service_levels, acknowledge_hours=24)
    assert cases.refresh_due(db, levels) == 3
    assert cases.refresh_due(db, levels) == 0  # nothing left to change
    assert [_due(db, r) for r in made] == [
        NOW.replace(second=0) - timedelta(hours=i) + timedelta(hours=24) for i in range(3)]


def test_a_report_arriving_while_the_server_runs_has_a_deadline(db: store.Connection, config: Config) -> None:
    data = crypto.seal({"schema": 1, "what": "x"}, config.recipients)
    accepted = reports.accept_envelope(db, config, data=data, receipt_code=receipts.new_code(),
                                       language="en", now=lambda: NOW)
    due = _due(db, accepted.report_id)
    assert due == NOW.replace(second=0) + timedelta(hours=config.service_levels.acknowledge_hours)


# --- Statuses and messages ---------------------------------------------------------------


@pytest.mark.parametrize(("status", "outcome", "field"), [
    ("closing", None, "status"), ("", None, "status"), ("closed", None, "outcome"),
    ("closed", "", "outcome"), ("closed", "made_up", "outcome"),
    ("reviewing", "withdrawn", "outcome"), ("received", "", "outcome"),
])
def test_a_status_change_is_checked(db: store.Connection, config: Config, officer: Officer, status: str, outcome: str | None, field: str) -> None:
    report = file_report(db, config, at=NOW)
    with pytest.raises(cases.CaseInvalid, match=field):
        _status(db, config, officer, report, status, outcome)
    case = cases.get_case(db, report)
    assert (case.row.status, case.row.outcome, len(case.events)) == ("received", None, 1)
    assert "status_changed" not in actions(db)


def test_closing_records_the_outcome_and_tells_the_complainant(db: store.Connection, config: Config, officer: Officer) -> None:
    report = file_report(db, config, at=NOW)
    _status(db, config, officer, report, "closed", "action_taken", "Action was taken.")
    case = cases.get_case(db, report)
    assert (case.row.status, case.row.outcome) == ("closed", "action_taken")
    assert [e.status for e in case.events] == ["received", "closed:action_taken"]
    assert [(m.author, m.body) for m in case.messages] == [("alice", "Action was taken.")]
    entry = next(e for e in audit.entries(db) if e.action == "status_changed")
    assert entry.detail == {"from": "received", "to": "closed", "outcome": "action_taken"}
    with pytest.raises(cases.CaseNotFound):
        _status(db, config, officer, "0" * 32, "reviewing")


def test_a_status_change_with_a_message_too_long_changes_nothing(db: store.Connection, config: Config, officer: Officer) -> None:
    report = file_report(db, config, at=NOW)
    before = actions(db)
    with pytest.raises(cases.CaseInvalid, match="message"):
        _status(db, config, officer, report, "reviewing", None, "x" * 2001)
    case = cases.get_case(db, report)
    assert (case.row.status, case.messages, actions(db)) == ("received", (), before)


@pytest.mark.parametrize(("body", "stored"), [
    ("x" * cases.MAX_MESSAGE_CHARS, "x" * cases.MAX_MESSAGE_CHARS),
    ("  Hello.\r\nSecond line.  ", "Hello.\nSecond line."),
    ("\n" + "y" * cases.MAX_MESSAGE_CHARS + "\n ", "y" * cases.MAX_MESSAGE_CHARS),
    ("a\r\n" * 1000, "a\n" * 999 + "a"),  # a line break counts once, however it is typed
])
def test_messages_up_to_the_limit_are_sent(db: store.Connection, config: Config, officer: Officer, body: str, stored: str) -> None:
    report = file_report(db, config, at=NOW)
    cases.send_message(db, config, report_id=report, body=body, actor=officer.user.id, now=NOW)
    assert [m.body for m in cases.messages(db, report)] == [stored]


@pytest.mark.parametrize("body", ["", "   \n\t", "x" * (cases.MAX_MESSAGE_CHARS + 1)])
def test_empty_or_too_long_messages_are_refused(db: store.Connection, config: Config, officer: Officer, body: str) -> None:
    report = file_report(db, config, at=NOW)
    with pytest.raises(cases.CaseInvalid, match="message"):
        cases.send_message(db, config, report_id=report, body=body, actor=officer.user.id,
                           now=NOW)
    assert cases.messages(db, report) == () and _due(db, report) is not None


def test_only_an_active_officer_can_be_assigned(db: store.Connection, config: Config, officer: Officer) -> None:
    report = file_report(db, config, at=NOW)
    analyst = enrol(db, config, "ana", role="analyst")
    for assignee in (analyst.user.id, 999):
        with pytest.raises(cases.CaseInvalid, match="assignee"):
            cases.set_assignment(db, config, report_id=report, assignee=assignee,
                                 priority="normal", actor=officer.user.id, now=NOW)
    changed = cases.set_assignment(db, config, report_id=report, assignee=officer.user.id,
                                   priority="high", actor=officer.user.id, now=NOW)
    assert changed == ["assignee", "priority"]
    assert cases.set_assignment(db, config, report_id=report, assignee=officer.user.id,
                                priority="high", actor=officer.user.id, now=NOW) == []
    with pytest.raises(cases.CaseInvalid, match="priority"):
        cases.set_assignment(db, config, report_id=report, assignee=None, priority="meh",
                             actor=officer.user.id, now=NOW)


# --- Consent: referrals and export ---------------------------------------------------------


def _consent(db: store.Connection, config: Config, officer: Officer, report: str,
             answer: bool | None) -> None:
    if answer is not None:
        cases.record_consent(db, config, report_id=report, refer=answer, share=answer,
                             statistics=False, actor=officer.user.id, now=NOW)


@pytest.mark.parametrize("answer", [None, False])
def test_without_consent_there_is_no_referral_and_no_export(db: store.Connection, config: Config, officer: Officer, answer: bool | None) -> None:
    report = file_report(db, config, at=NOW)
    _consent(db, config, officer, report, answer)
    with pytest.raises(cases.ConsentMissing) as refer:
        cases.add_referral(db, config, report_id=report, service="Clinic",
                           referred_on="2025-04-01", actor=officer.user.id, now=NOW)
    with pytest.raises(cases.ConsentMissing) as share:
        cases.export_for_investigators(db, config, report_id=report, actor=officer.user.id,
                                       now=NOW)
    assert (refer.value.what, share.value.what) == ("refer", "share")
    assert cases.referrals(db, report) == []
    assert not {"referral_added", "export"} & set(actions(db))


def test_with_consent_referrals_and_export_are_recorded(db: store.Connection, config: Config, officer: Officer) -> None:
    report = file_report(db, config, at=NOW)
    assert cases.get_case(db, report).consent == {"refer": None, "share": None, "statistics": None}
    _consent(db, config, officer, report, True)
    assert cases.get_case(db, report).consent == {"refer": True, "share": True, "statistics": False}
    cases.add_referral(db, config, report_id=report, service="  Health   centre ",
                       referred_on="2025-04-01", actor=officer.user.id, now=NOW)
    assert cases.referrals(db, report) == [("Health centre", "2025-04-01", "alice")]
    exported = cases.export_for_investigators(db, config, report_id=report,
                                              actor=officer.user.id, now=NOW)
    assert exported == next(store.envelopes(db, [report])).envelope
    assert actions(db)[-2:] == ["referral_added", "export"]


@pytest.mark.parametrize(("refer", "share"), [(True, False), (False, True)])
def test_each_answer_gates_only_its_own_action(db: store.Connection, config: Config, officer: Officer, refer: bool, share: bool) -> None:
    report = file_report(db, config, at=NOW)
    cases.record_consent(db, config, report_id=report, refer=refer, share=share,
                         statistics=True, actor=officer.user.id, now=NOW)
    try:
        cases.add_referral(db, config, report_id=report, service="Clinic",
                           referred_on="2025-04-01", actor=officer.user.id, now=NOW)
        referred = True
    except cases.ConsentMissing:
        referred = False
    try:
        cases.export_for_investigators(db, config, report_id=report, actor=officer.user.id,
                                       now=NOW)
        exported = True
    except cases.ConsentMissing:
        exported = False
    assert (referred, exported) == (refer, share)


@pytest.mark.parametrize(("service", "on", "field"), [
    ("", "2025-04-01", "service"), ("x" * 121, "2025-04-01", "service"),
    ("Clinic", "01/04/2025", "referred_on"), ("Clinic", "2025-02-30", "referred_on"),
])
def test_a_referral_is_checked(db: store.Connection, config: Config, officer: Officer, service: str, on: str, field: str) -> None:
    report = file_report(db, config, at=NOW)
    _consent(db, config, officer, report, True)
    with pytest.raises(cases.CaseInvalid, match=field):
        cases.add_referral(db, config, report_id=report, service=service, referred_on=on,
                           actor=officer.user.id, now=NOW)


# --- Notes -------------------------------------------------------------------------------


def test_a_note_sealed_to_the_case_is_stored_and_opens(db: store.Connection, config: Config, officer: Officer, keyed_instance: Created) -> None:
    report = file_report(db, config, at=NOW)
    note = seal_note("Called back; safe now.", config.recipients, report)
    note_id = cases.add_note(db, config, report_id=report, envelope=note,
                             actor=officer.user.id, now=NOW)
    assert cases.get_case(db, report).notes == ((note_id, NOW.replace(second=0), "alice"),)
    stored = cases.note_envelope(db, report, note_id)
    key = crypto.read_key_file(keyed_instance.key_file.read_bytes(), PASSPHRASE)
    opened = crypto.unseal(stored, key)
    assert (opened.schema, opened.report_id, opened.payload["note"]) == (2, report, "Called back; safe now.")
    assert actions(db)[-1] == "note_added"
    with pytest.raises(cases.CaseNotFound):
        cases.note_envelope(db, file_report(db, config, at=NOW), note_id)


def _bad_note(kind: str, config: Config, report: str) -> bytes:
    stranger = crypto.generate_private_key().public_key
    if kind == "other-case":
        return seal_note("n", config.recipients, "ff" * 16)
    if kind == "report-schema":
        return crypto.seal({"schema": 1, "note": "n"}, config.recipients,
                           report_id=bytes.fromhex(report))
    if kind == "server-flag":
        return seal_note("n", config.recipients, report, flags=fmt.FLAG_SERVER_SEALED)
    if kind == "unknown-key":
        return seal_note("n", [stranger], report)
    if kind == "extra-key":
        return seal_note("n", [*config.recipients, stranger], report)
    if kind == "too-large":
        return seal_note("n" * config.limits.max_envelope_bytes, config.recipients, report)
    if kind == "bad-point":
        note = bytearray(seal_note("n", config.recipients, report))
        start = fmt.PREFIX_LEN + fmt.KEY_ID_LEN + 1  # the first recipient's enc, after 0x04
        note[start:start + 64] = b"\x01" * 64
        return bytes(note)
    assert kind == "garbage"
    return b"INTK" + bytes(2000)


@pytest.mark.parametrize("kind", ["other-case", "report-schema", "server-flag", "unknown-key",
                                  "extra-key", "too-large", "bad-point", "garbage"])
def test_a_note_that_is_not_a_schema_2_envelope_for_this_case_is_refused(db: store.Connection, config: Config, officer: Officer, kind: str) -> None:
    report = file_report(db, config, at=NOW)
    with pytest.raises(cases.CaseInvalid, match="note"):
        cases.add_note(db, config, report_id=report, envelope=_bad_note(kind, config, report),
                       actor=officer.user.id, now=NOW)
    assert cases.get_case(db, report).notes == ()


def test_a_note_for_a_case_that_does_not_exist_is_refused(db: store.Connection, config: Config, officer: Officer) -> None:
    with pytest.raises(cases.CaseNotFound):
        cases.add_note(db, config, report_id="ee" * 16, actor=officer.user.id, now=NOW,
                       envelope=seal_note("n", config.recipients, "ee" * 16))


def test_a_note_is_never_accepted_as_a_report(db: store.Connection, config: Config) -> None:
    note = seal_note("not a report", config.recipients, "ab" * 16)
    with pytest.raises(reports.Rejected) as info:
        reports.accept_envelope(db, config, data=note, receipt_code=receipts.new_code(),
                                language="en")
    assert info.value.code == "unsupported_version"
    assert list(store.envelopes(db)) == []
