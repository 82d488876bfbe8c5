"""Public side: report form, submission API, status, information and offline support.

Routes are thin: parse, call `intake.reports`, render. The language is the first part of
every page's path (see intake.i18n). Pages live in `pages`, JSON endpoints in `api`,
the service worker's files in `offline`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from intake import i18n
from intake.config import Config
from intake.report.forms import CHOICE_FIELDS, CONSENT_FIELDS, TEXT_FIELDS

bp = Blueprint("report", __name__)


def config() -> Config:
    cfg: Config = current_app.config["INTAKE"]
    return cfg


i18n.language_in_path(bp)


@bp.after_request
def _remember_language(response: Response) -> Response:
    if request.method == "GET":
        i18n.remember_picked(response)
    return response


def is_shell() -> bool:
    """A page fetched by the service worker to keep offline: no CSRF token, no per-visit id."""
    return request.method == "GET" and request.args.get("shell") == "1"


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    cfg = config()
    return {
        "config": cfg, "languages": cfg.languages, "lang": i18n.current_language(),
        "page_data": page_data, "shell": is_shell(),
    }


def page_data() -> str:
    """Data the browser code needs, as JSON for a non-executed <script> data block."""
    from intake.report.offline import static_version

    cfg = config()
    lang = i18n.current_language()
    return json.dumps(
        {
            "keys": [key.text for key in cfg.recipients],
            "receiptKey": cfg.receipt_public_key.text,
            "language": lang,
            "maxText": cfg.limits.max_text_chars,
            "maxAttachmentBytes": cfg.limits.max_attachment_bytes,
            "maxAttachments": cfg.limits.max_attachments,
            "submitUrl": url_for("report.submit_api"),
            "enrolUrl": url_for("report.enrol_api"),
            "swUrl": url_for("report.service_worker", v=static_version()),
            "exitUrl": url_for("report.neutral"),
            "offlineUrl": url_for("report.offline_page", lang=lang),
            "idleMinutes": cfg.focal_idle_minutes,
            "fields": {"text": TEXT_FIELDS, "choice": CHOICE_FIELDS, "consent": CONSENT_FIELDS},
            "strings": i18n.js_strings(),
        },
        ensure_ascii=True,
    ).replace("</", "<\\/")


from intake.report import api, media, offline, pages  # noqa: E402,F401  (routes register)
