"""Every crash the fuzzing found (tests/fuzz.py), as the smallest input that caused it.

Each test names the target that found it and what went wrong; the fix is in its own commit.
"""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake import crypto, receipts, reports, store
from intake.instance import Created

from support import csrf_token, enrol


def _reports(instance: Created) -> int:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    finally:
        conn.close()


def test_a_focal_point_id_with_a_lone_surrogate_is_a_bad_request(
    client: FlaskClient, instance: Created
) -> None:
    # Found by "submission API": JSON may carry "\ud800", which Python decodes to a lone
    # surrogate; looking the focal point up passed it to SQLite, which cannot encode it: a
    # 500 (and a crash of `intake import` on such a queue file).
    envelope = crypto.seal({"schema": 1, "what": "x"}, instance.config.recipients)
    body = {"envelope": crypto.b64encode(envelope), "receipt_code": receipts.new_code(),
            "language": "en", "focal_point": "\ud800", "signature": crypto.b64encode(bytes(64))}
    answer = client.post("/api/reports", data=json.dumps(body),
                         content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"] == "bad_request"
    sealed = crypto.seal_receipt(receipts.new_code(), "en", report_id=envelope[8:24],
                                 key=instance.config.receipt_public_key)
    item = {**body, "sealed_receipt": crypto.b64encode(sealed)}
    del item["receipt_code"], item["language"]
    document = {"format": "intake-queue", "version": 1, "items": [item]}
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        result = reports.import_queue(conn, instance.config, json.dumps(document).encode())
    finally:
        conn.close()
    assert result.refused == ((0, "bad_request"),)
    assert _reports(instance) == 0


@pytest.mark.parametrize("target", [
    "/\t/evil.example/console/x",  # a browser drops the tab and goes to //evil.example
    "/\n/evil.example/console/x",  # a newline in a header: a 500
    "/\r\n/console/\r\nSet-Cookie: x=1",
    "/ /evil.example/console/",
    "/\u3000/evil.example/console/",
])
def test_a_login_never_sends_the_officer_to_another_site(
    app: Flask, instance: Created, target: str
) -> None:
    # Found writing the "console next" target: `next` is checked to be a path on this
    # console, but tabs and newlines passed, which browsers remove from a URL before they
    # read it ("/\t/evil.example" is "//evil.example", another site), and a newline cannot
    # go in a Location header at all (a 500).
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        officer = enrol(conn, instance.config, "olga", now=reports.utcnow())
    finally:
        conn.close()
    client = app.test_client()
    token = csrf_token(client.get("/en/console/login").text)
    answer = client.post("/en/console/login", data={
        "csrf_token": token, "username": "olga", "password": officer.password,
        "code": officer.code(reports.utcnow(), steps=1), "next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/en/console/cases"


def test_a_note_number_too_large_for_sqlite_is_not_found(app: Flask, instance: Created) -> None:
    # Found probing the console's addresses (now the "console addresses" fuzz target):
    # /notes/<int>/envelope took any number of
    # digits, and SQLite cannot bind an integer of more than 64 bits: a 500.
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        officer = enrol(conn, instance.config, "olga", now=reports.utcnow())
        case = reports.seal_on_server(conn, instance.config, payload={"schema": 1, "what": "x"},
                                      language="en").report_id
    finally:
        conn.close()
    client = app.test_client()
    token = csrf_token(client.get("/en/console/login").text)
    client.post("/en/console/login", data={
        "csrf_token": token, "username": "olga", "password": officer.password,
        "code": officer.code(reports.utcnow(), steps=1)})
    for number in ("1", "9223372036854775808", "9" * 40):
        answer = client.get(f"/en/console/cases/{case}/notes/{number}/envelope")
        assert answer.status_code == 404, number
