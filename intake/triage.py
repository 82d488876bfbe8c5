"""Triage: the structured facts officers record after reading a report, and the
de-identified figures analysts see.

The categories follow those the UN publishes for allegations of sexual exploitation and
abuse (conduct.unmissions.org), so an advocate can set this organisation's figures beside
the UN's own. Every value but `place` comes from a fixed list; `place` is a short free text
and is never counted or put in the audit log.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from babel import Locale

from intake import audit, store
from intake.config import Config

ALLEGATIONS = (
    "exploitation_transactional", "exploitation_relationship", "exploitation_other",
    "abuse_rape", "abuse_assault", "abuse_other",
)
VICTIM_AGES = ("child", "adult", "unknown")
GENDERS = ("female", "male", "other", "unknown")
PERSONNEL = ("military", "staff_officer", "police", "civilian", "other", "unknown")
PATERNITY = ("yes", "no", "unknown")
NEEDS = ("medical", "psychosocial", "safety", "legal", "material")
RISKS = ("low", "medium", "high", "immediate")
# Current and past missions where allegations were made; proper names, not translated.
MISSIONS = (
    "MINUSCA", "MONUSCO", "UNMISS", "UNISFA", "UNIFIL", "MINURSO", "UNFICYP", "UNDOF",
    "UNMIK", "UNTSO", "UNMOGIP", "MINUSMA", "MINUSTAH", "MINUJUSTH", "UNAMID", "other",
)
MAX_PLACE_CHARS = 80
MAX_NATIONALITIES = 10
# Figures below this are shown as "fewer than 3", so that no small group can be picked out.
SMALL_CELL = 3

CHOICES: Mapping[str, tuple[str, ...]] = {
    "allegation": ALLEGATIONS, "victim_age": VICTIM_AGES, "victim_gender": GENDERS,
    "personnel": PERSONNEL, "mission": MISSIONS, "paternity": PATERNITY, "risk": RISKS,
}
MULTI: Mapping[str, tuple[str, ...]] = {"needs": NEEDS}
FIELDS = (*CHOICES, "nationalities", *MULTI, "place")


class TriageInvalid(ValueError):
    """A triage value is not one of the allowed ones; the message names the field."""


@cache
def countries() -> tuple[str, ...]:
    """ISO 3166-1 alpha-2 codes, from the CLDR data Babel ships."""
    names = Locale.parse("en").territories
    return tuple(sorted(
        str(code) for code in names
        if isinstance(code, str) and len(code) == 2 and code.isalpha() and not code.startswith("X")
        and code not in {"EU", "EZ", "QO", "UN", "ZZ"}
    ))


def country_name(code: str, lang: str) -> str:
    for candidate in (lang, "fr", "en"):
        name = Locale.parse(candidate).territories.get(code)
        if name:
            return str(name)
    return code


def clean(values: Mapping[str, object]) -> dict[str, object]:
    """Check submitted triage values; missing or empty means "not recorded yet"."""
    out: dict[str, object] = {}
    for name, allowed in CHOICES.items():
        value = values.get(name) or ""
        if value:
            if value not in allowed:
                raise TriageInvalid(name)
            out[name] = value
    for name, allowed in MULTI.items():
        chosen = values.get(name) or []
        if not isinstance(chosen, list) or any(v not in allowed for v in chosen):
            raise TriageInvalid(name)
        if chosen:
            out[name] = sorted(set(chosen))
    nationalities = values.get("nationalities") or []
    known = set(countries())
    if (
        not isinstance(nationalities, list) or len(nationalities) > MAX_NATIONALITIES
        or any(code not in known for code in nationalities)
    ):
        raise TriageInvalid("nationalities")
    if nationalities:
        out["nationalities"] = sorted(set(nationalities))
    place = " ".join(str(values.get("place") or "").split())
    if len(place) > MAX_PLACE_CHARS:
        raise TriageInvalid("place")
    if place:
        out["place"] = place
    return out


def get(conn: store.Connection, report_id: str) -> dict[str, object]:
    row = conn.execute("SELECT fields FROM triage WHERE report_id = ?", (report_id,)).fetchone()
    fields: dict[str, object] = json.loads(row[0]) if row else {}
    return fields


def save(
    conn: store.Connection, config: Config, *, report_id: str, values: Mapping[str, object],
    actor: int, now: datetime,
) -> list[str]:
    """Store the triage of a case; one audit entry per changed field. Returns their names."""
    new = clean(values)
    with store.transaction(conn):
        if not conn.execute("SELECT 1 FROM reports WHERE id = ?", (report_id,)).fetchone():
            raise TriageInvalid("case")
        old = get(conn, report_id)
        changed = [name for name in FIELDS if old.get(name) != new.get(name)]
        if not changed:
            return []
        conn.execute(
            "INSERT INTO triage (report_id, updated_at, fields) VALUES (?, ?, ?)"
            " ON CONFLICT (report_id) DO UPDATE SET updated_at = excluded.updated_at,"
            " fields = excluded.fields",
            (report_id, now.isoformat(), json.dumps(new, sort_keys=True)),
        )
        for name in changed:
            value = new.get(name)
            # Fixed-list values are recorded; the free-text place only as "changed".
            shown = None if name == "place" or value is None else (
                ",".join(value) if isinstance(value, list) else str(value))
            audit.record(conn, config.audit_key, actor=actor, action="field_changed", now=now,
                         report_id=report_id, detail={"field": name, "value": shown})
    return changed


@dataclass(frozen=True)
class Figures:
    """Counts per category, of reports whose complainant agreed to be counted."""

    counted: int
    not_counted: int
    tables: dict[str, list[tuple[str, str]]]  # table -> (category, count as shown)


def figures(conn: store.Connection) -> Figures:
    counts: dict[str, Counter[str]] = {name: Counter() for name in (
        "year", "status", "allegation", "victim_age", "victim_gender", "personnel",
        "nationalities", "mission", "paternity")}
    counted = 0
    for received, status, fields in conn.execute(
        "SELECT r.received_at, r.status, t.fields FROM reports r"
        " LEFT JOIN triage t ON t.report_id = r.id WHERE r.consent_statistics = 1"
    ):
        counted += 1
        data = json.loads(fields) if fields else {}
        counts["year"][received[:4]] += 1
        counts["status"][status] += 1
        for name in ("allegation", "victim_age", "victim_gender", "personnel", "mission",
                     "paternity"):
            counts[name][str(data.get(name, "unknown"))] += 1
        for code in data.get("nationalities", ["unknown"]):
            counts["nationalities"][code] += 1
    total = int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    tables = {
        name: [(key, shown(n)) for key, n in sorted(counter.items())]
        for name, counter in counts.items()
    }
    return Figures(counted, total - counted, tables)


def shown(count: int) -> str:
    return f"<{SMALL_CELL}" if 0 < count < SMALL_CELL else str(count)
