"""The public side over HTTP: submission API, no-JavaScript form, status page, headers."""

from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake import crypto, receipts, store
from intake import envelope as fmt
from intake.instance import Created

from support import csrf_token


def _count(instance: Created) -> int:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    finally:
        conn.close()


def _envelope(instance: Created, payload: dict[str, object] | None = None, **kw: object) -> bytes:
    return crypto.seal(payload or {"schema": 1, "what": "x"}, instance.config.recipients, **kw)  # type: ignore[arg-type]


def _post(client: FlaskClient, data: bytes | str, code: str | None = None, **extra: object):  # type: ignore[no-untyped-def]
    body = {
        "envelope": data if isinstance(data, str) else crypto.b64encode(data),
        "receipt_code": code or receipts.new_code(),
        "language": "en",
        **extra,
    }
    return client.post("/api/reports", json=body)


def test_accepts_a_sealed_envelope_and_finds_it_by_receipt(client: FlaskClient, instance: Created, org_key: crypto.PrivateKey) -> None:
    data = _envelope(instance, {"schema": 1, "what": "marker-7731"})
    code = receipts.new_code()
    response = _post(client, data, code)
    assert response.status_code == 201
    report_id = response.get_json()["report_id"]
    assert report_id == fmt.parse(data, max_size=1 << 20).report_id_hex
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        (stored,) = list(store.envelopes(conn))
        view = store.find_by_receipt(conn, receipts.lookup_hash(
            code, pepper=instance.config.pepper, params=instance.config.receipt_hash))
    finally:
        conn.close()
    assert stored.sealed_by == "device" and stored.envelope == data
    assert view is not None and view.report_id == report_id and view.status == "received"
    assert crypto.unseal(stored.envelope, org_key).payload["what"] == "marker-7731"


def _bad_bodies(instance: Created) -> dict[str, tuple[object, int, str]]:
    good = _envelope(instance)
    other_key = crypto.generate_private_key().public_key
    flipped = bytearray(good)
    flipped[4] = 2
    server_flag = bytearray(good)
    server_flag[6] = fmt.FLAG_SERVER_SEALED
    bad_point = bytearray(good)
    bad_point[fmt.PREFIX_LEN + fmt.KEY_ID_LEN + 5] ^= 0xFF
    return {
        "not json": ("not json at all", 400, "bad_request"),
        "not base64": ({"envelope": "@@@@", "receipt_code": receipts.new_code(), "language": "en"}, 422, "malformed_envelope"),
        "truncated": (good[:-1], 422, "malformed_envelope"),
        "header only": (good[: fmt.PREFIX_LEN + fmt.ENTRY_LEN], 422, "malformed_envelope"),
        "wrong magic": (b"XXXX" + good[4:], 422, "malformed_envelope"),
        "unknown version": (bytes(flipped), 422, "unsupported_version"),
        "wrong key": (crypto.seal({"what": "x"}, [other_key]), 422, "unknown_key"),
        "claims server sealing": (bytes(server_flag), 422, "malformed_envelope"),
        "enc not on the curve": (bytes(bad_point), 422, "malformed_envelope"),
        "bad receipt check digit": ({"envelope": crypto.b64encode(good), "receipt_code": "1234567890123456", "language": "en"}, 422, "invalid_receipt_code"),
        "missing receipt": ({"envelope": crypto.b64encode(good), "language": "en"}, 400, "bad_request"),
    }


@pytest.mark.parametrize("case", [
    "not json", "not base64", "truncated", "header only", "wrong magic", "unknown version",
    "wrong key", "claims server sealing", "enc not on the curve", "bad receipt check digit",
    "missing receipt",
])
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(client: FlaskClient, instance: Created, case: str) -> None:
    body, status, error = _bad_bodies(instance)[case]
    if isinstance(body, bytes):
        response = _post(client, body)
    elif isinstance(body, dict):
        response = client.post("/api/reports", json=body)
    else:
        response = client.post("/api/reports", data=body, content_type="application/json")
    assert response.status_code == status
    answer = response.get_json()
    assert answer["error"] == error and answer["message"]
    assert _count(instance) == 0


def test_oversize_envelope_is_refused_before_it_is_read(client: FlaskClient, instance: Created) -> None:
    huge = "A" * (instance.config.limits.max_request_bytes + 10)
    response = client.post("/api/reports", data=json.dumps({"envelope": huge}), content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"] == "too_large"
    big = _envelope(instance, {"schema": 1, "what": "y" * (instance.config.limits.max_envelope_bytes)})
    response = _post(client, big)
    assert response.status_code in (413, 422) and response.get_json()["error"] == "too_large"
    assert _count(instance) == 0


def test_a_retry_gets_the_first_answer_and_is_stored_once(client: FlaskClient, instance: Created) -> None:
    data, code = _envelope(instance), receipts.new_code()
    first = _post(client, data, code)
    assert first.status_code == 201
    again = _post(client, data, receipts.display(code))
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert _count(instance) == 1


def test_a_replayed_envelope_under_another_code_is_refused(client: FlaskClient, instance: Created) -> None:
    data = _envelope(instance)
    assert _post(client, data).status_code == 201
    replay = _post(client, data, receipts.new_code())
    assert replay.status_code == 409 and replay.get_json()["error"] == "replayed_envelope"
    assert _count(instance) == 1


def test_duplicated_report_id_with_other_content_is_refused(client: FlaskClient, instance: Created) -> None:
    first = _envelope(instance)
    report_id = fmt.parse(first, max_size=1 << 20).report_id
    second = _envelope(instance, {"schema": 1, "what": "other"}, report_id=report_id)
    assert _post(client, first).status_code == 201
    response = _post(client, second)
    assert response.status_code == 409 and response.get_json()["error"] == "report_id_conflict"
    assert _count(instance) == 1


def test_a_reused_receipt_code_does_not_say_that_the_code_exists(client: FlaskClient, instance: Created) -> None:
    """A refusal would be a way to guess codes past the status page's limits."""
    code = receipts.new_code()
    first = _post(client, _envelope(instance), code)
    second = _post(client, _envelope(instance), code)
    assert (first.status_code, second.status_code) == (201, 201)
    assert _count(instance) == 2
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        view = store.find_by_receipt(conn, receipts.lookup_hash(
            code, pepper=instance.config.pepper, params=instance.config.receipt_hash))
    finally:
        conn.close()
    assert view is not None and view.report_id == first.get_json()["report_id"]


def test_api_needs_json_content_type(client: FlaskClient, instance: Created) -> None:
    body = json.dumps({"envelope": crypto.b64encode(_envelope(instance)), "receipt_code": receipts.new_code(), "language": "en"})
    # A cross-site form can only send form encodings; refusing them keeps the API out of
    # reach of CSRF without a token.
    response = client.post("/api/reports", data=body, content_type="text/plain")
    assert response.status_code == 400
    assert _count(instance) == 0


def _form(client: FlaskClient, lang: str = "en") -> tuple[str, str]:
    page = client.get(f"/{lang}/").get_data(as_text=True)
    report_id = page.split('id="report_id" name="report_id" type="hidden" value="')[1].split('"')[0]
    return csrf_token(page), report_id


def test_form_without_javascript_is_sealed_by_the_server(client: FlaskClient, instance: Created, org_key: crypto.PrivateKey) -> None:
    token, report_id = _form(client, "fr")
    response = client.post("/fr/", data={
        "csrf_token": token, "report_id": report_id, "what": "marqueur-4410 été",
        "help": ["medical", "safety"], "consent_contact": "yes", "minor": "yes",
    })
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    code = receipts.normalise(page.split('id="receipt-code">')[1].split("<")[0])
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        (stored,) = list(store.envelopes(conn))
        assert store.find_by_receipt(conn, receipts.lookup_hash(
            code, pepper=instance.config.pepper, params=instance.config.receipt_hash)) is not None
    finally:
        conn.close()
    opened = crypto.unseal(stored.envelope, org_key)
    assert stored.sealed_by == "server" and opened.flags == fmt.FLAG_SERVER_SEALED
    assert opened.report_id == report_id
    assert opened.payload == {
        "schema": 1, "language": "fr", "what": "marqueur-4410 été", "minor": "yes",
        "help": ["medical", "safety"], "consent_contact": True, "consent_refer": False,
        "consent_share": False, "consent_statistics": False,
    }
    # Pressing reload resubmits the same form: recognised, not filed twice.
    again = client.post("/fr/", data={"csrf_token": token, "report_id": report_id, "what": "marqueur-4410 été"})
    assert again.status_code == 409
    assert _count(instance) == 1


def test_form_errors_keep_everything_typed(client: FlaskClient, instance: Created) -> None:
    token, report_id = _form(client)
    response = client.post("/en/", data={
        "csrf_token": token, "report_id": report_id, "what": "", "place": "kept-place-991",
        "when_date": "not a date",
    })
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "kept-place-991" in page and "not a date" in page and 'class="error"' in page
    assert _count(instance) == 0


def test_form_without_csrf_token_is_refused_but_keeps_the_text(client: FlaskClient, instance: Created) -> None:
    _form(client)
    response = client.post("/en/", data={"what": "kept-what-118"})
    assert response.status_code == 400
    assert "kept-what-118" in response.get_data(as_text=True)
    assert _count(instance) == 0


def test_status_answers_unknown_and_malformed_codes_alike(client: FlaskClient, instance: Created) -> None:
    code = receipts.new_code()
    assert _post(client, _envelope(instance), code).status_code == 201
    token = csrf_token(client.get("/en/status").get_data(as_text=True))
    found = client.post("/en/status", data={"csrf_token": token, "code": receipts.display(code)})
    assert found.status_code == 200 and "Received" in found.get_data(as_text=True)
    answers = set()
    for typed in (receipts.new_code(), "1234567890123456", "abc", ""):
        response = client.post("/en/status", data={"csrf_token": token, "code": typed})
        body = response.get_data(as_text=True).replace(typed, "")
        # The form's CSRF token carries the second it was made: not part of the answer.
        answers.add((response.status_code, body.replace(csrf_token(body), "")))
    assert len(answers) == 1


def test_status_in_arabic_digits(client: FlaskClient, instance: Created) -> None:
    code = receipts.new_code()
    assert _post(client, _envelope(instance), code).status_code == 201
    arabic = "".join(chr(0x0660 + int(d)) for d in code)
    token = csrf_token(client.get("/ar/status").get_data(as_text=True))
    response = client.post("/ar/status", data={"csrf_token": token, "code": arabic})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/en/", "/fr/status", "/ar/about"])
def test_security_headers_on_every_page(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_arabic_pages_are_right_to_left(client: FlaskClient) -> None:
    page = client.get("/ar/").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert '<html lang="fr" dir="ltr">' in client.get("/fr/").get_data(as_text=True)


def test_unknown_language_is_not_found(client: FlaskClient) -> None:
    assert client.get("/xx/").status_code == 404


def test_root_follows_accept_language(client: FlaskClient) -> None:
    assert client.get("/", headers={"Accept-Language": "ar,en;q=0.5"}).headers["Location"] == "/ar/"
    assert client.get("/", headers={"Accept-Language": "de"}).headers["Location"] == "/en/"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=2048),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n),
))
def test_any_api_body_gets_a_clear_answer_and_stores_nothing(client: FlaskClient, instance: Created, body: bytes) -> None:
    response = client.post("/api/reports", data=body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.get_json()["error"] in {"bad_request", "too_large", "malformed_envelope"}
    assert _count(instance) == 0


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_main_questions_carry_a_pictogram_hidden_from_screen_readers(client: FlaskClient, lang: str) -> None:
    page = client.get(f"/{lang}/").get_data(as_text=True)
    icons = re.findall(r"<svg class=\"icon icon-(\w+)\"[^>]*>", page)
    assert set(m for m in icons) == {"what", "attach", "who", "child", "when", "perpetrator", "danger", "help", "choices"}
    assert all('aria-hidden="true"' in tag for tag in re.findall(r"<svg [^>]*>", page))
    assert " style=" not in page  # the CSP forbids inline styles; icons use attributes only


def test_a_fault_of_ours_is_said_in_the_page_language_and_keeps_what_was_typed(
    instance: Created,
) -> None:
    from intake import create_app

    app = create_app(instance.config)
    assert not app.testing  # so that a fault reaches the error handler, as in production
    client = app.test_client()
    token, report_id = _form(client, "fr")
    # A real fault: the table every new report writes its first event to is gone.
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        conn.execute("DROP TABLE report_events")
    finally:
        conn.close()
    response = client.post("/fr/", data={
        "csrf_token": token, "report_id": report_id, "what": "gardé-5521", "place": "Bria-77"})
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "gardé-5521" in page and "Bria-77" in page and f'value="{report_id}"' in page
    assert 'lang="fr"' in page and "Everything you wrote" not in page
    assert _count(instance) == 0  # the report's row went with its failed transaction
    answer = client.post("/api/reports", json={
        "envelope": crypto.b64encode(_envelope(instance)), "receipt_code": receipts.new_code(),
        "language": "fr"})
    assert answer.status_code == 500 and answer.get_json()["error"] == "server_error"
