"""Officer side: login, cases, triage, administration and figures, at /<lang>/console.

A separate blueprint from the public side, with its own templates, sharing the domain
modules. Routes are thin: check access (`access`), call a plain function, render.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from intake import i18n
from intake.config import Config

bp = Blueprint("casework", __name__, url_prefix="/<lang>/console")


def config() -> Config:
    cfg: Config = current_app.config["INTAKE"]
    return cfg


def small_id(text: str) -> int | None:
    """A row id from a form field, or None: only ASCII digits, and few enough for SQLite."""
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return None


i18n.language_in_path(bp)


@bp.context_processor
def _console_globals() -> dict[str, Any]:
    from intake.casework.display import HELPERS

    def console_user() -> object:
        session = access.current()
        return session.user if session else None

    from intake.accounts import MIN_PASSWORD_CHARS

    return {**HELPERS, "console_user": console_user, "min_password": MIN_PASSWORD_CHARS}


from intake.casework import access, admin, attachments, casefiles  # noqa: E402,F401  (routes)
