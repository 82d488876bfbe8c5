"""The security headers, as one policy (intake/security.py), on every response: a crawl of
every route in the URL map, anonymous and logged in with each role, and the error pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException
from werkzeug.test import TestResponse

from intake import cases, create_app, reports, security, store
from intake import instance as instance_mod

from support import T0, csrf_token, seal_note
from test_console import Person

# Values for every kind of path parameter the URL map has. A new parameter must be added
# here, or the crawl fails (a route it cannot build is a route it does not check).
STATIC_FILE = "js/page.js"


@pytest.fixture
def conn(instance: instance_mod.Created, app: Flask) -> Iterator[store.Connection]:
    connection = store.connect(instance.config.db_path, instance.config.db_key)
    yield connection
    connection.close()


@pytest.fixture
def people(app: Flask, conn: store.Connection) -> dict[str, Person]:
    return {role: Person(app, conn, f"{role}1", role) for role in ("admin", "officer",
                                                                   "analyst")}


@pytest.fixture
def values(conn: store.Connection, instance: instance_mod.Created,
           people: dict[str, Person]) -> dict[str, Any]:
    config = instance.config
    report_id = reports.seal_on_server(conn, config, payload={"schema": 1, "what": "x"},
                                       language="en").report_id
    (officer,) = conn.execute("SELECT id FROM users WHERE username = 'officer1'").fetchone()
    note_id = cases.add_note(conn, config, report_id=report_id,
                             envelope=seal_note("n", config.recipients, report_id),
                             actor=officer, now=T0)
    return {"lang": "en", "report_id": report_id, "note_id": note_id,
            "filename": STATIC_FILE, "attachment_id": "ab" * 16, "index": "0"}


def check(response: TestResponse, what: str, *, endpoint: str | None,
          hsts: bool = False) -> None:
    """Every header of the policy, with the value the policy gives this page."""
    headers = response.headers
    page = security.PAGE_HEADERS.get(endpoint or "", {})
    csp = headers.get("Content-Security-Policy", "")
    assert csp == page.get("Content-Security-Policy", security.CSP), what
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, what
    assert headers.get("Referrer-Policy") == "no-referrer", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Cross-Origin-Resource-Policy") == "same-origin", what
    if endpoint == "static":
        # Our own scripts, styles and icons: headers that only documents act on are left
        # off (security.DOCUMENT_ONLY); the CSP, nosniff and CORP above stay.
        for name in security.DOCUMENT_ONLY:
            assert name not in headers, what
    else:
        assert headers.get("X-Frame-Options") == "DENY", what
        assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", what
        policy = headers.get("Permissions-Policy", "")
        assert policy == security.permissions_policy(endpoint), what
        for feature in ("camera", "geolocation", "payment", "usb"):
            assert f"{feature}=()" in policy, what
        if "microphone" not in security.PERMISSION_EXCEPTIONS.get(endpoint or "", {}):
            assert "microphone=()" in policy, what
        # Pages and answers may carry a receipt code, a status or a CSRF token.
        assert headers.get("Cache-Control") == "no-store", what
    if hsts:
        assert headers.get("Strict-Transport-Security") == security.HSTS, what
    else:
        assert "Strict-Transport-Security" not in headers, what


def _routes(app: Flask, values: dict[str, Any]) -> Iterator[tuple[str, str, set[str]]]:
    """(endpoint, path, methods) of every route in the URL map."""
    for rule in app.url_map.iter_rules():
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: add a value for {missing} to the crawl"
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments})[1]
        yield rule.endpoint, path, set(rule.methods or ()) - {"HEAD", "OPTIONS"}


def _get_endpoint(app: Flask, path: str) -> str | None:
    """The endpoint that answers a GET of `path`, or None when none does (404, 405)."""
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, "GET")
    except HTTPException:
        return None
    return str(endpoint)


def test_every_route_sends_the_policy_to_everyone(
    app: Flask, values: dict[str, Any], people: dict[str, Person]
) -> None:
    visitors: dict[str, FlaskClient] = {"anonymous": app.test_client()}
    visitors.update({role: person.client for role, person in people.items()})
    seen: set[str] = set()
    statuses: set[int] = set()
    for endpoint, path, _methods in _routes(app, values):
        seen.add(endpoint)
        for who, client in visitors.items():
            # A POST-only route answered to a GET is the page at that address, or the 405
            # error page: either carries the policy too.
            answer = client.get(path)
            statuses.add(answer.status_code)
            answer.close()  # file answers are streamed
            check(answer, f"GET {path} as {who}", endpoint=_get_endpoint(app, path))
    assert seen == {rule.endpoint for rule in app.url_map.iter_rules()}
    # The crawl met pages, redirects, refusals of each kind and method errors.
    assert {200, 302, 401, 403, 405} <= statuses


def test_error_pages_send_the_policy(app: Flask, client: FlaskClient,
                                     people: dict[str, Person]) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    token = csrf_token(client.get("/en/status").text)
    answers = {
        "unknown address": (client.get("/no/such/page"), 404, None),
        # Routed to the form (its policy), then refused: no such language.
        "unknown language": (client.get("/xx/"), 404, "report.form"),
        "unknown case": (people["officer"].client.get("/en/console/cases/" + "0" * 32), 404,
                         "casework.case"),
        "no CSRF token": (client.post("/en/status", data={"code": "1"}), 400, "report.status"),
        "bad JSON": (client.post("/api/reports", data=b"{", content_type="application/json"),
                     400, "report.submit_api"),
        "bad console form": (people["admin"].post("/en/console/users/disable", user="x²"), 400,
                             "casework.disable_user"),
        "too large API body": (
            client.post("/api/reports", data=b"x" * (limit + 1), content_type="application/json"),
            413, "report.submit_api"),
        "too large form": (
            client.post("/en/", data={"csrf_token": token, "what": "x" * (limit + 1)}),
            413, "report.submit_form"),
        "status not found": (client.post("/en/status", data={"csrf_token": token,
                                                            "code": "0000"}),
                             404, "report.status"),
    }
    for what, (answer, status, endpoint) in answers.items():
        assert answer.status_code == status, what
        check(answer, what, endpoint=endpoint)


def test_hsts_over_tls_and_on_an_instance_served_over_https(
    app: Flask, client: FlaskClient, instance: instance_mod.Created
) -> None:
    # Over plain HTTP on a demo instance (secure_cookies = false): no HSTS.
    check(client.get("/en/"), "http", endpoint="report.form")
    # A request that came over TLS gets it.
    check(client.get("/en/", base_url="https://localhost"), "https", endpoint="report.form",
          hsts=True)
    # Behind a TLS-terminating proxy the request arrives as plain HTTP; an instance with
    # secure_cookies = true is served over HTTPS only, so it sends HSTS on every answer.
    behind_proxy = create_app(replace(instance.config, secure_cookies=True)).test_client()
    for path in ("/en/", "/no/such/page", "/static/" + STATIC_FILE):
        answer = behind_proxy.get(path)
        answer.close()
        endpoint = {"/en/": "report.form", "/no/such/page": None}.get(path, "static")
        check(answer, f"proxied {path}", endpoint=endpoint, hsts=True)


def test_a_page_exception_changes_that_page_alone(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(security.PERMISSION_EXCEPTIONS, "report.form",
                        {"microphone": "(self)"})
    form = client.get("/en/").headers["Permissions-Policy"]
    status = client.get("/en/status").headers["Permissions-Policy"]
    assert "microphone=(self)" in form and "camera=()" in form
    assert "microphone=()" in status
    assert form.replace("microphone=(self)", "microphone=()") == status
