"""Casework on stored reports: the case list, statuses, messages, notes, consent and export.

Plain functions over a connection; every change records its audit entry in the same
transaction, so there is no action without its entry and no entry without its action.
Content never passes through here: notes arrive as envelopes sealed in the officer's
browser, and audit details hold names and fixed values, never what anyone wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from intake import audit, crypto, store
from intake import envelope as fmt
from intake.config import Config, ServiceLevels

STATUSES = ("received", "reviewing", "referred", "investigating", "closed")
OUTCOMES = ("action_taken", "not_substantiated", "referred_elsewhere", "withdrawn",
            "no_contact")
PRIORITIES = ("urgent", "high", "normal", "low")
MAX_MESSAGE_CHARS = 2000
NO_DEADLINE = "9999"


class CaseNotFound(Exception):
    """No report has this id."""


class CaseInvalid(ValueError):
    """A value an officer sent is not one the case accepts; the message says which."""


class ConsentMissing(Exception):
    """The complainant did not agree to this (`what` is "refer" or "share"), or has not
    been asked: the action is refused."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class CaseQuery:
    status: str = ""
    channel: str = ""  # "web", "focal" or ""
    language: str = ""
    assignee: str = ""  # a user id, "none" or ""
    priority: str = ""
    overdue: bool = False
    ref: str = ""  # the start of a case reference
    page: int = 1


@dataclass(frozen=True)
class CaseRow:
    report_id: str
    received_at: datetime
    channel: str
    language: str
    status: str
    outcome: str | None
    priority: str
    assignee: str | None
    due_at: datetime | None
    sealed_by: str

    @property
    def ref(self) -> str:
        return reference(self.report_id)

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at < now


@dataclass(frozen=True)
class CasePage:
    rows: tuple[CaseRow, ...]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class Message:
    at: datetime
    author: str
    body: str


@dataclass(frozen=True)
class Case:
    row: CaseRow
    assignee_id: int | None
    consent: dict[str, bool | None]
    events: tuple[store.Event, ...]
    messages: tuple[Message, ...]
    notes: tuple[tuple[int, datetime, str], ...] = field(default=())  # id, at, author


def reference(report_id: str) -> str:
    """How officers name a case aloud: its id's first eight hex digits in two groups."""
    return f"{report_id[:4]} {report_id[4:8]}"


# --- Service levels ----------------------------------------------------------------------


def _due_sql(levels: ServiceLevels) -> str:
    # Acknowledge (any status change or message) within acknowledge_hours; then the first
    # message to the complainant within first_update_days of receipt. Closed cases have none.
    stamp = "'%Y-%m-%dT%H:%M:00+00:00'"
    return (
        f"CASE WHEN status = 'closed' THEN '{NO_DEADLINE}'"
        f" WHEN acknowledged_at IS NULL THEN strftime({stamp}, received_at,"
        f" '+{int(levels.acknowledge_hours)} hours')"
        f" WHEN first_update_at IS NULL THEN strftime({stamp}, received_at,"
        f" '+{int(levels.first_update_days)} days')"
        f" ELSE '{NO_DEADLINE}' END"
    )


def refresh_due(conn: store.Connection, levels: ServiceLevels, report_id: str | None = None) -> int:
    """Recompute deadlines: for one case after a change, for all after a settings change."""
    expr = _due_sql(levels)
    # Every fragment here is ours (numbers from the frozen config); values are ? parameters.
    query = f"UPDATE reports SET due_at = {expr} WHERE due_at IS NOT {expr}"  # noqa: S608
    params: tuple[str, ...] = ()
    if report_id is not None:
        query += " AND id = ?"
        params = (report_id,)
    with store.transaction(conn):
        return int(conn.execute(query, params).rowcount)


# --- The case list -----------------------------------------------------------------------


_ROW = (
    "r.id, r.received_at, r.channel, r.language, r.status, r.outcome, r.priority,"
    " u.username, r.due_at, r.sealed_by"
)


def _row(values: Sequence[object]) -> CaseRow:
    due = str(values[8])
    return CaseRow(
        report_id=str(values[0]), received_at=datetime.fromisoformat(str(values[1])),
        channel=str(values[2]), language=str(values[3]), status=str(values[4]),
        outcome=None if values[5] is None else str(values[5]), priority=str(values[6]),
        assignee=None if values[7] is None else str(values[7]),
        due_at=None if due == NO_DEADLINE else datetime.fromisoformat(due),
        sealed_by=str(values[9]),
    )


def list_cases(conn: store.Connection, query: CaseQuery, *, now: datetime,
               page_size: int) -> CasePage:
    """One page of cases, overdue and soonest-due first, then the newest."""
    where: list[str] = []
    params: list[object] = []
    if query.status in STATUSES:
        where.append("r.status = ?")
        params.append(query.status)
    if query.channel == "web":
        where.append("r.channel = 'web'")
    elif query.channel == "focal":
        # A range, not LIKE, so the comparison stays exact and index-friendly.
        where.append("r.channel >= 'focal:' AND r.channel < 'focal;'")
    if query.language:
        where.append("r.language = ?")
        params.append(query.language)
    if query.assignee == "none":
        where.append("r.assignee IS NULL")
    elif query.assignee.isascii() and query.assignee.isdigit():
        # isdigit alone also admits "²", which int() refuses.
        where.append("r.assignee = ?")
        params.append(int(query.assignee))
    if query.priority in PRIORITIES:
        where.append("r.priority = ?")
        params.append(query.priority)
    if query.overdue:
        where.append("r.due_at < ?")
        params.append(now.astimezone(UTC).isoformat())
    ref = "".join(ch for ch in query.ref.lower() if ch in "0123456789abcdef")[:32]
    if ref:
        where.append("r.id >= ? AND r.id < ?")
        params.extend([ref, ref + "g"])
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    # The clause is built from fixed fragments above; every value is a ? parameter.
    count_query = f"SELECT count(*) FROM reports r{clause}"  # noqa: S608
    total = int(conn.execute(count_query, params).fetchone()[0])
    pages = max(1, -(-total // page_size))
    page = min(max(1, query.page), pages)
    rows = conn.execute(
        f"SELECT {_ROW} FROM reports r LEFT JOIN users u ON u.id = r.assignee{clause}"  # noqa: S608
        " ORDER BY r.due_at, r.received_at DESC LIMIT ? OFFSET ?",
        (*params, page_size, (page - 1) * page_size),
    ).fetchall()
    return CasePage(tuple(_row(r) for r in rows), total, page, pages)


def get_case(conn: store.Connection, report_id: str) -> Case:
    row = conn.execute(
        f"SELECT {_ROW}, r.assignee, r.consent_refer, r.consent_share, r.consent_statistics"  # noqa: S608
        " FROM reports r LEFT JOIN users u ON u.id = r.assignee WHERE r.id = ?",
        (report_id,),
    ).fetchone()
    if row is None:
        raise CaseNotFound(report_id)
    consent = {
        name: None if value is None else bool(value)
        for name, value in zip(("refer", "share", "statistics"), row[11:14], strict=True)
    }
    events = tuple(
        store.Event(datetime.fromisoformat(at), status) for at, status in conn.execute(
            "SELECT at, status FROM report_events WHERE report_id = ? ORDER BY at, id",
            (report_id,),
        )
    )
    return Case(
        row=_row(row), assignee_id=row[10], consent=consent, events=events,
        messages=messages(conn, report_id),
        notes=tuple(
            (nid, datetime.fromisoformat(at), name) for nid, at, name in conn.execute(
                "SELECT n.id, n.at, u.username FROM notes n JOIN users u ON u.id = n.author"
                " WHERE n.report_id = ? ORDER BY n.at, n.id", (report_id,),
            )
        ),
    )


def messages(conn: store.Connection, report_id: str) -> tuple[Message, ...]:
    return tuple(
        Message(datetime.fromisoformat(at), name, body) for at, name, body in conn.execute(
            "SELECT m.at, u.username, m.body FROM messages m JOIN users u ON u.id = m.author"
            " WHERE m.report_id = ? ORDER BY m.at, m.id", (report_id,),
        )
    )


# --- Changes -----------------------------------------------------------------------------


def set_status(
    conn: store.Connection,
    config: Config,
    *,
    report_id: str,
    status: str,
    outcome: str | None,
    message: str,
    actor: int,
    now: datetime,
) -> None:
    """Move a case to a status the complainant will see, with an optional message."""
    if status not in STATUSES:
        raise CaseInvalid("status")
    if (status == "closed") != (outcome is not None) or (
        outcome is not None and outcome not in OUTCOMES
    ):
        raise CaseInvalid("outcome")
    with store.transaction(conn):
        current = _current(conn, report_id)
        at = _minute(now)
        conn.execute(
            "UPDATE reports SET status = ?, outcome = ?,"
            " acknowledged_at = coalesce(acknowledged_at, ?) WHERE id = ?",
            (status, outcome, at, report_id),
        )
        conn.execute(
            "INSERT INTO report_events (report_id, at, status) VALUES (?, ?, ?)",
            (report_id, at, f"closed:{outcome}" if outcome else status),
        )
        audit.record(conn, config.audit_key, actor=actor, action="status_changed", now=now,
                     report_id=report_id,
                     detail={"from": current, "to": status, "outcome": outcome})
        if message.strip():
            _message(conn, config, report_id, message, actor, now)
        refresh_due(conn, config.service_levels, report_id)


def send_message(
    conn: store.Connection, config: Config, *, report_id: str, body: str, actor: int,
    now: datetime,
) -> None:
    with store.transaction(conn):
        _current(conn, report_id)
        _message(conn, config, report_id, body, actor, now)
        refresh_due(conn, config.service_levels, report_id)


def _message(conn: store.Connection, config: Config, report_id: str, body: str, actor: int,
             now: datetime) -> None:
    text = body.strip().replace("\r\n", "\n")
    if not 1 <= len(text) <= MAX_MESSAGE_CHARS:
        raise CaseInvalid("message")
    at = _minute(now)
    conn.execute("INSERT INTO messages (report_id, at, author, body) VALUES (?, ?, ?, ?)",
                 (report_id, at, actor, text))
    conn.execute(
        "UPDATE reports SET acknowledged_at = coalesce(acknowledged_at, ?),"
        " first_update_at = coalesce(first_update_at, ?) WHERE id = ?",
        (at, at, report_id),
    )
    # The audit entry says that a message went, and how long it was; never what it said.
    audit.record(conn, config.audit_key, actor=actor, action="message_sent", now=now,
                 report_id=report_id, detail={"chars": len(text)})


def set_assignment(
    conn: store.Connection, config: Config, *, report_id: str, assignee: int | None,
    priority: str, actor: int, now: datetime,
) -> list[str]:
    """Assignee and priority; returns the names of the fields that changed."""
    if priority not in PRIORITIES:
        raise CaseInvalid("priority")
    with store.transaction(conn):
        row = conn.execute("SELECT assignee, priority FROM reports WHERE id = ?",
                           (report_id,)).fetchone()
        if row is None:
            raise CaseNotFound(report_id)
        if assignee is not None and not conn.execute(
            "SELECT 1 FROM users WHERE id = ? AND role = 'officer' AND disabled_at IS NULL",
            (assignee,),
        ).fetchone():
            raise CaseInvalid("assignee")
        changed = []
        for name, old, new in (("assignee", row[0], assignee), ("priority", row[1], priority)):
            if old != new:
                changed.append(name)
                audit.record(conn, config.audit_key, actor=actor, action="field_changed",
                             now=now, report_id=report_id, detail={"field": name, "value": new})
        conn.execute("UPDATE reports SET assignee = ?, priority = ? WHERE id = ?",
                     (assignee, priority, report_id))
    return changed


def record_consent(
    conn: store.Connection, config: Config, *, report_id: str, refer: bool, share: bool,
    statistics: bool, actor: int, now: datetime,
) -> None:
    """The complainant's answers, as the officer's browser read them in the report."""
    with store.transaction(conn):
        _current(conn, report_id)
        conn.execute(
            "UPDATE reports SET consent_refer = ?, consent_share = ?, consent_statistics = ?"
            " WHERE id = ?", (int(refer), int(share), int(statistics), report_id),
        )
        audit.record(conn, config.audit_key, actor=actor, action="consent_recorded", now=now,
                     report_id=report_id,
                     detail={"refer": refer, "share": share, "statistics": statistics})


def add_note(
    conn: store.Connection, config: Config, *, report_id: str, envelope: bytes, actor: int,
    now: datetime,
) -> int:
    """Store a note sealed in the officer's browser (schema 2, bound to this case's id)."""
    try:
        env = fmt.parse(envelope, max_size=config.limits.max_envelope_bytes)
    except (fmt.EnvelopeMalformed, fmt.EnvelopeUnsupported):
        raise CaseInvalid("note") from None
    if (
        env.schema != fmt.SCHEMA_NOTE or env.report_id_hex != report_id or env.flags
        # A console page opened before a key was retired may still seal to it.
        or not config.accepts_recipients((e.key_id for e in env.recipients), now)
        or not all(crypto.is_valid_point(e.enc) for e in env.recipients)
    ):
        raise CaseInvalid("note")
    with store.transaction(conn):
        _current(conn, report_id)
        cursor = conn.execute(
            "INSERT INTO notes (report_id, at, author, envelope) VALUES (?, ?, ?, ?)",
            (report_id, _minute(now), actor, envelope),
        )
        audit.record(conn, config.audit_key, actor=actor, action="note_added", now=now,
                     report_id=report_id)
    return int(cursor.lastrowid or 0)


def note_envelope(conn: store.Connection, report_id: str, note_id: int) -> bytes:
    row = conn.execute("SELECT envelope FROM notes WHERE id = ? AND report_id = ?",
                       (note_id, report_id)).fetchone()
    if row is None:
        raise CaseNotFound(report_id)
    return bytes(row[0])


def open_envelope(conn: store.Connection, config: Config, *, report_id: str, actor: int,
                  now: datetime) -> bytes:
    """The report's ciphertext for the officer's browser to decrypt; recorded."""
    with store.transaction(conn):
        row = conn.execute("SELECT envelope FROM reports WHERE id = ?", (report_id,)).fetchone()
        if row is None:
            raise CaseNotFound(report_id)
        audit.record(conn, config.audit_key, actor=actor, action="content_decrypted", now=now,
                     report_id=report_id)
    return bytes(row[0])


def mark_opened(conn: store.Connection, config: Config, *, report_id: str, actor: int,
                now: datetime) -> None:
    with store.transaction(conn):
        _current(conn, report_id)
        audit.record(conn, config.audit_key, actor=actor, action="case_opened", now=now,
                     report_id=report_id)


def add_referral(
    conn: store.Connection, config: Config, *, report_id: str, service: str, referred_on: str,
    actor: int, now: datetime,
) -> None:
    """Record a referral; refused unless the complainant agreed to be referred."""
    service = " ".join(service.split())
    if not 1 <= len(service) <= 120:
        raise CaseInvalid("service")
    try:
        datetime.strptime(referred_on, "%Y-%m-%d")
    except ValueError:
        raise CaseInvalid("referred_on") from None
    with store.transaction(conn):
        consent = conn.execute("SELECT consent_refer FROM reports WHERE id = ?",
                               (report_id,)).fetchone()
        if consent is None:
            raise CaseNotFound(report_id)
        if consent[0] != 1:
            raise ConsentMissing("refer")
        conn.execute(
            "INSERT INTO referrals (report_id, service, referred_on, created_at, author)"
            " VALUES (?, ?, ?, ?, ?)", (report_id, service, referred_on, now.isoformat(), actor),
        )
        audit.record(conn, config.audit_key, actor=actor, action="referral_added", now=now,
                     report_id=report_id, detail={"referred_on": referred_on})


def referrals(conn: store.Connection, report_id: str) -> list[tuple[str, str, str]]:
    """(service, date, officer) of each referral of a case."""
    return [
        (service, on, name) for service, on, name in conn.execute(
            "SELECT f.service, f.referred_on, u.username FROM referrals f"
            " JOIN users u ON u.id = f.author WHERE f.report_id = ? ORDER BY f.id",
            (report_id,),
        )
    ]


def export_for_investigators(
    conn: store.Connection, config: Config, *, report_id: str, actor: int, now: datetime
) -> bytes:
    """The sealed report for a body that investigates; refused without the complainant's
    agreement. It stays ciphertext: the receiving investigators need the key file."""
    with store.transaction(conn):
        row = conn.execute("SELECT consent_share, envelope FROM reports WHERE id = ?",
                           (report_id,)).fetchone()
        if row is None:
            raise CaseNotFound(report_id)
        if row[0] != 1:
            raise ConsentMissing("share")
        audit.record(conn, config.audit_key, actor=actor, action="export", now=now,
                     report_id=report_id, detail={"what": "envelope"})
    return bytes(row[1])


def _current(conn: store.Connection, report_id: str) -> str:
    row = conn.execute("SELECT status FROM reports WHERE id = ?", (report_id,)).fetchone()
    if row is None:
        raise CaseNotFound(report_id)
    return str(row[0])


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(second=0, microsecond=0).isoformat()


def time_left(due: datetime | None, now: datetime) -> timedelta | None:
    return None if due is None else due - now
