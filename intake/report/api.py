"""JSON endpoints: report submission (Formats 6) and focal-point enrolment (Formats 8).

JSON in, JSON out; a clear 4xx with a translated message for every refusal, and nothing
stored unless the answer is 201.
"""

from __future__ import annotations

import json

from flask import Response, jsonify, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from intake import capacity, crypto, focal, reports, uploads
from intake.app import get_db, get_gate
from intake.report import bp, config

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
    "focal_point_invalid": _l(
        "This device is not recognised as a focal point. Ask your organisation to enrol it again."
    ),
    "invalid_enrolment_code": _l(
        "This enrolment code is not valid, or was already used. "
        "Ask your organisation for a new one."
    ),
    # Attachments (Formats 14). A device resumes by itself after the last three.
    "attachments_missing": _l(
        "The photos, voice notes or files of this report did not arrive. Send it again."
    ),
    "bad_upload": _l("A photo, voice note or file was damaged on the way. Send it again."),
    "chunk_conflict": _l("A photo, voice note or file was damaged on the way. Send it again."),
    "upload_unknown": _l("The sending stopped for too long. It starts again."),
    "chunk_out_of_order": _l("The sending goes on from where it stopped."),
    # Not a refusal: a device that queued the report sends it again by itself.
    "busy": _l("Too many people are using this service right now. Wait a minute, then try again."),
    # A fault of ours (a 500). Queued reports are sent again by themselves, like "busy".
    "server_error": _l("Something went wrong on our side. Please try again in a few minutes."),
}
STATUS = {
    "too_large": 413, "replayed_envelope": 409, "report_id_conflict": 409,
    "focal_point_invalid": 403, "invalid_enrolment_code": 403, "bad_request": 400,
    "bad_upload": 400, "upload_unknown": 404, "chunk_conflict": 409, "chunk_out_of_order": 409,
    "busy": 503, "server_error": 500,
}


def api_error(code: str, status: int | None = None) -> tuple[Response, int]:
    return jsonify(error=code, message=str(ERRORS[code])), status or STATUS.get(code, 422)


def busy_answer(exc: capacity.Busy) -> tuple[Response, int]:
    """503 with Retry-After: nothing was stored, and the same body may be sent again."""
    response, status = api_error("busy")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response, status


def _json_body() -> object:
    """The request's JSON, or raise Rejected: only application/json, any hostile shape."""
    if request.mimetype != "application/json":
        # A cross-site form cannot send this type without a CORS preflight we never grant.
        raise reports.Rejected("bad_request")
    try:
        return json.loads(request.get_data(cache=False))
    except RequestEntityTooLarge:
        raise reports.Rejected("too_large") from None
    except (ValueError, RecursionError):
        # RecursionError: a body of 100,000 "[" is valid UTF-8 and hostile; it must get
        # a 400 like any other malformed body, not a 500.
        raise reports.Rejected("bad_request") from None


@bp.post("/api/reports")
def submit_api() -> tuple[Response, int]:
    """Envelopes sealed on the device, online or from an offline queue."""
    if get_gate().saturated():
        # Refused before parsing, opening a sealed receipt or checking a signature: under
        # a flood, the cores go to the reports that can be stored.
        return busy_answer(capacity.Busy())
    try:
        submission = reports.parse_submission(_json_body())
        accepted = reports.accept(get_db(), config(), submission, gate=get_gate())
    except reports.Rejected as exc:
        return api_error(exc.code)
    except capacity.Busy as exc:
        return busy_answer(exc)
    return jsonify(report_id=accepted.report_id), 201


def _progress(progress: uploads.Progress) -> tuple[Response, int]:
    # 201 only when every chunk is stored: then, and only then, the report is acknowledged.
    if progress.complete:
        return jsonify(report_id=progress.report_id), 201
    return jsonify(report_id=progress.report_id, received=list(progress.received)), 202


@bp.post("/api/uploads")
def start_upload() -> tuple[Response, int]:
    """Open an upload of a report with attachments, or learn where it stands."""
    try:
        upload = uploads.parse_upload(_json_body(), config().limits)
        progress = uploads.start(get_db(), config(), upload, now=reports.utcnow,
                                 gate=get_gate())
    except reports.Rejected as exc:
        return api_error(exc.code)
    except capacity.Busy as exc:
        return busy_answer(exc)
    return _progress(progress)


@bp.put("/api/uploads/<report_id>/<attachment_id>/<index>")
def put_chunk(report_id: str, attachment_id: str, index: str) -> tuple[Response, int]:
    """One encrypted chunk, as raw bytes: base64 in JSON would cost a third more on 2G."""
    try:
        if request.mimetype != "application/octet-stream":
            # As for JSON: a cross-site page cannot send this type without a preflight.
            raise reports.Rejected("bad_request")
        address = uploads.parse_chunk(report_id, attachment_id, index,
                                      request.headers.get("X-Upload-Token"))
        try:
            data = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raise reports.Rejected("too_large") from None
        progress = uploads.put_chunk(get_db(), config(), address, data, now=reports.utcnow)
    except uploads.ChunkOutOfOrder as exc:
        return jsonify(error=exc.code, message=str(ERRORS[exc.code]),
                       received=list(exc.received)), 409
    except reports.Rejected as exc:
        return api_error(exc.code)
    return _progress(progress)


@bp.post("/api/focal/enrol")
def enrol_api() -> tuple[Response, int]:
    try:
        body = _json_body()
    except reports.Rejected as exc:
        return api_error(exc.code)
    if not isinstance(body, dict):
        return api_error("bad_request")
    code, key_text = body.get("enrolment_code"), body.get("public_key")
    if not isinstance(code, str) or not isinstance(key_text, str):
        return api_error("bad_request")
    try:
        public_key = crypto.b64decode(key_text)
        point = focal.enrol(get_db(), code, public_key, now=reports.utcnow())
    except ValueError:
        return api_error("bad_request")
    except focal.EnrolmentInvalid:
        return api_error("invalid_enrolment_code")
    return jsonify(focal_point=point.id, name=point.name), 201
