"""Public side: the report form, the submission API, the status page and the information page.

Routes are thin: parse, call `intake.reports`, render. The language is the first part of
every page's path (see intake.i18n).
"""

from __future__ import annotations

import binascii
import json
import os
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date, format_time
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from intake import crypto, i18n, receipts, reports
from intake.app import get_db
from intake.config import Config
from intake.report.forms import (
    CHOICE_FIELDS,
    CONSENT_FIELDS,
    TEXT_FIELDS,
    ReportForm,
    payload_from_form,
)

bp = Blueprint("report", __name__)

ERRORS = {
    "bad_request": _l("The request was not understood."),
    "too_large": _l("The report is too large to send."),
    "malformed_envelope": _l("The locked report was damaged on the way. Please send it again."),
    "unsupported_version": _l("This page is out of date. Reload it and send your report again."),
    "unknown_key": _l(
        "The report was locked with a key this organisation does not use. Reload the page and "
        "send it again."
    ),
    "invalid_receipt_code": _l("The receipt code is not valid."),
    "replayed_envelope": _l("This report was already received. You do not need to send it again."),
    "report_id_conflict": _l("This report could not be stored. Reload the page and send it again."),
}
STATUS_NAMES = {
    "received": _l("Received"),
}


def _config() -> Config:
    cfg: Config = current_app.config["INTAKE"]
    return cfg


@bp.url_value_preprocessor
def _language(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and "lang" in values:
        lang = values.pop("lang")
        if lang not in _config().languages:
            abort(404)
        g.lang = lang


@bp.url_defaults
def _add_language(endpoint: str, values: dict[str, Any]) -> None:
    if "lang" not in values and current_app.url_map.is_endpoint_expecting(endpoint, "lang"):
        values["lang"] = i18n.current_language()


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    cfg = _config()
    return {
        "config": cfg, "languages": cfg.languages, "lang": i18n.current_language(),
        "page_data": _page_data,
    }


@bp.get("/")
def root() -> Response:
    return redirect(url_for("report.form", lang=i18n.best_language()))  # type: ignore[return-value]


def _new_form(**kwargs: Any) -> ReportForm:
    cfg = _config()
    return ReportForm(
        languages=[(lang, i18n.language_name(lang)) for lang in cfg.languages],
        max_text=cfg.limits.max_text_chars,
        **kwargs,
    )


def _page_data() -> str:
    """Data the browser code needs, as JSON for a non-executed <script> data block."""
    cfg = _config()
    return json.dumps(
        {
            "keys": [key.text for key in cfg.recipients],
            "language": i18n.current_language(),
            "maxText": cfg.limits.max_text_chars,
            "submitUrl": url_for("report.submit_api"),
            "fields": {"text": TEXT_FIELDS, "choice": CHOICE_FIELDS, "consent": CONSENT_FIELDS},
            "strings": i18n.js_strings(),
        },
        ensure_ascii=True,
    ).replace("</", "<\\/")


@bp.get("/<lang>/")
def form() -> str:
    report_form = _new_form()
    report_form.report_id.data = os.urandom(16).hex()
    return _render_form(report_form)


def _render_form(report_form: ReportForm, error: str | None = None) -> str:
    cfg = _config()
    fingerprints = [crypto.fingerprint(key.key_id) for key in cfg.recipients]
    return render_template(
        "report/form.html", form=report_form, fingerprints=fingerprints, error=error
    )


@bp.post("/<lang>/")
def submit_form() -> tuple[str, int] | str:
    """The no-JavaScript path: the server seals the report in memory at once."""
    report_form = _new_form()
    if not report_form.validate():
        return _render_form(report_form, error=str(_l(
            "Some answers need your attention. Everything you wrote is still here."
        ))), 400
    lang = i18n.current_language()
    report_id = bytes.fromhex(report_form.report_id.data) if report_form.report_id.data else None
    try:
        receipt = reports.seal_on_server(
            get_db(), _config(), payload=payload_from_form(report_form, lang),
            language=lang, report_id=report_id,
        )
    except reports.Rejected as exc:
        if exc.code in ("replayed_envelope", "report_id_conflict") and report_id:
            return render_template("report/already.html"), 409
        raise
    return render_template(
        "report/receipt.html", code=receipts.display(receipt.receipt_code), sealed_by_server=True
    )


@bp.post("/api/reports")
def submit_api() -> tuple[Response, int]:
    """Envelopes sealed on the device. JSON in, JSON out; nothing stored unless 201."""
    if request.mimetype != "application/json":
        return _api_error("bad_request", 400)
    try:
        body = json.loads(request.get_data(cache=False))
    except RequestEntityTooLarge:
        return _api_error("too_large", 413)
    except (ValueError, RecursionError):
        # RecursionError: a body of 100,000 "[" is valid UTF-8 and hostile; it must get
        # a 400 like any other malformed body, not a 500.
        return _api_error("bad_request", 400)
    if not isinstance(body, dict):
        return _api_error("bad_request", 400)
    envelope_text, code, lang = body.get("envelope"), body.get("receipt_code"), body.get("language")
    if not isinstance(envelope_text, str) or not isinstance(code, str) or not isinstance(lang, str):
        return _api_error("bad_request", 400)
    try:
        data = crypto.b64decode(envelope_text)
    except (ValueError, binascii.Error):
        return _api_error("malformed_envelope", 400)
    try:
        accepted = reports.accept_envelope(
            get_db(), _config(), data=data, receipt_code=code, language=lang
        )
    except reports.Rejected as exc:
        status = {"too_large": 413, "replayed_envelope": 409, "report_id_conflict": 409}
        return _api_error(exc.code, status.get(exc.code, 422))
    return jsonify(report_id=accepted.report_id), 201


def _api_error(code: str, status: int) -> tuple[Response, int]:
    return jsonify(error=code, message=str(ERRORS[code])), status


@bp.route("/<lang>/status", methods=["GET", "POST"])
def status() -> tuple[str, int] | str:
    if request.method == "GET":
        return render_template("report/status.html", result=None, typed="")
    typed = request.form.get("code", "")[:64]
    view = reports.find_status(get_db(), _config(), typed)
    if view is None:
        return render_template("report/status.html", result=None, typed=typed, not_found=True), 404
    events = [
        {"when": _when(e.at), "status": _status_name(e.status)}
        for e in view.events
    ]
    return render_template(
        "report/status.html", typed="",
        result={"status": _status_name(view.status), "events": events},
    )


def _when(moment: datetime) -> str:
    # Date and hour:minute in the instance's time zone; times are stored to the minute.
    return f"{format_date(moment, 'long')}, {format_time(moment, 'short')}"


def _status_name(status: str) -> str:
    return str(STATUS_NAMES.get(status, status))


@bp.get("/<lang>/about")
def about() -> str:
    return render_template("report/about.html")


@bp.app_errorhandler(CSRFError)
def _stale_page(_exc: CSRFError) -> tuple[str, int]:
    """A stale or missing CSRF token is not the person's mistake: keep all they typed."""
    message = str(_l(
        "This page was open for a long time. Everything you wrote is still here: "
        "please press the button again."
    ))
    if request.endpoint == "report.submit_form":
        report_form = _new_form()
        report_form.report_id.data = report_form.report_id.data or os.urandom(16).hex()
        return _render_form(report_form, error=message), 400
    if request.endpoint == "report.status":
        typed = request.form.get("code", "")[:64]
        return render_template("report/status.html", result=None, typed=typed, stale=message), 400
    return render_template("report/error.html", message=message), 400


@bp.app_errorhandler(413)
def _too_large(_exc: Exception) -> tuple[Response, int] | tuple[str, int]:
    if request.path.startswith("/api/"):
        return _api_error("too_large", 413)
    return render_template("report/error.html", message=str(ERRORS["too_large"])), 413
