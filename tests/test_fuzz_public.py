"""Property tests for every parser of the public side's outside input (tests/fuzz.py says
how the targets are built and run): submission bodies, queue files, focal-point enrolment,
status lookups, the report and status forms, and opening envelopes."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import strategies as st
from markupsafe import escape

from intake import crypto, receipts, reports
from intake import envelope as fmt
from intake.attachments import CHUNK_SIZE
from intake.report.api import ERRORS
from intake.report.forms import CHOICE_FIELDS, CONSENT_FIELDS, TEXT_FIELDS

from fuzz import (
    ANY_TEXT,
    FOCAL_ID,
    JSON_VALUES,
    MATERIAL,
    TEXT,
    VALID_CODES,
    Harness,
    Target,
    b64,
    envelopes,
    faults,
    mutated,
    run,
    seal_raw,
    typed_codes,
)
from support import csrf_token

API_STATUSES = {201, 400, 403, 409, 413, 422, 503}  # 503: no hashing slot free


# --- Submission bodies (SECURITY.md, Formats 6) ---------------------------------------------


@st.composite
def submission_bodies(draw: st.DrawFn, *, sealed_only: bool = False) -> dict[str, Any]:
    """A submission body as a device builds it, valid but for a few faults (often none, so
    that the checks behind the first ones are reached too)."""
    wrong = draw(faults("envelope", "code", "language", "b64", "receipts", "sealed_receipt",
                        "focal", "member"))
    fault = wrong.__contains__
    data = draw(envelopes()) if fault("envelope") else crypto.seal(
        {"schema": 1, "what": draw(TEXT)}, [MATERIAL.org.public_key])
    report_id = data[8:24] if len(data) >= 24 else bytes(16)
    code = draw(typed_codes()) if fault("code") else draw(VALID_CODES)
    language = draw(st.sampled_from(("fr", "xx", "")) | ANY_TEXT) if fault("language") else "en"
    body: dict[str, Any] = {"envelope": draw(b64(data)) if fault("b64") else
                            crypto.b64encode(data)}
    sealed = sealed_only or draw(st.booleans())
    if not sealed or fault("receipts"):
        body["receipt_code"], body["language"] = code, language
    if sealed or fault("receipts"):
        receipt = b""
        if code.isascii() and code.isdigit() and language.isascii() and language.isalpha() \
                and len(language) <= 8:
            receipt = crypto.seal_receipt(code, language, report_id=report_id,
                                          key=MATERIAL.receipt.public_key)
        if fault("sealed_receipt") or not receipt:
            receipt = draw(mutated(receipt or bytes(81), steps=2))
        body["sealed_receipt"] = crypto.b64encode(receipt)
    if draw(st.booleans()) or fault("focal"):
        field = (crypto.b64decode(body["sealed_receipt"]) if "sealed_receipt" in body else
                 str(body.get("receipt_code", "")).encode("utf-8", "surrogatepass"))
        signature = crypto.sign_focal(MATERIAL.tablet, crypto.focal_message(data, field))
        body["focal_point"], body["signature"] = FOCAL_ID, crypto.b64encode(signature)
        if fault("focal"):
            what = draw(st.sampled_from(("forged", "unknown", "half")))
            if what == "forged":
                body["signature"] = draw(b64(draw(mutated(signature, steps=2))))
            elif what == "unknown":
                body["focal_point"] = draw(st.sampled_from(("00000000", "\ud800", "")) | ANY_TEXT)
            else:
                del body[draw(st.sampled_from(("focal_point", "signature")))]
    if fault("member"):
        # A member of the wrong type, or one the format does not have.
        name = draw(st.sampled_from(("envelope", "receipt_code", "sealed_receipt", "language",
                                     "focal_point", "signature")) | ANY_TEXT)
        body[name] = draw(JSON_VALUES)
    return body


def _canonical(text: str) -> bool:
    try:
        crypto.b64decode(text)
    except ValueError:
        return False
    return True


RAW_BODIES = st.one_of(
    st.binary(max_size=512),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda n: b'{"envelope": ' + b"[" * n),
)


@st.composite
def api_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    wrong = draw(faults("body", "type"))
    body = draw(RAW_BODIES) if "body" in wrong else json.dumps(draw(submission_bodies())).encode()
    content_type = draw(st.sampled_from((
        "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x", ""))) if "type" in wrong else "application/json"
    return content_type, body


def check_api(h: Harness, example: tuple[str, bytes]) -> None:
    content_type, body = example
    before, count = h.fingerprint(), h.count("reports")
    answer = h.client.post("/api/reports", data=body, content_type=content_type)
    assert answer.status_code in API_STATUSES, answer.status_code
    doc = answer.get_json()
    if answer.status_code == 201:
        assert set(doc) == {"report_id"}
        assert h.conn.execute("SELECT 1 FROM reports WHERE id = ?", (doc["report_id"],)
                              ).fetchone()
        assert h.count("reports") in (count, count + 1)  # stored now, or a retry
    else:
        assert doc["error"] in ERRORS and doc["message"], doc
        assert h.fingerprint() == before, "a refused submission changed the database"


def check_parse_submission(h: Harness, body: Any) -> None:
    try:
        submission = reports.parse_submission(body)
    except reports.Rejected as exc:
        assert exc.code in ERRORS
        return
    assert isinstance(body, dict) and isinstance(submission.envelope, bytes)
    assert (submission.receipt_code is None) != (submission.sealed_receipt is None)


# --- Queue files (Formats 9) ----------------------------------------------------------------


@st.composite
def queue_items_with_attachments(draw: st.DrawFn) -> dict[str, Any]:
    """A queued report with attachments (Formats 9 and 14): the upload's opening body, with
    a sealed receipt, and every chunk, maybe with a fault."""
    sizes = draw(st.lists(st.sampled_from((0, 10, CHUNK_SIZE + 1)), min_size=1, max_size=2))
    files = [crypto.NewAttachment(f"f{i}", "application/octet-stream", os.urandom(n))
             for i, n in enumerate(sizes)]
    sealed = crypto.seal_report({"schema": 1, "language": "en"}, [MATERIAL.org.public_key], files)
    receipt = crypto.seal_receipt(receipts.new_code(), "en", report_id=sealed.envelope[8:24],
                                  key=MATERIAL.receipt.public_key)
    chunks: list[Any] = [[crypto.b64encode(c) for c in cs] for cs in sealed.chunks]
    item: dict[str, Any] = {
        "envelope": crypto.b64encode(sealed.envelope), "sealed_receipt": crypto.b64encode(receipt),
        "upload_token": crypto.b64encode(os.urandom(32)),
        "attachments": [{"id": aid.hex(), "size": sum(map(len, cs)), "chunks": len(cs)}
                        for aid, cs in zip(sealed.attachment_ids, sealed.chunks, strict=True)],
        "chunks": chunks,
    }
    wrong = draw(faults("missing", "extra", "b64", "flip", "shape", "member"))
    if "missing" in wrong:
        chunks[0].pop()
    if "extra" in wrong:
        chunks[-1].append(chunks[-1][-1] if chunks[-1] else "AAAA")
    if "b64" in wrong and chunks[0]:
        chunks[0][0] = draw(b64(crypto.b64decode(chunks[0][0])))
    if "flip" in wrong and chunks[0]:
        chunks[0][-1] = crypto.b64encode(draw(mutated(crypto.b64decode(chunks[0][-1]), steps=1)))
    if "shape" in wrong:
        item["chunks"] = draw(JSON_VALUES)
    if "member" in wrong:
        item[draw(st.sampled_from(("attachments", "upload_token", "receipt_code")) | ANY_TEXT)] = \
            draw(JSON_VALUES)
    return item


@st.composite
def queue_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(("queue", "queue", "queue", "other")))
    if kind == "other":
        return draw(RAW_BODIES)
    document: dict[str, Any] = {
        "format": draw(st.sampled_from(("intake-queue",) * 4 + ("intake-export", ""))),
        "version": draw(st.sampled_from((1, 1, 1, 2, "1", None))),
        "items": draw(st.lists(submission_bodies(sealed_only=True) |
                               queue_items_with_attachments() | JSON_VALUES, max_size=3)),
    }
    for _ in range(draw(st.integers(0, 1))):
        document[draw(st.sampled_from(("format", "version", "items")) | ANY_TEXT)] = draw(
            JSON_VALUES)
    return json.dumps(document).encode("utf-8", "surrogatepass")


def check_queue_file(h: Harness, data: bytes) -> None:
    before, count = h.fingerprint(UPLOAD_TABLES), h.count("reports")
    try:
        result = reports.import_queue(h.conn, h.config, data)
    except reports.Rejected as exc:
        assert exc.code == "bad_request"
        assert h.fingerprint(UPLOAD_TABLES) == before
        return
    items = json.loads(data)["items"]
    assert result.stored + result.already + len(result.refused) == len(items)
    assert all(code in ERRORS for _, code in result.refused)
    assert h.count("reports") == count + result.stored
    if result.stored == 0:
        # An item with attachments refused part-way leaves its upload open, as a phone
        # that lost its connection does, until it is purged: that is no report stored.
        assert h.fingerprint(UPLOAD_TABLES) == before


# Open uploads and their chunks: not reports, and purged after limits.upload_expiry_hours.
UPLOAD_TABLES = frozenset({"uploads", "attachments", "attachment_chunks"})


# --- Focal-point enrolment (Formats 8) -------------------------------------------------------


@st.composite
def enrolment_bodies(draw: st.DrawFn) -> tuple[bool, bytes]:
    """(use a fresh valid code, body): the check puts a new code where the body says FRESH."""
    wrong = draw(faults("code", "key", "b64", "member", "raw"))
    key = draw(st.sampled_from((b"\x04" + bytes(64), b"", b"\x04" + b"\xff" * 64)) |
               st.binary(max_size=70)) if "key" in wrong else MATERIAL.stranger.public_key.raw
    body: dict[str, Any] = {
        "enrolment_code": draw(ANY_TEXT) if "code" in wrong else "FRESH",
        "public_key": draw(b64(key)) if "b64" in wrong else crypto.b64encode(key),
    }
    if "member" in wrong:
        body[draw(st.sampled_from(("enrolment_code", "public_key")) | ANY_TEXT)] = draw(
            JSON_VALUES)
    # The code as people type it (the check fills it in), and any JSON layout.
    body["typed"] = draw(st.sampled_from(("upper", "lower", "spaces", "dashes")))
    raw = draw(RAW_BODIES) if "raw" in wrong else json.dumps(
        body, indent=draw(st.none() | st.integers(0, 2))).encode()
    return "code" not in wrong, raw


def check_enrolment(h: Harness, example: tuple[bool, bytes]) -> None:
    from intake import focal

    fresh, raw = example
    if fresh:
        _, code = focal.add(h.conn, "Fuzz tablet", now=reports.utcnow())
        for typed, text in (("lower", code.lower()), ("spaces", code.replace("-", " ")),
                            ("dashes", code.replace("-", "--")), ("upper", code)):
            if f'"typed": "{typed}"'.encode() in raw:
                raw = raw.replace(b'"FRESH"', json.dumps(text).encode())
    before = h.fingerprint()
    answer = h.client.post("/api/focal/enrol", data=raw, content_type="application/json")
    assert answer.status_code in {201, 400, 403, 413}, answer.status_code
    doc = answer.get_json()
    if answer.status_code == 201:
        assert set(doc) == {"focal_point", "name"}
    else:
        assert doc["error"] in ERRORS
        assert h.fingerprint() == before


# --- Status: the code lookup and the status form ---------------------------------------------


def check_find_status(h: Harness, typed: str) -> None:
    before = h.fingerprint()
    found = reports.find_status(h.conn, h.config, typed)
    assert found is None or found.report_id
    assert h.fingerprint() == before


# One client that soon has to wait (the per-client limit), or one of many that need not.
CLIENTS = st.just("10.0.0.1") | st.integers(0, 2**24 - 1).map(
    lambda n: f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")


@st.composite
def status_posts(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    lang = draw(st.sampled_from(("en", "fr", "ar", "sw", "xx")))
    form: dict[str, Any] = {"code": draw(typed_codes() | TEXT)}
    token = draw(st.sampled_from(("valid", "valid", "valid", "missing", "garbage")))
    if token != "missing":
        form["csrf_token"] = "VALID" if token == "valid" else draw(TEXT)
    if draw(st.booleans()):
        form[draw(TEXT)] = draw(TEXT)
    if draw(st.booleans()):
        form["code"] = [form["code"], draw(TEXT)]  # the field twice
    return lang, form, draw(CLIENTS)


def check_status_form(h: Harness, example: tuple[str, dict[str, Any], str]) -> None:
    lang, form, client = example
    if form.get("csrf_token") == "VALID":
        form = {**form, "csrf_token": csrf_token(h.client.get("/en/status").text)}
    before = h.fingerprint()
    # Through deploy/'s proxy, which names the client (trusted_proxy = "loopback").
    answer = h.client.post(f"/{lang}/status", data=form, headers={"X-Forwarded-For": client})
    assert answer.status_code in {200, 400, 404, 429, 503}, answer.status_code
    if answer.status_code in (429, 503):
        assert int(answer.headers["Retry-After"]) > 0
    assert h.fingerprint() == before


# --- The report form without JavaScript ---------------------------------------------------


CHOICES = {
    "reporter": ("self", "carer", "other"), "minor": ("yes", "no", "unsure"),
    "age_range": ("", "0-11", "12-14", "15-17", "18-24", "25-39", "40-59", "60+"),
    "perpetrator": ("soldier", "police", "civilian", "unknown"),
    "danger_now": ("yes", "no", "unsure"), "preferred_language": ("", "en", "fr", "ar"),
    **{name: ("no", "yes") for name in CONSENT_FIELDS},
}
assert set(CHOICES) == set(CHOICE_FIELDS + CONSENT_FIELDS)


@st.composite
def report_posts(draw: st.DrawFn) -> dict[str, Any]:
    """The no-JavaScript form as a browser posts it: any text in the text fields, answers
    from the choices offered, and a few faults (often none)."""
    wrong = draw(faults("csrf", "report_id", "choice", "help", "date", "long", "empty",
                        "extra", "twice"))
    form: dict[str, Any] = {"csrf_token": draw(TEXT) if "csrf" in wrong else "VALID"}
    if "report_id" in wrong:
        form["report_id"] = draw(st.sampled_from(("", "AB" * 16, "0" * 31)) | TEXT)
    elif draw(st.booleans()):
        # A new form, or (rarely) one sent before: that is the "already received" page.
        form["report_id"] = draw(st.sampled_from((os.urandom(16).hex(), "0" * 32)))
    for name in TEXT_FIELDS:
        if name == "what" or draw(st.booleans()):
            form[name] = draw(TEXT)
    form["what"] = form["what"] or "x"
    if "date" in wrong:
        form["when_date"] = draw(st.sampled_from(("2025-02-30", "2025-2-3", "１２")) | TEXT)
    elif draw(st.booleans()):
        form["when_date"] = draw(st.dates()).isoformat()
    for name, values in CHOICES.items():
        if draw(st.booleans()):
            form[name] = draw(st.sampled_from(values))
    if "choice" in wrong:
        form[draw(st.sampled_from(sorted(CHOICES)))] = draw(TEXT)
    if "help" in wrong or draw(st.booleans()):
        offered = ("medical", "counselling", "safety", "legal", "material")
        form["help"] = draw(st.lists(st.sampled_from(offered) | (
            TEXT if "help" in wrong else st.nothing()), max_size=4))
    if "long" in wrong:
        form[draw(st.sampled_from(("what", "place", "perpetrator_description")))] = "x" * 20_001
    if "empty" in wrong:
        form["what"] = draw(st.sampled_from(("", " ", "\n")))
    if "extra" in wrong:
        form[draw(TEXT)] = draw(TEXT)
    if "twice" in wrong:
        name = draw(st.sampled_from(sorted(form)))
        form[name] = [form[name], draw(TEXT)]
    return form


def check_report_form(h: Harness, form: dict[str, Any]) -> None:
    if form.get("csrf_token") == "VALID":
        form = {**form, "csrf_token": csrf_token(h.client.get("/en/").text)}
    before, count = h.fingerprint(), h.count("reports")
    answer = h.client.post("/en/", data=form)
    assert answer.status_code in {200, 400, 409, 503}, answer.status_code
    page = answer.text
    if answer.status_code == 200:
        assert h.count("reports") == count + 1
        assert 'id="receipt-code"' in page or "receipt" in page
        return
    assert h.fingerprint() == before
    if answer.status_code == 400:
        # Nothing the person typed is lost: every answer is back in the page.
        for name in ("what", "place", "contact_how"):
            value = form.get(name)
            if isinstance(value, str):
                assert str(escape(value)) in page, name


# --- Opening envelopes (officers' CLI and console read hostile envelopes) -------------------


@st.composite
def sealed_plaintexts(draw: st.DrawFn) -> bytes:
    """A valid envelope around a payload that may be anything: the JSON parser behind the
    AEAD is reachable by anyone who has the public key."""
    text = draw(st.one_of(
        JSON_VALUES.map(json.dumps),
        st.sampled_from(('{"a":1,"a":2}', '{"what": NaN}', '{"x": Infinity}', "[]", '"x"',
                         "{" * 70 + "}" * 70, '{"what": "\\ud800"}', "1e999999", "9" * 5000)),
        TEXT,
    ))
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        raw = fmt.pad(raw)
    elif draw(st.booleans()):
        raw += draw(st.binary(max_size=8))
    return seal_raw(raw, [MATERIAL.org.public_key], bytes(16))


def check_unseal(h: Harness, data: bytes) -> None:
    try:
        opened = crypto.unseal(data, MATERIAL.org)
    except crypto.EnvelopeOpenError:
        return
    assert isinstance(opened.payload, dict)


def check_parse(h: Harness, data: bytes) -> None:
    try:
        env = fmt.parse(data, max_size=256 * 1024)
    except (fmt.EnvelopeMalformed, fmt.EnvelopeUnsupported):
        return
    assert env.header + env.nonce + env.ciphertext == data


TARGETS = (
    Target("submission API", api_requests(), check_api),
    Target("parse_submission", JSON_VALUES | submission_bodies(), check_parse_submission),
    Target("queue file import", queue_files(), check_queue_file),
    Target("focal enrolment API", enrolment_bodies(), check_enrolment),
    Target("receipt code lookup", typed_codes() | ANY_TEXT, check_find_status),
    Target("status form", status_posts(), check_status_form),
    Target("report form", report_posts(), check_report_form),
    Target("envelope shape", envelopes(), check_parse),
    Target("envelope opening", envelopes() | sealed_plaintexts(), check_unseal),
)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_property(target: Target, fuzz_harness: Harness) -> None:
    run(target, fuzz_harness)

