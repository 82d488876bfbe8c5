"""Officer console routes through Flask's test client, with CSRF on: who may reach what,
cross-site requests, sessions, re-authentication and consent. Real SQLCipher, real argon2
(cheap), real TOTP; the browser side is in tests/browser/test_console.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake import accounts, crypto, receipts, reports, store
from intake import instance as instance_mod

from support import csrf_token

PASSWORD = "a long officer passphrase 7"
ALL = frozenset({"admin", "officer", "analyst"})
# Who may use each console endpoint. A new route must be added here, or the test fails.
ACCESS: dict[str, frozenset[str]] = {
    "casework.login": frozenset(), "casework.setup": frozenset(),  # public on purpose
    "casework.home": ALL, "casework.logout": ALL, "casework.logout_everywhere": ALL,
    "casework.reauth": ALL, "casework.account": ALL,
    **{f"casework.{name}": frozenset({"admin"}) for name in (
        "users", "add_user", "reset_user", "disable_user", "focal_points", "add_focal_point",
        "revoke_focal_point", "settings")},
    **{f"casework.{name}": frozenset({"analyst"}) for name in ("figures", "figures_csv")},
    **{f"casework.{name}": frozenset({"officer"}) for name in (
        "cases", "case", "envelope", "note", "consent", "add_note", "save_triage",
        "set_status", "add_referral", "export", "attachment")},
}


class Person:
    """A logged-in test client for one account."""

    last_secret: bytes = b""

    def __init__(self, app: Flask, conn: store.Connection, username: str, role: str) -> None:
        config = app.config["INTAKE"]
        _, code = accounts.add(conn, config.audit_key, username=username, role=role,
                               actor=None, now=reports.utcnow(), setup_hours=1)
        secret = accounts.begin_setup(conn, username=username, code=code, password=PASSWORD,
                                      params=config.password_hash, now=reports.utcnow())
        # Set up one step in the past, so the login below uses a fresh code.
        earlier = reports.utcnow() - timedelta(seconds=30)
        accounts.finish_setup(conn, config.audit_key, username=username, code=code,
                              totp_code=crypto.totp_code(secret, at=earlier.timestamp()),
                              now=earlier)
        self.client: FlaskClient = app.test_client()
        self.username, self.secret = username, secret
        Person.last_secret = secret
        page = self.client.get("/en/console/login").text
        self.token = csrf_token(page)
        answer = self.client.post("/en/console/login", data={
            "csrf_token": self.token, "username": username, "password": PASSWORD,
            "code": crypto.totp_code(secret, at=time.time())})
        assert answer.status_code == 302, answer.text

    def post(self, path: str, **data: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **data})


@pytest.fixture
def conn(instance: instance_mod.Created, app: Flask) -> Iterator[store.Connection]:
    connection = store.connect(instance.config.db_path, instance.config.db_key)
    yield connection
    connection.close()


@pytest.fixture
def report_id(conn: store.Connection, instance: instance_mod.Created) -> str:
    receipt = reports.seal_on_server(conn, instance.config, payload={"schema": 1, "what": "x"},
                                     language="en")
    return receipt.report_id


@pytest.fixture
def people(app: Flask, conn: store.Connection) -> dict[str, Person]:
    return {role: Person(app, conn, f"{role}1", role) for role in sorted(ALL)}


def _urls(app: Flask, report_id: str) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, path) of every console route."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("casework."):
            continue
        values: dict[str, Any] = {"lang": "en", "report_id": report_id, "note_id": 1,
                                  "attachment_id": "ab" * 16}
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments})[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def test_every_console_route_is_in_the_access_table(app: Flask, report_id: str) -> None:
    endpoints = {endpoint for endpoint, _, _ in _urls(app, report_id)}
    assert endpoints == set(ACCESS)


def test_anonymous_and_wrong_roles_are_refused_everywhere(
    app: Flask, people: dict[str, Person], report_id: str
) -> None:
    anonymous = app.test_client()
    token = csrf_token(anonymous.get("/en/console/login").text)
    checked = 0
    for endpoint, method, path in _urls(app, report_id):
        allowed = ACCESS[endpoint]
        if not allowed:
            continue
        answer = anonymous.open(path, method=method, data={"csrf_token": token})
        assert answer.status_code in (302, 401), (endpoint, method, answer.status_code)
        if answer.status_code == 302:
            assert "/console/login" in answer.headers["Location"]
        for role, person in people.items():
            if role in allowed:
                continue
            answer = person.client.open(path, method=method, data={"csrf_token": person.token})
            assert answer.status_code == 403, (endpoint, method, role, answer.status_code)
            checked += 1
    assert checked >= 40  # every route, method and wrong role was tried


def test_cross_site_posts_are_refused_even_for_the_right_role(
    app: Flask, people: dict[str, Person], report_id: str
) -> None:
    for endpoint, method, path in _urls(app, report_id):
        if method != "POST":
            continue
        role = sorted(ACCESS[endpoint] or {"officer"})[0]
        client = people[role].client
        before = _audit_count(app)
        answer = client.post(path, data={"username": "x"}, json=None)
        assert answer.status_code == 400, (endpoint, answer.status_code)
        assert _audit_count(app) == before, endpoint
        # A JSON body with no token header is refused too.
        answer = client.post(path, json={"refer": True, "share": True, "statistics": True})
        assert answer.status_code == 400, (endpoint, answer.status_code)


def _audit_count(app: Flask) -> int:
    config = app.config["INTAKE"]
    conn = store.connect(config.db_path, config.db_key)
    try:
        return int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])
    finally:
        conn.close()


def test_the_session_cookie_is_strict_and_http_only(app: Flask, conn: store.Connection) -> None:
    person = Person(app, conn, "olga", "officer")
    cookie = person.client.get_cookie("intake_console")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    stored = conn.execute("SELECT token_hash FROM sessions").fetchall()
    assert cookie.value.encode() not in b"".join(bytes(r[0]) for r in stored)


def test_log_out_everywhere_ends_every_session(app: Flask, conn: store.Connection) -> None:
    first = Person(app, conn, "olga", "officer")
    second = app.test_client()
    token = csrf_token(second.get("/en/console/login").text)
    answer = second.post("/en/console/login", data={
        "csrf_token": token, "username": "olga", "password": PASSWORD,
        "code": crypto.totp_code(first.secret, at=time.time() + 30)})
    assert answer.status_code == 302
    assert second.get("/en/console/cases").status_code == 200
    first.post("/en/console/logout-everywhere")
    assert first.client.get("/en/console/cases").status_code == 302
    assert second.get("/en/console/cases").status_code == 302


def test_sensitive_actions_ask_for_the_password_and_code_again(
    app: Flask, conn: store.Connection
) -> None:
    admin = Person(app, conn, "ada", "admin")
    conn.execute("UPDATE sessions SET reauth_at = '2000-01-01T00:00:00+00:00'")
    answer = admin.post("/en/console/users", username="newbie", role="officer")
    assert answer.status_code == 302 and "/console/reauth" in answer.headers["Location"]
    assert accounts.all_users(conn)[-1].username != "newbie"
    answer = admin.post("/en/console/reauth", password=PASSWORD,
                        code=crypto.totp_code(admin.secret, at=time.time() + 30))
    assert answer.status_code == 302
    answer = admin.post("/en/console/users", username="newbie", role="officer")
    assert answer.status_code == 200
    code = re.search(r'id="setup-code"[^>]*>([^<]+)<', answer.text)
    assert code and any(u.username == "newbie" for u in accounts.all_users(conn))


def test_too_many_wrong_logins_are_slowed_with_retry_after(
    app: Flask, conn: store.Connection
) -> None:
    person = Person(app, conn, "olga", "officer")
    client = app.test_client()
    token = csrf_token(client.get("/en/console/login").text)
    for _ in range(accounts.FREE_FAILURES):
        answer = client.post("/en/console/login", data={
            "csrf_token": token, "username": "olga", "password": "wrong" * 4, "code": "000000"})
        assert answer.status_code == 401
        assert 'value="olga"' in answer.text  # what was typed is kept
    answer = client.post("/en/console/login", data={
        "csrf_token": token, "username": "olga", "password": PASSWORD,
        "code": crypto.totp_code(person.secret, at=time.time() + 30)})
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0


def test_a_referral_without_consent_is_refused_with_the_reason(
    app: Flask, people: dict[str, Person], report_id: str
) -> None:
    officer = people["officer"]
    path = f"/en/console/cases/{report_id}"
    answer = officer.post(path + "/referrals", service="Clinic", referred_on="2026-11-27")
    assert answer.status_code == 303 and "error=consent_refer" in answer.headers["Location"]
    page = officer.client.get(answer.headers["Location"]).text
    assert "did not agree to be referred" in page
    headers = {"X-CSRFToken": officer.token}
    answer = officer.client.post(path + "/consent.json", headers=headers,
                                 json={"refer": True, "share": False, "statistics": False})
    assert answer.status_code == 200
    answer = officer.post(path + "/referrals", service="Clinic", referred_on="2026-11-27")
    assert answer.status_code == 303 and "error" not in answer.headers["Location"]
    answer = officer.post(path + "/export")
    assert "error=consent_share" in answer.headers["Location"]


def test_hostile_input_to_console_forms_gets_a_4xx_and_changes_nothing(
    app: Flask, people: dict[str, Person], report_id: str
) -> None:
    officer = people["officer"]
    path = f"/en/console/cases/{report_id}"
    headers = {"X-CSRFToken": officer.token}
    before = _audit_count(app)
    for body in ([], {"refer": "yes"}, {"refer": True}, "x", {"refer": 1, "share": 0}):
        answer = officer.client.post(path + "/consent.json", headers=headers, json=body)
        assert answer.status_code == 400
    for envelope in ("", "!!", crypto.b64encode(b"\x00" * 900)):
        answer = officer.client.post(path + "/notes.json", headers=headers,
                                     json={"envelope": envelope})
        assert answer.status_code == 400
    assert officer.client.get("/en/console/cases/" + "g" * 32).status_code == 404
    assert officer.client.get("/en/console/cases/" + "0" * 32).status_code == 404
    answer = officer.post(path + "/triage", allegation="<script>", priority="normal")
    assert "error=triage" in answer.headers["Location"]
    # Opening the case page is recorded; none of the refused changes are.
    actions = _actions(app)[before:]
    assert set(actions) <= {"case_opened"}


def _actions(app: Flask) -> list[str]:
    config = app.config["INTAKE"]
    conn = store.connect(config.db_path, config.db_key)
    try:
        return [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    finally:
        conn.close()


def test_status_page_shows_messages_inert(
    app: Flask, conn: store.Connection, instance: instance_mod.Created
) -> None:
    officer = Person(app, conn, "olga", "officer")
    receipt = reports.seal_on_server(conn, instance.config, payload={"schema": 1, "what": "x"},
                                     language="en")
    hostile = "<script>alert(1)</script> we read it"
    answer = officer.post(f"/en/console/cases/{receipt.report_id}/status",
                          status="reviewing", message=hostile)
    assert answer.status_code == 303
    public = app.test_client()
    token = csrf_token(public.get("/en/status").text)
    page = public.post("/en/status", data={"csrf_token": token,
                                           "code": receipts.display(receipt.receipt_code)}).text
    assert "Being reviewed" in page and "&lt;script&gt;alert(1)&lt;/script&gt; we read it" in page
    assert "<script>alert(1)" not in page


# A link's "?next=/%09/evil.example/console/" reaches the form decoded, as "/\t/...". A literal
# "%09" left in the path stays a same-site path segment in every browser, so it may pass.
@pytest.mark.parametrize("target", [
    "/\t/evil.example/console/", "//evil.example/console/",
    "/\\evil.example/console/", "https://evil.example/console/", "/en/console/\nx",
])
def test_login_never_sends_an_officer_to_another_site(
    app: Flask, conn: store.Connection, target: str
) -> None:
    Person(app, conn, "olga", "officer")
    client = app.test_client()
    token = csrf_token(client.get("/en/console/login").text)
    answer = client.post("/en/console/login", data={
        "csrf_token": token, "username": "olga", "password": PASSWORD, "next": target,
        "code": crypto.totp_code(Person.last_secret, at=time.time() + 30)})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/en/console/cases")
