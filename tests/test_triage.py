"""Triage: the checked values officers record, their audit entries, and the de-identified
figures analysts see."""

from __future__ import annotations

from datetime import timedelta

import pytest

from intake import audit, cases, store, triage
from intake.config import AVAILABLE_LANGUAGES, Config

from support import T0, Officer, enrol, file_report

NOW = T0 + timedelta(days=1)

FULL: dict[str, object] = {
    "allegation": "abuse_rape", "victim_age": "child", "victim_gender": "female",
    "personnel": "military", "mission": "MINUSCA", "paternity": "unknown", "risk": "high",
    "needs": ["safety", "medical", "safety"], "nationalities": ["FR", "CD", "FR"],
    "place": "  Camp   near the   river ",
}


@pytest.fixture
def officer(db: store.Connection, config: Config) -> Officer:
    return enrol(db, config, "alice")


def test_clean_keeps_known_values_in_one_form() -> None:
    assert triage.clean(FULL) == {
        **FULL, "needs": ["medical", "safety"], "nationalities": ["CD", "FR"],
        "place": "Camp near the river",
    }
    assert triage.clean({}) == {}
    assert triage.clean({name: "" for name in triage.CHOICES} | {"needs": [], "place": " "}) == {}


@pytest.mark.parametrize("field", [*triage.CHOICES, *triage.MULTI])
@pytest.mark.parametrize("value", ["made_up", "ABUSE_RAPE", ["abuse_rape"], 7, "minusca"])
def test_clean_refuses_a_value_that_is_not_on_the_fields_list(field: str, value: object) -> None:
    if field in triage.MULTI and isinstance(value, list):
        value = [*value, "made_up"]
    with pytest.raises(triage.TriageInvalid, match=f"^{field}$"):
        triage.clean({field: value})


@pytest.mark.parametrize("codes", [["fr"], ["FRA"], ["XX"], ["EU"], ["ZZ"], ["UN"], "FR", [None],
                                   ["FR", "CD", "CF", "SS", "SD", "ML", "HT", "LB", "CY", "RS", "XK"]])
def test_nationalities_are_iso_codes_ten_at_most(codes: object) -> None:
    with pytest.raises(triage.TriageInvalid, match="nationalities"):
        triage.clean({"nationalities": codes})


def test_ten_nationalities_are_enough() -> None:
    ten = ["FR", "CD", "CF", "SS", "SD", "ML", "HT", "LB", "CY", "RS"]
    assert triage.clean({"nationalities": ten}) == {"nationalities": sorted(ten)}


def test_countries_are_the_iso_alpha_2_codes() -> None:
    codes = triage.countries()
    assert {"CD", "CF", "SS", "ML", "HT", "BD", "NP", "PK", "RW"} <= set(codes)
    assert not {"EU", "EZ", "UN", "ZZ", "QO", "XK", "001"} & set(codes)
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in codes)
    assert 240 <= len(codes) <= 260


@pytest.mark.parametrize("lang", AVAILABLE_LANGUAGES)
def test_every_interface_language_names_the_countries(lang: str) -> None:
    names = {triage.country_name(code, lang) for code in ("CD", "CF", "SS", "HT")}
    assert len(names) == 4 and not names & {"CD", "CF", "SS", "HT"}
    assert triage.country_name("QQ", lang) == "QQ"  # a code no one names stays a code


def test_a_place_is_short() -> None:
    longest = "p" * triage.MAX_PLACE_CHARS
    assert triage.clean({"place": f"  {longest} "}) == {"place": longest}
    with pytest.raises(triage.TriageInvalid, match="place"):
        triage.clean({"place": longest + "p"})


def _field_entries(db: store.Connection) -> list[dict[str, object]]:
    return [e.detail for e in reversed(list(audit.entries(db))) if e.action == "field_changed"]


def test_save_records_one_entry_per_changed_field(db: store.Connection, config: Config, officer: Officer) -> None:
    report = file_report(db, config, at=NOW)

    def save(values: dict[str, object]) -> list[str]:
        return triage.save(db, config, report_id=report, values=values,
                           actor=officer.user.id, now=NOW)

    assert save(FULL) == list(triage.FIELDS)
    assert triage.get(db, report) == triage.clean(FULL)
    assert _field_entries(db) == [
        {"field": "allegation", "value": "abuse_rape"}, {"field": "victim_age", "value": "child"},
        {"field": "victim_gender", "value": "female"}, {"field": "personnel", "value": "military"},
        {"field": "mission", "value": "MINUSCA"}, {"field": "paternity", "value": "unknown"},
        {"field": "risk", "value": "high"}, {"field": "nationalities", "value": "CD,FR"},
        {"field": "needs", "value": "medical,safety"}, {"field": "place", "value": None},
    ]
    before = len(_field_entries(db))
    assert save(FULL) == []  # the same again: nothing changed, nothing recorded
    assert save(FULL | {"risk": "immediate", "place": ""}) == ["risk", "place"]
    assert _field_entries(db)[before:] == [{"field": "risk", "value": "immediate"},
                                           {"field": "place", "value": None}]
    assert save({}) == [name for name in triage.FIELDS if name != "place"]
    assert triage.get(db, report) == {}
    assert {e["value"] for e in _field_entries(db)[before + 2:]} == {None}


def test_save_refuses_bad_values_and_unknown_cases(db: store.Connection, config: Config, officer: Officer) -> None:
    report = file_report(db, config, at=NOW)
    with pytest.raises(triage.TriageInvalid, match="risk"):
        triage.save(db, config, report_id=report, values={"risk": "extreme"},
                    actor=officer.user.id, now=NOW)
    with pytest.raises(triage.TriageInvalid, match="case"):
        triage.save(db, config, report_id="00" * 16, values={"risk": "high"},
                    actor=officer.user.id, now=NOW)
    assert triage.get(db, report) == {} and _field_entries(db) == []


# --- Figures -----------------------------------------------------------------------------


def _case(db: store.Connection, config: Config, officer: Officer, *, counted: bool | None,
          values: dict[str, object], year: int = 2025, status: str = "received") -> str:
    report = file_report(db, config, at=NOW.replace(year=year))
    if counted is not None:
        cases.record_consent(db, config, report_id=report, refer=False, share=False,
                             statistics=counted, actor=officer.user.id, now=NOW)
    if values:
        triage.save(db, config, report_id=report, values=values, actor=officer.user.id, now=NOW)
    if status != "received":
        cases.set_status(db, config, report_id=report, status=status, outcome=None, message="",
                         actor=officer.user.id, now=NOW)
    return report


def test_figures_count_only_reports_whose_complainant_agreed(db: store.Connection, config: Config, officer: Officer) -> None:
    for _ in range(3):
        _case(db, config, officer, counted=True,
              values={"allegation": "abuse_rape", "mission": "MINUSCA", "nationalities": ["CD"],
                      "place": "Secret camp"})
    _case(db, config, officer, counted=True, year=2024, status="reviewing",
          values={"allegation": "exploitation_transactional", "mission": "MONUSCO",
                  "nationalities": ["CD", "ZA"]})
    _case(db, config, officer, counted=True, values={})  # counted, not triaged yet
    # Refused, or never asked: not counted, whatever their triage says.
    _case(db, config, officer, counted=False, values={"mission": "UNMIK", "allegation": "abuse_other"})
    _case(db, config, officer, counted=None, values={"mission": "UNMIK", "allegation": "abuse_other"})
    found = triage.figures(db)
    assert (found.counted, found.not_counted) == (5, 2)
    tables = found.tables
    assert tables["allegation"] == [("abuse_rape", "3"), ("exploitation_transactional", "<3"),
                                    ("unknown", "<3")]
    assert tables["mission"] == [("MINUSCA", "3"), ("MONUSCO", "<3"), ("unknown", "<3")]
    assert tables["nationalities"] == [("CD", "4"), ("ZA", "<3"), ("unknown", "<3")]
    assert tables["year"] == [("2024", "<3"), ("2025", "4")]
    assert tables["status"] == [("received", "4"), ("reviewing", "<3")]
    assert tables["victim_age"] == [("unknown", "5")]
    assert "place" not in tables and "needs" not in tables and "risk" not in tables
    shown = {key for rows in tables.values() for key, _ in rows}
    assert "UNMIK" not in shown and "abuse_other" not in shown and "Secret camp" not in shown


def test_no_reports_no_figures(db: store.Connection) -> None:
    found = triage.figures(db)
    assert (found.counted, found.not_counted) == (0, 0)
    assert all(rows == [] for rows in found.tables.values())


@pytest.mark.parametrize(("count", "text"), [(0, "0"), (1, "<3"), (2, "<3"), (3, "3"), (40, "40")])
def test_small_counts_are_shown_as_fewer_than_three(count: int, text: str) -> None:
    assert triage.shown(count) == text
