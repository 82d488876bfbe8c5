"""What the complainant reads about their case, in every enabled language.

Officers choose a status (and, when closing, an outcome) from intake.cases; the status page
shows these words, never the officer's internal names. The console shows the same words,
so an officer sees exactly what the complainant will see.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATUS_NAMES = {
    "received": _l("Received"),
    "reviewing": _l("Being reviewed"),
    "referred": _l("Referred for support"),
    "investigating": _l("Under investigation"),
    "closed": _l("Closed"),
}

OUTCOME_NAMES = {
    "action_taken": _l("Closed: action was taken"),
    "not_substantiated": _l("Closed: we could not confirm what happened"),
    "referred_elsewhere": _l("Closed: given to people who investigate, as agreed"),
    "withdrawn": _l("Closed: as you asked"),
    "no_contact": _l(
        "Closed: we could not go on without more information. You can make a new report at "
        "any time."
    ),
}


def status_name(status: str) -> str:
    """A timeline entry's words: `closed:<outcome>` names the outcome."""
    if status.startswith("closed:"):
        return str(OUTCOME_NAMES.get(status[7:], STATUS_NAMES["closed"]))
    return str(STATUS_NAMES.get(status, status))
