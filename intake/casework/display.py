"""Helpers the console's templates call: names of statuses and choices, and times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.core import UnknownLocaleError
from babel.dates import format_datetime, format_timedelta
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from intake import i18n
from intake.cases import CaseRow
from intake.casework.labels import CHOICE_NAMES, FIELD_NAMES, STATUS_CHOICES
from intake.wording import OUTCOME_NAMES, status_name


def _babel_locale() -> str:
    # Some enabled languages (Haitian Creole) have no CLDR date data: fall back to French,
    # which Haitian officers read, rather than fail the page.
    lang = i18n.current_language()
    try:
        format_timedelta(60, locale=lang)
    except (UnknownLocaleError, KeyError, ValueError):
        return "fr"
    return lang


def relative(moment: datetime, now: datetime) -> str:
    return format_timedelta(moment - now, add_direction=True, locale=_babel_locale())


def absolute(moment: datetime) -> str:
    tz = current_app.config["INTAKE"].timezone
    return format_datetime(moment, "medium", tzinfo=_zone(tz), locale=_babel_locale())


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def due_text(row: CaseRow, now: datetime) -> str:
    if row.due_at is None:
        return "—"
    left = format_timedelta(row.due_at - now, locale=_babel_locale())
    if row.due_at < now:
        return str(gettext("Overdue by %(time)s", time=left))
    return str(gettext("%(time)s left", time=left))


def case_status(row: CaseRow) -> str:
    if row.status == "closed" and row.outcome:
        return str(OUTCOME_NAMES.get(row.outcome, row.outcome))
    return status_name(row.status)


def status_label(status: str) -> str:
    return str(STATUS_CHOICES.get(status, status))


def outcome_label(outcome: str) -> str:
    return str(OUTCOME_NAMES.get(outcome, outcome))


def choice_label(value: str) -> str:
    return str(CHOICE_NAMES.get(value, value))


def field_label(name: str) -> str:
    return str(FIELD_NAMES.get(name, name))


_CHANNELS = {"web": _l("Web")}


def channel_label(channel: str) -> str:
    if channel.startswith("focal:"):
        return str(gettext("Focal point %(id)s", id=channel[6:]))
    return str(_CHANNELS.get(channel, channel))


HELPERS = {
    "relative": relative, "absolute": absolute, "due_text": due_text,
    "case_status": case_status, "status_label": status_label, "outcome_label": outcome_label,
    "choice_label": choice_label, "field_label": field_label, "channel_label": channel_label,
}


def case_error(code: str) -> str:
    from intake.casework.labels import ERRORS

    return str(ERRORS.get(code, ERRORS["triage"]))


def timeline_status(status: str) -> str:
    return status_name(status)


_CONSENT = {
    ("refer", None): _l("The complainant's answer about referral has not been read yet. "
                        "Open and read the report first."),
    ("refer", True): _l("The complainant agreed to be referred to a support service."),
    ("refer", False): _l("The complainant did not agree to be referred: referrals are blocked."),
    ("share", None): _l("The complainant's answer about investigators has not been read yet. "
                        "Open and read the report first."),
    ("share", True): _l("The complainant agreed that their report be given to investigators."),
    ("share", False): _l("The complainant did not agree that their report be given to "
                         "investigators: sharing is blocked."),
}


def consent_text(what: str, answer: bool | None) -> str:
    return str(_CONSENT[(what, answer)])


HELPERS.update(case_error=case_error, timeline_status=timeline_status,
               consent_text=consent_text)


_ROLES = {"admin": _l("Administrator"), "officer": _l("Case officer"),
          "analyst": _l("Analyst (figures only)")}
_FIGURES = {"year": _l("Year received"), "status": _l("Status")}


def role_label(role: str) -> str:
    return str(_ROLES.get(role, role))


def figure_title(table: str) -> str:
    return str(_FIGURES.get(table) or FIELD_NAMES.get(table, table))


def figure_label(table: str, category: str) -> str:
    if table == "year" or (table == "mission" and category != "other"):
        return category
    if table == "nationalities" and category != "unknown":
        from intake.triage import country_name

        return country_name(category, i18n.current_language())
    if table == "status":
        return status_name(category)
    return choice_label(category)


HELPERS.update(role_label=role_label, figure_title=figure_title, figure_label=figure_label)
