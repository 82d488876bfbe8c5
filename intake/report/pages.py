"""Pages of the public side: report form (and its no-JavaScript post), status, information,
focal-point enrolment, offline notice and the neutral quick-exit page."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from typing import Any

from flask import Response, abort, g, make_response, redirect, render_template, request, url_for
from flask_babel import format_date, format_time, ngettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import InternalServerError

from intake import capacity, cases, crypto, disclosure, i18n, receipts, reports, throttle
from intake.app import client_address, get_db, get_gate
from intake.report import bp, config
from intake.report.api import ERRORS, api_error, busy_answer
from intake.report.forms import ReportForm, payload_from_form
from intake.wording import status_name


@bp.get("/")
def root() -> Response:
    lang = i18n.remembered_language() or i18n.best_language()
    return redirect(url_for("report.form", lang=lang))  # type: ignore[return-value]


def _new_form(**kwargs: Any) -> ReportForm:
    cfg = config()
    return ReportForm(
        languages=[(lang, i18n.language_name(lang)) for lang in cfg.languages],
        max_text=cfg.limits.max_text_chars,
        **kwargs,
    )


@bp.get("/<lang>/")
def form() -> str:
    report_form = _new_form()
    report_form.report_id.data = os.urandom(16).hex()
    return _render_form(report_form)


def _render_form(report_form: ReportForm, error: str | None = None) -> str:
    fingerprints = [crypto.fingerprint(key.key_id) for key in config().recipients]
    return render_template(
        "report/form.html", form=report_form, fingerprints=fingerprints, error=error
    )


@bp.post("/<lang>/")
def submit_form() -> Response | tuple[str, int] | str:
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
            get_db(), config(), payload=payload_from_form(report_form, lang),
            language=lang, report_id=report_id, gate=get_gate(),
        )
    except capacity.Busy as exc:
        # Nothing was sealed or stored; the form comes back with all it held and the same
        # report id, so that sending it again cannot file it twice.
        page = _render_form(report_form, error=str(_l(
            "Too many people are sending reports right now, and yours has not been sent "
            "yet. Everything you wrote is still here: wait a minute, then send it again."
        )))
        return Response(page, 503, {"Retry-After": str(exc.retry_after)})
    except reports.Rejected as exc:
        if exc.code in ("replayed_envelope", "report_id_conflict") and report_id:
            return render_template("report/already.html"), 409
        raise
    return render_template(
        "report/receipt.html", code=receipts.display(receipt.receipt_code), sealed_by_server=True
    )


@bp.route("/<lang>/status", methods=["GET", "POST"])
def status() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        return render_template("report/status.html", result=None, typed="")
    typed = request.form.get("code", "")[:64]
    try:
        view = reports.check_status(get_db(), config(), typed, client_address=client_address(),
                                    gate=get_gate())
    except throttle.Throttled as exc:
        # The code was not checked, right or wrong (intake/reports.check_status says why);
        # it stays in the box for when the wait is over.
        minutes = -(-exc.retry_after // 60)
        notice = ngettext(
            "Too many wrong codes have been tried. Wait %(num)d minute, then try again.",
            "Too many wrong codes have been tried. Wait %(num)d minutes, then try again.",
            minutes,
        )
        page = render_template("report/status.html", result=None, typed=typed, notice=notice)
        return Response(page, 429, {"Retry-After": str(exc.retry_after)})
    except capacity.Busy as exc:
        page = render_template("report/status.html", result=None, typed=typed,
                               notice=str(ERRORS["busy"]))
        return Response(page, 503, {"Retry-After": str(exc.retry_after)})
    if view is None:
        return render_template("report/status.html", result=None, typed=typed, not_found=True), 404
    # One timeline of status changes and messages from the organisation, oldest first.
    timeline = sorted(
        [(e.at, 0, {"when": _when(e.at), "status": status_name(e.status)}) for e in view.events]
        + [(m.at, 1, {"when": _when(m.at), "message": m.body})
           for m in cases.messages(get_db(), view.report_id)],
        key=lambda item: (item[0], item[1]),
    )
    current = view.events[-1].status if view.events else view.status
    return render_template(
        "report/status.html", typed="",
        result={"status": status_name(current), "events": [item for _, _, item in timeline]},
    )


def _when(moment: datetime) -> str:
    # Date and hour:minute in the instance's time zone; times are stored to the minute.
    return f"{format_date(moment, 'long')}, {format_time(moment, 'short')}"


@bp.get("/<lang>/about")
def about() -> str:
    return render_template("report/about.html")


@bp.get("/<lang>/focal")
def focal_page() -> str:
    """Enrolment and queue export for a focal point's shared tablet (not linked publicly)."""
    return render_template("report/focal.html")


@bp.get("/<lang>/offline")
def offline_page() -> str:
    """Shown by the service worker when a page needs the network and there is none."""
    return render_template("report/offline.html")


@bp.get("/.well-known/security.txt")
def security_txt() -> Response:
    """Whom to tell about a vulnerability in this deployment, if the administrator said."""
    contact = config().security_contact
    if contact is None:
        abort(404)
    return Response(disclosure.security_txt(contact, config().languages), 200,
                    {"Content-Type": "text/plain; charset=utf-8"})


@bp.get("/n")
def neutral() -> Response:
    """Where quick exit goes: a page that names neither the organisation nor the subject.
    It forgets the language picked, for a browser without JavaScript (page.js does it
    otherwise, offline too)."""
    response = make_response(render_template("neutral.html"))
    i18n.forget_picked(response)
    return response


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
        return render_template("report/status.html", result=None, typed=typed, notice=message), 400
    return render_template("report/error.html", message=message), 400


@bp.app_errorhandler(404)
def _no_such_page(_exc: Exception) -> tuple[str, int]:
    """An address with no page, said in the language its path names (or the browser's)."""
    first = request.path.split("/")[1]
    if "lang" not in g and first in config().languages:
        g.lang = first
    message = str(_l(
        "This page does not exist. Check the address, or choose one of the pages below."
    ))
    return render_template("report/error.html", message=message), 404


@bp.app_errorhandler(capacity.Busy)
def _busy(exc: capacity.Busy) -> Response | tuple[Response, int]:
    """Any other expensive step that found no slot: 503, nothing done, try again later."""
    if request.path.startswith("/api/"):
        return busy_answer(exc)
    page = render_template("report/error.html", message=str(ERRORS["busy"]))
    return Response(page, 503, {"Retry-After": str(exc.retry_after)})


@bp.app_errorhandler(InternalServerError)
def _server_error(_exc: InternalServerError) -> tuple[Response, int] | tuple[str, int]:
    """A fault of ours, said in the page's language (Werkzeug's own page is English). The
    no-JavaScript form comes back with everything typed and the same report id, so that
    sending it again cannot file it twice; a queued report is retried by its device."""
    if request.path.startswith("/api/"):
        return api_error("server_error")
    if request.endpoint == "report.submit_form":
        # Whatever broke may break the form too: then the plain page below.
        with contextlib.suppress(Exception):
            return _render_form(_new_form(), error=str(_l(
                "Something went wrong on our side, and your report has not been sent. "
                "Everything you wrote is still here: please send it again in a few minutes."
            ))), 500
    return render_template("report/error.html", message=str(ERRORS["server_error"])), 500


@bp.app_errorhandler(413)
def _too_large(_exc: Exception) -> tuple[Response, int] | tuple[str, int]:
    if request.path.startswith("/api/"):
        return api_error("too_large", 413)
    return render_template("report/error.html", message=str(ERRORS["too_large"])), 413
