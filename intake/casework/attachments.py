"""Attachments on a case page: their ciphertext for the officer's browser, which opens,
shows, plays and saves them (static/js/attachments.js). The server never decrypts them."""

from __future__ import annotations

import json

from flask import Response, abort, url_for
from flask_babel import lazy_gettext as _l

from intake import cases, uploads
from intake.app import get_db
from intake.casework import access, bp, config
from intake.casework.access import roles
from intake.casework.casefiles import _report_id

_STRINGS = {
    "opening": _l("Opening on this computer…"),
    "damaged": _l("This attachment is incomplete or damaged and cannot be opened."),
    "save": _l("Save to this computer"),
    "voice": _l("Voice note"),
    "photo": _l("Photo"),
    "file": _l("File"),
    "size_kb": _l("%(num)s KB"),
    "size_mb": _l("%(num)s MB"),
    "network": _l("The attachment could not be fetched. Check the connection and open the "
                  "report again."),
}


@bp.get("/cases/<report_id>/attachments/<attachment_id>")
@roles("officer")
def attachment(report_id: str, attachment_id: str) -> Response:
    """One attachment's chunks, one after the other, as stored; every fetch is recorded."""
    report_id = _report_id(report_id)
    if len(attachment_id) != 32 or any(ch not in "0123456789abcdef" for ch in attachment_id):
        abort(404)
    try:
        data = uploads.fetch_for_officer(get_db(), config(), report_id=report_id,
                                         attachment_id=attachment_id,
                                         actor=access.user().id, now=access.now())
    except cases.CaseNotFound:
        abort(404)
    return Response(data, 200, {"Content-Type": "application/octet-stream"})


@bp.app_template_global()
def attachments_data(report_id: str) -> str:
    """JSON for attachments.js, in a non-executed <script> data block of the case page."""
    base = url_for("casework.attachment", report_id=report_id, attachment_id="0" * 32)
    return json.dumps(
        {"url": base[: -32], "strings": {key: str(value) for key, value in _STRINGS.items()}},
        ensure_ascii=True,
    ).replace("</", "<\\/")
