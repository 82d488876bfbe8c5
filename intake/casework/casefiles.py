"""Case pages for officers: the list, one case, and the changes an officer makes to it.

The server never sees a report's content or an officer's notes: it hands out envelopes and
takes notes as envelopes sealed in the officer's browser (static/js/console.js).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, jsonify, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from intake import accounts, cases, crypto, i18n, store, triage
from intake.app import get_db
from intake.casework import access, bp, config, small_id
from intake.casework.access import roles
from intake.casework.labels import case_page_data


def _report_id(report_id: str) -> str:
    if len(report_id) != 32 or any(ch not in "0123456789abcdef" for ch in report_id):
        abort(404)
    return report_id


@bp.get("/cases", endpoint="cases")
@roles("officer")
def cases_list() -> str:
    args = request.args
    try:
        page = int(args.get("page", "1"))
    except ValueError:
        page = 1
    query = cases.CaseQuery(
        status=args.get("status", ""), channel=args.get("channel", ""),
        language=args.get("language", "")[:8], assignee=args.get("assignee", "")[:12],
        priority=args.get("priority", ""), overdue=args.get("overdue") == "1",
        ref=args.get("ref", "")[:40], page=page,
    )
    now = access.now()
    found = cases.list_cases(get_db(), query, now=now, page_size=config().console.page_size)
    return render_template(
        "console/cases.html", found=found, query=query, now=now,
        officers=accounts.officers(get_db()),
        filters={k: v for k, v in args.items() if k != "page"},
    )


@bp.get("/cases/<report_id>")
@roles("officer")
def case(report_id: str) -> str:
    report_id = _report_id(report_id)
    conn = get_db()
    try:
        found = cases.get_case(conn, report_id)
    except cases.CaseNotFound:
        abort(404)
    cases.mark_opened(conn, config(), report_id=report_id, actor=access.user().id,
                      now=access.now())
    return render_template(
        "console/case.html", case=found, now=access.now(), triage=triage.get(conn, report_id),
        referrals=cases.referrals(conn, report_id), officers=accounts.officers(conn),
        choices=triage.CHOICES, multi=triage.MULTI, countries=_countries(),
        statuses=cases.STATUSES, outcomes=cases.OUTCOMES, priorities=cases.PRIORITIES,
        console_data=case_page_data(found, config()),
        error=request.args.get("error"),
    )


def _countries() -> list[tuple[str, str]]:
    lang = i18n.current_language()
    return sorted(((code, triage.country_name(code, lang)) for code in triage.countries()),
                  key=lambda pair: pair[1])


@bp.get("/cases/<report_id>/envelope")
@roles("officer")
def envelope(report_id: str) -> Response:
    """The report's ciphertext for the officer's browser; every fetch is recorded."""
    try:
        data = cases.open_envelope(get_db(), config(), report_id=_report_id(report_id),
                                   actor=access.user().id, now=access.now())
    except cases.CaseNotFound:
        abort(404)
    return Response(data, 200, {"Content-Type": "application/octet-stream"})


# At most nine digits, as every row id from a form (small_id): SQLite binds 64-bit integers
# only, and a longer number would be a 500 instead of a 404.
@bp.get("/cases/<report_id>/notes/<int(max=999999999):note_id>/envelope")
@roles("officer")
def note(report_id: str, note_id: int) -> Response:
    try:
        data = cases.note_envelope(get_db(), _report_id(report_id), note_id)
    except cases.CaseNotFound:
        abort(404)
    return Response(data, 200, {"Content-Type": "application/octet-stream"})


def _json() -> dict[str, Any]:
    try:
        body = request.get_json(force=False, silent=False)
    except BadRequest:
        body = None
    if not isinstance(body, dict):
        abort(400)
    return body


@bp.post("/cases/<report_id>/consent.json")
@roles("officer")
def consent(report_id: str) -> Response | tuple[Response, int]:
    body = _json()
    answers = [body.get(name) for name in ("refer", "share", "statistics")]
    if not all(isinstance(a, bool) for a in answers):
        return jsonify(error="bad_request"), 400
    try:
        cases.record_consent(get_db(), config(), report_id=_report_id(report_id),
                             refer=bool(answers[0]), share=bool(answers[1]),
                             statistics=bool(answers[2]), actor=access.user().id,
                             now=access.now())
    except cases.CaseNotFound:
        abort(404)
    return jsonify(ok=True)


@bp.post("/cases/<report_id>/notes.json")
@roles("officer")
def add_note(report_id: str) -> Response | tuple[Response, int]:
    body = _json()
    try:
        data = crypto.b64decode(str(body.get("envelope", "")))
        note_id = cases.add_note(get_db(), config(), report_id=_report_id(report_id),
                                 envelope=data, actor=access.user().id, now=access.now())
    except (ValueError, cases.CaseInvalid):
        return jsonify(error="bad_note"), 400
    except cases.CaseNotFound:
        abort(404)
    return jsonify(id=note_id), 201


def _back(report_id: str, error: str | None = None, anchor: str = "") -> Response:
    target = url_for("casework.case", report_id=report_id, error=error)
    return Response(status=303, headers={"Location": target + anchor})


@bp.post("/cases/<report_id>/triage")
@roles("officer")
def save_triage(report_id: str) -> Response:
    report_id = _report_id(report_id)
    form = request.form
    values: dict[str, object] = {name: form.get(name, "") for name in triage.CHOICES}
    values.update({name: form.getlist(name) for name in triage.MULTI})
    values["nationalities"] = form.getlist("nationalities")
    values["place"] = form.get("place", "")[:500]
    assignee = form.get("assignee", "")
    try:
        # One transaction: a refused assignment must not leave the triage half saved.
        with store.transaction(get_db()) as conn:
            triage.save(conn, config(), report_id=report_id, values=values,
                        actor=access.user().id, now=access.now())
            cases.set_assignment(
                conn, config(), report_id=report_id, assignee=small_id(assignee),
                priority=form.get("priority", "normal"), actor=access.user().id,
                now=access.now(),
            )
    except (triage.TriageInvalid, cases.CaseInvalid):
        return _back(report_id, "triage", "#triage")
    except cases.CaseNotFound:
        abort(404)
    return _back(report_id, anchor="#triage")


@bp.post("/cases/<report_id>/status")
@roles("officer")
def set_status(report_id: str) -> Response:
    report_id = _report_id(report_id)
    form = request.form
    status = form.get("status", "")
    try:
        cases.set_status(
            get_db(), config(), report_id=report_id, status=status,
            outcome=(form.get("outcome") or None) if status == "closed" else None,
            message=form.get("message", "")[:cases.MAX_MESSAGE_CHARS * 2],
            actor=access.user().id, now=access.now(),
        )
    except cases.CaseInvalid as exc:
        return _back(report_id, str(exc), "#status")
    except cases.CaseNotFound:
        abort(404)
    return _back(report_id, anchor="#status")


@bp.post("/cases/<report_id>/referrals")
@roles("officer")
def add_referral(report_id: str) -> Response:
    report_id = _report_id(report_id)
    try:
        cases.add_referral(
            get_db(), config(), report_id=report_id,
            service=request.form.get("service", "")[:500],
            referred_on=request.form.get("referred_on", "")[:10],
            actor=access.user().id, now=access.now(),
        )
    except cases.ConsentMissing:
        return _back(report_id, "consent_refer", "#referrals")
    except cases.CaseInvalid:
        return _back(report_id, "referral", "#referrals")
    except cases.CaseNotFound:
        abort(404)
    return _back(report_id, anchor="#referrals")


@bp.post("/cases/<report_id>/export")
@roles("officer", fresh=True)
def export(report_id: str) -> Response:
    """The sealed report as a file for investigators, if the complainant agreed."""
    report_id = _report_id(report_id)
    try:
        data = cases.export_for_investigators(get_db(), config(), report_id=report_id,
                                              actor=access.user().id, now=access.now())
    except cases.ConsentMissing:
        return _back(report_id, "consent_share", "#share")
    except cases.CaseNotFound:
        abort(404)
    body = json.dumps({"format": "intake-export", "version": 1, "report_id": report_id,
                       "envelope": crypto.b64encode(data)})
    return Response(body, 200, {
        "Content-Type": "application/json",
        "Content-Disposition": f'attachment; filename="case-{report_id[:8]}.json"',
    })
