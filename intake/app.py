"""The application factory: wires config, store, languages and security policy."""

from __future__ import annotations

from flask import Flask, current_app, g, request

from intake import capacity, cases, i18n, reports, retention, security, store, throttle, uploads
from intake.config import Config

GATE = "intake.gate"


def create_app(config: Config) -> Flask:
    """Build the app for one instance. Checks the database before serving anything."""
    app = Flask(__name__)
    app.config.update(
        INTAKE=config,
        SECRET_KEY=config.session_key,
        # The largest legitimate body is the JSON around an envelope; refuse more before
        # reading it, so a flood of big bodies cannot exhaust memory.
        MAX_CONTENT_LENGTH=config.limits.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=config.limits.max_request_bytes,
    )
    # One gate for the process: every argon2id hash and server-side seal takes a slot.
    slots = config.capacity.slots
    app.extensions[GATE] = capacity.Gate(
        slots, waiting=slots, wait_seconds=config.capacity.wait_seconds
    )
    csrf = security.init_app(app, secure_cookies=config.secure_cookies)
    i18n.init_app(app)
    _check_store(config)

    from intake.casework import bp as casework_bp
    from intake.report import bp as report_bp
    from intake.report.api import enrol_api, put_chunk, start_upload, submit_api

    app.register_blueprint(report_bp)
    app.register_blueprint(casework_bp)
    # The submission API takes no CSRF token, on purpose: it accepts only application/json
    # (which a cross-site page cannot send without a CORS preflight we never grant), it
    # carries no ambient authority (anyone may file a report), and a report queued offline
    # must still be accepted after the session cookie that a token would need is gone.
    csrf.exempt(submit_api)
    # Enrolment is a one-time code exchange from the tablet's script: the code itself is
    # the proof, and the JSON-only rule above applies here too.
    csrf.exempt(enrol_api)
    # Uploads of attachments (Formats 14): the same reasons as the submission API. A chunk
    # is application/octet-stream, which needs a preflight too, and carries the upload's
    # own random token in a header.
    csrf.exempt(start_upload)
    csrf.exempt(put_chunk)
    app.teardown_appcontext(_close_db)
    return app


def get_db() -> store.Connection:
    """The request's connection, opened on first use and closed at teardown."""
    if "db" not in g:
        cfg: Config = current_app.config["INTAKE"]
        g.db = store.connect(cfg.db_path, cfg.db_key)
    conn: store.Connection = g.db
    return conn


def get_gate() -> capacity.Gate:
    """The process's gate for expensive work (intake/capacity.py)."""
    gate: capacity.Gate = current_app.extensions[GATE]
    return gate


def client_address() -> str | None:
    """The address that tells this client apart for throttling, or None when the instance
    does not tell clients apart (a Tor onion service). Passed on, never logged or stored:
    intake/throttle.py keeps only a keyed hash of it that is forgotten within a day."""
    cfg: Config = current_app.config["INTAKE"]
    if not cfg.throttle.per_client:
        return None
    return throttle.client_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), cfg.trusted_proxy
    )


def _close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def _check_store(config: Config) -> None:
    conn = store.open_ready(config.db_path, config.db_key, config.receipt_hash)
    try:
        # Service levels may have changed in config.toml since the last start.
        cases.refresh_due(conn, config.service_levels)
        # Uploads left incomplete while the server was down are not kept for ever.
        uploads.purge(conn, config, now=reports.utcnow())
        # Closed cases past their time go now, not only at the next daily `intake purge`:
        # a server that was down when the timer ran must not serve them.
        retention.purge(conn, config, now=reports.utcnow())
    finally:
        conn.close()
