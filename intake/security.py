"""Security policy in one place: response headers, cookies, CSRF and compression.

Each setting carries its reason. Pages are served by the instance alone: the CSP forbids
every other origin, inline script and inline style.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Flask, Request, Response, request
from flask_compress import Compress
from flask_wtf.csrf import CSRFProtect

_DIRECTIVES = {
    "default-src": "'none'",  # nothing loads unless listed below
    "script-src": "'self'",  # our own modules only: no inline script, no eval, no CDN
    "style-src": "'self'",  # our own stylesheet only: no inline style
    "img-src": "'self'",  # icons are ours
    "connect-src": "'self'",  # the page talks to this instance and nobody else
    "form-action": "'self'",  # a form can never post a report elsewhere
    "base-uri": "'none'",
    "frame-ancestors": "'none'",  # no one can frame the form to overlay it
    "manifest-src": "'self'",
    "worker-src": "'self'",
}


def _csp(**changes: str) -> str:
    directives = {**_DIRECTIVES, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CSP = _csp()

# Powerful browser features, each denied to every page (`()` lets no origin use it, not even
# ours): the pages need none of them, and a script injected into a page must not get them
# either. Only features Chromium recognises are listed, so no page logs a policy warning.
PERMISSIONS: dict[str, str] = {
    name: "()"
    for name in (
        "accelerometer", "browsing-topics", "camera", "display-capture",
        "geolocation", "gyroscope", "hid", "idle-detection", "magnetometer", "microphone",
        "midi", "payment", "serial", "usb", "xr-spatial-tracking",
    )
}

# Exceptions, page by page (Flask endpoint -> feature -> allowlist): a page may get a
# feature only for what its own script does there, and only from this origin (`(self)`).
PERMISSION_EXCEPTIONS: dict[str, dict[str, str]] = {
    # The report form records a voice note with the microphone. The no-JavaScript post
    # re-renders the same form.
    "report.form": {"microphone": "(self)"},
    "report.submit_form": {"microphone": "(self)"},
}

# Headers that only a document (a page the browser navigates to) or a worker acts on:
# browsers ignore them on a script, stylesheet or icon. Static files go without them,
# which saves about 310 bytes on each of the first visit's subresource requests, on a
# 2G budget of 40 KB. Static files are ours, never anything a visitor sent, and keep
# the CSP too, for an SVG opened on its own as a document.
DOCUMENT_ONLY = ("Permissions-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy")

# A year, as deploy/Caddyfile.public sends it. Not `includeSubDomains`: the instance may live
# under an organisation's domain whose other hosts it must not force onto HTTPS.
HSTS = "max-age=31536000"

HEADERS = {
    "Content-Security-Policy": CSP,
    # Leaving the site must not tell the next site where the person came from.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # The CSP's frame-ancestors, for the older browsers of cheap phones that know only this.
    "X-Frame-Options": "DENY",
    # No other site's window keeps a handle on ours, and no other site may embed our files.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# The few pages that need more than HEADERS give, each with its reason; every other page
# keeps the defaults (Permissions-Policy exceptions are in PERMISSION_EXCEPTIONS above).
# blob: URLs can only be made by script already running in the page (ours alone, under
# script-src 'self'), and media and images cannot run script.
PAGE_HEADERS: dict[str, dict[str, str]] = {
    # The report form plays a voice note back to the person from a blob: URL of bytes that
    # never leave the page unsealed. The no-JavaScript post re-renders the same form.
    "report.form": {"Content-Security-Policy": _csp(media_src="blob:")},
    "report.submit_form": {"Content-Security-Policy": _csp(media_src="blob:")},
    # A case page shows, plays and offers to save attachments decrypted in the officer's
    # browser: blob: URLs of bytes that exist only in that page's memory.
    "casework.case": {"Content-Security-Policy": _csp(img_src="'self' blob:", media_src="blob:")},
}


class MemoryOnlyRequest(Request):
    """A request whose uploaded files are parsed in memory, never into a temporary file.

    No page of intake posts a file: the report form's attachments are sealed in the
    browser and sent as ciphertext chunks (raw bodies, not multipart). But Werkzeug would
    spool any multipart file over 500 KB to disk if someone sent one (within the body cap,
    which an administrator may raise), so the server never writes what a client sends to
    a temporary file, whatever it is.
    """

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None,
                         content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()


def permissions_policy(endpoint: str | None) -> str:
    """The Permissions-Policy of one page: everything denied, but for its own exceptions."""
    features = {**PERMISSIONS, **PERMISSION_EXCEPTIONS.get(endpoint or "", {})}
    return ", ".join(f"{name}={allow}" for name, allow in sorted(features.items()))


def sends_hsts(*, secure_cookies: bool) -> bool:
    """HSTS on a request that came over TLS, and on every request of an instance that is
    served over HTTPS.

    Behind a TLS-terminating proxy (the deployment we document) the proxy talks plain HTTP
    to `intake serve`, so `request.is_secure` is false there. `secure_cookies = true` already
    says that the instance is reached over HTTPS only (its cookies are never sent over HTTP),
    so it is the switch for HSTS too: no second setting to forget. Browsers ignore the header
    on a response that did not come over HTTPS (RFC 6797, 8.1), so sending it is harmless
    when something reaches the instance over plain HTTP on its own network.
    """
    return request.is_secure or secure_cookies


def init_app(app: Flask, *, secure_cookies: bool) -> CSRFProtect:
    app.request_class = MemoryOnlyRequest
    app.config.update(
        # The session cookie exists only for the CSRF token of the no-JavaScript form.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_NAME="intake_session",
        # No time limit: a survivor may take an hour to write, and the token already dies
        # with the browser session. A stale token re-renders the form with all it held.
        WTF_CSRF_TIME_LIMIT=None,
        # Flask-WTF's extra check on HTTPS, that the Referer names this host, can never pass:
        # our pages send no referrer at all (Referrer-Policy below). Behind a TLS proxy that
        # the WSGI server trusts (gunicorn and Caddy in deploy/), it would refuse every form.
        # The token and the SameSite=Strict cookie that holds its session still stop
        # cross-site posts.
        WTF_CSRF_SSL_STRICT=False,
        # Compression: static files and GET pages only (see after_request below).
        COMPRESS_REGISTER=False,
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_MIN_SIZE=256,
        COMPRESS_MIMETYPES=[
            "text/html", "text/css", "application/javascript", "text/javascript",
            "application/json", "image/svg+xml", "application/manifest+json",
        ],
    )
    csrf = CSRFProtect(app)
    compress = Compress(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        page = PAGE_HEADERS.get(request.endpoint or "", {})
        static = request.endpoint == "static"
        for name, value in HEADERS.items():
            if not (static and name in DOCUMENT_ONLY):
                response.headers.setdefault(name, page.get(name, value))
        if not static:
            response.headers["Permissions-Policy"] = permissions_policy(request.endpoint)
        if sends_hsts(secure_cookies=secure_cookies):
            response.headers["Strict-Transport-Security"] = HSTS
        if not static:
            # Pages may carry a receipt code, a status or a CSRF token: keep them out of
            # every cache, including the back-forward cache of a shared phone.
            response.headers["Cache-Control"] = "no-store"
        if request.method == "GET":
            # Responses to POSTs are never compressed: they can echo what was typed next
            # to a secret (receipt code, CSRF token), which is what BREACH exploits.
            response = compress.after_request(response)
        return response

    return csrf


# The language a person picked with the language links, so that the site's bare address
# opens in it next time (intake.i18n). The least that does the job, on a phone that may be
# shared: a first-party cookie holding a language code and nothing else (thousands share
# it, so it tells no one apart; the server never logs or stores it), set only when the
# person uses the links, and only if it differs from what the browser asks for anyway.
# A cookie rather than localStorage: it works without JavaScript, lets `/` redirect at once
# with no extra page or script, and it expires; both show the same in the site's data.
LANGUAGE_COOKIE = "lang"  # a name that says nothing about the site or its subject
# Long enough to come back for news of a report (14 days by default), and no longer. The
# information page says "30 days".
LANGUAGE_COOKIE_DAYS = 30


def set_language_cookie(response: Response, lang: str, *, secure: bool) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE, lang, max_age=LANGUAGE_COOKIE_DAYS * 24 * 3600, path="/",
        # Sent when a link elsewhere leads here, never with another site's subrequests.
        samesite="Lax",
        secure=secure,
        # Readable by our script on purpose: it holds no secret, and quick exit must delete
        # it even offline, when the neutral page comes from the service worker and the
        # server cannot (static/js/page.js). Without JavaScript, the neutral page deletes it.
        httponly=False,
    )


def delete_language_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(LANGUAGE_COOKIE, path="/", samesite="Lax", secure=secure)
