"""Who may do what: the session cookie, role checks, login, set-up, re-authentication."""

from __future__ import annotations

import io
import string
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast

import segno
from flask import Response, abort, g, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from markupsafe import Markup

from intake import accounts, capacity, crypto, sessions
from intake.app import client_address, get_db, get_gate
from intake.casework import bp, config
from intake.reports import utcnow

COOKIE = "intake_console"
HOME = {"admin": "casework.users", "officer": "casework.cases", "analyst": "casework.figures"}
F = TypeVar("F", bound=Callable[..., Any])


def now() -> datetime:
    return utcnow()


def current() -> sessions.Session | None:
    """The request's officer session, looked up once."""
    if "console_session" not in g:
        token = request.cookies.get(COOKIE, "")
        g.console_session = sessions.resolve(get_db(), token, config().console, now=now())
    found: sessions.Session | None = g.console_session
    return found


def user() -> accounts.User:
    session = current()
    assert session is not None, "use inside a view guarded by roles()"
    return session.user


def _wants_json() -> bool:
    return request.path.endswith((".json", "/envelope")) or request.is_json


def roles(*allowed: str, fresh: bool = False) -> Callable[[F], F]:
    """Guard a view: a live session with one of `allowed` roles, and with `fresh`, a
    password and code given within the last few minutes (sensitive actions)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            session = current()
            if session is None:
                if _wants_json():
                    return jsonify(error="login_needed"), 401
                target = request.full_path if request.method == "GET" else None
                return redirect(url_for("casework.login", next=target))
            if session.user.role not in allowed:
                abort(403)
            if fresh and not session.fresh(config().console, now()):
                if _wants_json():
                    return jsonify(error="reauth_needed"), 401
                back = request.full_path if request.method == "GET" else request.referrer
                return redirect(url_for("casework.reauth", next=_safe_next(back)))
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


# What a console path and its query string are made of (RFC 3986 pchar and "/" and "?").
# Nothing else may be in `next`: browsers drop tabs and newlines from a URL before reading
# it, so "/\t/evil.example" would take the officer to //evil.example, another site; they
# read "\\" as "/"; and a newline cannot go in a Location header at all.
_PATH_CHARS = frozenset(string.ascii_letters + string.digits + "/?-._~%!$&'()*+,;=:@")


def _safe_next(target: str | None) -> str | None:
    """Only a path on this instance's console, never another site."""
    if not target:
        return None
    path = target.split("#", 1)[0]
    marker = "/console/"
    if (not path.startswith("/") or path.startswith("//") or not set(path) <= _PATH_CHARS
            or marker not in path):
        return None
    return path




@bp.route("/", methods=["GET"])
@roles("admin", "officer", "analyst")
def home() -> Response:
    return redirect(url_for(HOME[user().role]))  # type: ignore[return-value]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        return render_template("console/login.html", next=_safe_next(request.args.get("next")))
    form = request.form
    try:
        found = accounts.authenticate(
            get_db(), config().audit_key, username=form.get("username", "")[:64],
            password=form.get("password", "")[:accounts.MAX_PASSWORD_CHARS],
            totp_code=form.get("code", "")[:16], params=config().password_hash, now=now(),
            client_address=client_address(), gate=get_gate(),
        )
    except capacity.Busy as busy:
        return _busy_page("console/login.html", busy, username=form.get("username", "")[:64],
                          next=_safe_next(form.get("next")))
    except accounts.LoginRefused as refused:
        status = 429 if refused.retry_after else 401
        message = (
            _wait(refused.retry_after) if refused.retry_after else
            _l("The user name, password or code is wrong. Check them and try again.")
        )
        page = render_template("console/login.html", error=message, username=form.get(
            "username", "")[:64], next=_safe_next(form.get("next")))
        if refused.retry_after:
            return Response(page, status, {"Retry-After": str(refused.retry_after)})
        return page, status
    token = sessions.start(get_db(), found.id, now=now())
    response = redirect(_safe_next(form.get("next")) or url_for(HOME[found.role]))
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="Strict", secure=config().secure_cookies,
        path="/",
    )
    return response  # type: ignore[return-value]


@bp.post("/logout")
@roles("admin", "officer", "analyst")
def logout() -> Response:
    session = current()
    assert session is not None
    _record(session.user.id, "logout")
    sessions.end(get_db(), session.token_hash)
    return _logged_out()


@bp.post("/logout-everywhere")
@roles("admin", "officer", "analyst")
def logout_everywhere() -> Response:
    me = user()
    _record(me.id, "logout_everywhere")
    sessions.end_all(get_db(), me.id)
    return _logged_out()


def _logged_out() -> Response:
    response = redirect(url_for("casework.login", out=1))
    response.delete_cookie(COOKIE, path="/", samesite="Strict", secure=config().secure_cookies)
    return response  # type: ignore[return-value]


def _record(actor: int, action: str) -> None:
    from intake import audit, store

    with store.transaction(get_db()) as conn:
        audit.record(conn, config().audit_key, actor=actor, action=action, now=now())


def _busy_page(template: str, busy: capacity.Busy, **context: Any) -> Response:
    """The same page again with a 503: the server had no slot for the hash just now."""
    from intake.report.api import ERRORS

    page = render_template(template, error=ERRORS["busy"], **context)
    return Response(page, 503, {"Retry-After": str(busy.retry_after)})


def _wait(seconds: int) -> str:
    return str(ngettext("Too many tries. Wait %(num)d second, then try again.",
                        "Too many tries. Wait %(num)d seconds, then try again.", seconds))


@bp.route("/reauth", methods=["GET", "POST"])
@roles("admin", "officer", "analyst")
def reauth() -> Response | tuple[str, int] | str:
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("console/reauth.html", next=target)
    session = current()
    assert session is not None
    try:
        accounts.authenticate(
            get_db(), config().audit_key, username=session.user.username,
            password=request.form.get("password", "")[:accounts.MAX_PASSWORD_CHARS],
            totp_code=request.form.get("code", "")[:16], params=config().password_hash,
            now=now(), action="reauth", client_address=client_address(), gate=get_gate(),
        )
    except capacity.Busy as busy:
        return _busy_page("console/reauth.html", busy, next=target)
    except accounts.LoginRefused as refused:
        message = (
            _wait(refused.retry_after) if refused.retry_after
            else _l("The password or code is wrong. Try again.")
        )
        return render_template("console/reauth.html", next=target, error=message), 401
    sessions.reauthenticated(get_db(), session.token_hash, now=now())
    return redirect(target or url_for("casework.home"))  # type: ignore[return-value]


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Response | tuple[str, int] | str:
    """A new account: set-up code and password, then a first code from the app."""
    if request.method == "GET":
        return render_template("console/setup.html", step="password")
    form = request.form
    username, code = form.get("username", "")[:64], form.get("setup_code", "")[:64]
    if form.get("step") == "code":
        try:
            accounts.finish_setup(get_db(), config().audit_key, username=username, code=code,
                                  totp_code=form.get("code", "")[:16], now=now())
        except accounts.SetupInvalid:
            secret = _pending_secret(username)
            if secret is None:
                return render_template("console/setup.html", step="password",
                                       error=_l("This set-up code is not valid.")), 400
            return render_template(
                "console/setup.html", step="code", username=username, setup_code=code,
                secret=_secret_text(secret), qr=_qr(username, secret),
                error=_l("This code is wrong. Type the code the app shows now."),
            ), 400
        return render_template("console/setup_done.html")
    if form.get("password", "") != form.get("password_again", ""):
        return render_template("console/setup.html", step="password", username=username,
                               setup_code=code,
                               error=_l("The two passwords are not the same.")), 400
    try:
        secret = accounts.begin_setup(
            get_db(), username=username, code=code,
            password=form.get("password", "")[:accounts.MAX_PASSWORD_CHARS],
            params=config().password_hash, now=now(), gate=get_gate(),
        )
    except capacity.Busy as busy:
        return _busy_page("console/setup.html", busy, step="password", username=username,
                          setup_code=code)
    except accounts.WeakPassword:
        return render_template(
            "console/setup.html", step="password", username=username, setup_code=code,
            error=ngettext("Choose a password of at least %(num)d character.",
                           "Choose a password of at least %(num)d characters.",
                           accounts.MIN_PASSWORD_CHARS)), 400
    except accounts.SetupInvalid:
        return render_template(
            "console/setup.html", step="password", username=username,
            error=_l("This user name and set-up code do not match an account waiting to be "
                     "set up, or the code has expired. Ask your administrator for a new one.")), 400
    return render_template(
        "console/setup.html", step="code", username=username, setup_code=code,
        secret=_secret_text(secret), qr=_qr(username, secret),
    )


def _pending_secret(username: str) -> bytes | None:
    row = get_db().execute(
        "SELECT totp_secret FROM users WHERE username = ? AND setup_hash IS NOT NULL",
        (username.strip().lower(),),
    ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


def _secret_text(secret: bytes) -> str:
    import base64

    text = base64.b32encode(secret).decode("ascii").rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def _qr(username: str, secret: bytes) -> Markup:
    """The enrolment QR code as inline SVG, drawn here: no third party sees the secret."""
    uri = crypto.totp_uri(secret, account=username, issuer=config().organisation)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=4, xmldecl=False,
                                    svgns=True, title="", desc="")
    return Markup(out.getvalue().decode("utf-8"))  # noqa: S704  (our own SVG, no input)


@bp.get("/account")
@roles("admin", "officer", "analyst")
def account() -> str:
    return render_template("console/account.html",
                           session_count=sessions.count(get_db(), user().id))
