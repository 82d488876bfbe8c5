"""Languages: which one a request is in, and the strings the browser code needs.

The language is the first part of every page's path (`/fr/...`): a page's address says its
language, so links, bookmarks and cached copies keep it without a cookie. `/` opens in the
language last picked with the language links, if any, else the best for Accept-Language.
Only that choice is remembered, in a cookie holding the language code alone, which quick
exit deletes (intake.security says why a cookie, and why so little).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel import Locale
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from flask_babel import Babel
from flask_babel import lazy_gettext as _l

from intake import security
from intake.config import RTL_LANGUAGES

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


def init_app(app: Flask) -> None:
    cfg = app.config["INTAKE"]
    directories = (TRANSLATIONS_DIR, *cfg.extra_translations)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(str(d) for d in directories)
    app.config["BABEL_DEFAULT_TIMEZONE"] = cfg.timezone
    Babel(app, locale_selector=current_language)
    app.jinja_env.globals.update(text_direction=text_direction, language_name=language_name)


def language_in_path(bp: Blueprint) -> None:
    """Make `<lang>` in a blueprint's paths set the request's language (404 if not
    enabled), and fill it in when building its URLs."""

    @bp.url_value_preprocessor
    def _language(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values and "lang" in values:
            lang = values.pop("lang")
            if lang not in languages():
                abort(404)
            g.lang = lang

    @bp.url_defaults
    def _add_language(endpoint: str, values: dict[str, Any]) -> None:
        if "lang" not in values and current_app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values["lang"] = current_language()


def languages() -> tuple[str, ...]:
    langs: tuple[str, ...] = current_app.config["INTAKE"].languages
    return langs


def best_language() -> str:
    langs = languages()
    return request.accept_languages.best_match(langs) or langs[0]


def remembered_language() -> str | None:
    """The language last picked with the language links, if it is still enabled."""
    lang = request.cookies.get(security.LANGUAGE_COOKIE)
    return lang if lang in languages() else None


def remember_picked(response: Response) -> None:
    """After a page reached through a language link (`?picked=1`): remember its language,
    unless the browser asks for it anyway, when there is nothing to remember."""
    lang, secure = g.get("lang"), current_app.config["INTAKE"].secure_cookies
    if request.args.get("picked") != "1" or not isinstance(lang, str):
        return
    if lang != best_language():
        security.set_language_cookie(response, lang, secure=secure)
    elif security.LANGUAGE_COOKIE in request.cookies:
        security.delete_language_cookie(response, secure=secure)


def forget_picked(response: Response) -> None:
    if security.LANGUAGE_COOKIE in request.cookies:
        security.delete_language_cookie(
            response, secure=current_app.config["INTAKE"].secure_cookies
        )


def current_language() -> str:
    lang = g.get("lang")
    return lang if isinstance(lang, str) else best_language()


def text_direction(lang: str) -> str:
    return "rtl" if lang in RTL_LANGUAGES else "ltr"


def language_name(lang: str) -> str:
    """A language in its own name, as the picker shows it."""
    return Locale.parse(lang).get_display_name(lang) or lang


def js_strings() -> dict[str, str]:
    """Every string the browser code shows, translated on the server into the page."""
    return {key: str(value) for key, value in _JS_STRINGS.items()}


_JS_STRINGS = {
    "sealing": _l("Locking your report on this phone…"),
    "sending": _l("Sending your report…"),
    "send_failed": _l(
        "Your report could not be sent. Nothing you wrote is lost: check your connection "
        "and press “Send my report” again."
    ),
    "rejected": _l(
        "The report could not be accepted. Nothing you wrote is lost. Please try again."
    ),
    # With JavaScript a voice note or a photo can stand for the text; without it (the
    # server's form) the text is the only way, and forms.py keeps the old wording.
    "what_required": _l(
        "Please tell us what happened: write it, or record a voice note. It is the only "
        "thing you must give us."
    ),
    "code_typo": _l(
        "This code has a mistake: one digit is wrong or two are swapped. Check it and try again."
    ),
    "code_length": _l("A receipt code has 16 digits."),
    # The offline queue. Counts are shown as "label: N" so that no plural forms are needed.
    "delivery_sent": _l("Your report was received."),
    "delivery_waiting": _l(
        "Your report is locked and kept on this device. It has not reached us yet: it will "
        "be sent when there is a connection."
    ),
    "delivery_refused": _l(
        "Your report could not be accepted, so this receipt code will not work. It is kept, "
        "locked, on this device."
    ),
    "not_sent": _l("Your report was not sent. Everything you wrote is still here."),
    "send_again": _l("Here is your report again. Check it and press “Send my report”."),
    "queue_waiting": _l("Reports waiting on this device to be sent: %(num)d"),
    "queue_refused": _l("Reports that were not accepted, kept locked on this device: %(num)d"),
    "status_offline": _l(
        "There is no connection, so the status of a report cannot be checked now. Try again "
        "when you are online."
    ),
    # A focal point's shared tablet.
    "focal_banner": _l("Focal point: %(name)s"),
    "focal_enrolled": _l("This tablet is enrolled as %(name)s."),
    "focal_not_enrolled": _l("This tablet is not enrolled."),
    "focal_no_storage": _l(
        "This browser cannot keep data on this tablet (is it a private window?), so it "
        "cannot be enrolled or keep reports."
    ),
    "enrol_code_needed": _l("Enter the enrolment code."),
    "enrol_failed": _l("The tablet could not be enrolled. Please try again."),
    "enrol_network": _l(
        "The tablet could not reach the server. Enrolling needs a connection: try again when "
        "you are online."
    ),
    "export_done": _l("Locked reports saved to the file: %(num)d"),
    "export_none": _l("There are no reports on this tablet to save."),
    "export_failed": _l("The file could not be saved."),
}
