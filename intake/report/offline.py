"""What the service worker needs: its script at the root scope and the list of files to keep.

The version is a hash of every static file and compiled catalogue, so a changed file makes
a new service worker and a new cache; nothing is versioned by hand.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Response, jsonify, send_from_directory, url_for

from intake.i18n import TRANSLATIONS_DIR
from intake.report import bp, config

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SHELL_PAGES = ("report.form", "report.status", "report.about", "report.focal_page",
               "report.offline_page", "report.media_strings")


@cache
def _static_files() -> tuple[str, ...]:
    return tuple(sorted(
        p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()
    ))


@cache
def _files_digest() -> bytes:
    digest = hashlib.sha256()
    for name in _static_files():
        digest.update(name.encode() + b"\0" + (STATIC_DIR / name).read_bytes())
    for mo in sorted(TRANSLATIONS_DIR.rglob("*.mo")):
        digest.update(mo.read_bytes())
    return digest.digest()


def static_version() -> str:
    """Changes with any static file, catalogue, or setting that stored pages carry.

    Stored pages hold the organisation's keys and texts: after a key rotation, an old page
    must not go on sealing to a withdrawn key, so the configuration is part of the version.
    """
    cfg = config()
    public = repr((
        [key.text for key in cfg.recipients], cfg.receipt_public_key.text, cfg.organisation,
        cfg.languages, cfg.contact, cfg.referrals, cfg.service_levels, cfg.limits,
        cfg.focal_idle_minutes, cfg.timezone,
    ))
    return hashlib.sha256(_files_digest() + public.encode()).hexdigest()[:16]


@bp.get("/sw.js")
def service_worker() -> Response:
    response = send_from_directory(STATIC_DIR / "js", "sw.js", max_age=0)
    # Served from the root so that its scope covers every page of every language.
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/offline.json")
def offline_manifest() -> Response:
    """Pages (fetched by the worker with ?shell=1) and assets to keep for offline use."""
    pages = [
        url_for(endpoint, lang=lang) for lang in config().languages for endpoint in SHELL_PAGES
    ]
    assets = [url_for("static", filename=name) for name in _static_files() if name != "js/sw.js"]
    return jsonify(version=static_version(), pages=pages, assets=assets)

