"""Uploads of reports with attachments over HTTP (SECURITY.md, Formats 14): chunks in order,
acknowledged only when complete, retries that change nothing, refusals that store nothing,
purge of what was left incomplete, and property tests of the parsers of what devices send."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake import attachments as att
from intake import crypto, receipts, reports, store, uploads
from intake.config import Limits
from intake.instance import Created

CHUNK = att.CHUNK_SIZE
PHOTO = os.urandom(2 * CHUNK + 777)
VOICE = b"voice note bytes " * 100


def _sealed(instance: Created, files: tuple[bytes, ...] = (PHOTO, VOICE)) -> crypto.SealedReport:
    items = [crypto.NewAttachment(f"file{i}", "application/octet-stream", data)
             for i, data in enumerate(files)]
    return crypto.seal_report({"schema": 1, "language": "en"}, instance.config.recipients, items)


class Device:
    """What a phone sends for one sealed report: its opening body and its chunks."""

    def __init__(self, client: FlaskClient, sealed: crypto.SealedReport, code: str | None = None,
                 token: bytes | None = None) -> None:
        self.client, self.sealed = client, sealed
        self.code = code or receipts.new_code()
        self.token = token or os.urandom(32)
        self.report_id = sealed.envelope[8:24].hex()

    def body(self, **changes: Any) -> dict[str, Any]:
        declared = [{"id": aid.hex(), "size": sum(map(len, chunks)), "chunks": len(chunks)}
                    for aid, chunks in zip(self.sealed.attachment_ids, self.sealed.chunks, strict=True)]
        return {"envelope": crypto.b64encode(self.sealed.envelope), "receipt_code": self.code,
                "language": "fr", "upload_token": crypto.b64encode(self.token),
                "attachments": declared, **changes}

    def start(self, **changes: Any) -> Any:
        return self.client.post("/api/uploads", json=self.body(**changes))

    def put(self, attachment: int, index: int, data: bytes | None = None, token: bytes | None = None,
            content_type: str = "application/octet-stream") -> Any:
        aid = self.sealed.attachment_ids[attachment].hex()
        chunk = self.sealed.chunks[attachment][index] if data is None else data
        headers = {"X-Upload-Token": crypto.b64encode(token or self.token)}
        return self.client.put(f"/api/uploads/{self.report_id}/{aid}/{index}", data=chunk,
                               headers=headers, content_type=content_type)

    def send_all(self) -> Any:
        answer = None
        for a, chunks in enumerate(self.sealed.chunks):
            for i in range(len(chunks)):
                answer = self.put(a, i)
        return answer


def _rows(instance: Created, table: str) -> int:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608  (our own table names)
    finally:
        conn.close()


def _status(instance: Created, code: str) -> store.StatusView | None:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return reports.find_status(conn, instance.config, code)
    finally:
        conn.close()


def test_a_report_is_acknowledged_only_when_every_chunk_is_stored(client: FlaskClient, instance: Created, org_key: crypto.PrivateKey) -> None:
    device = Device(client, _sealed(instance))
    answer = device.start()
    assert answer.status_code == 202
    assert answer.get_json() == {"report_id": device.report_id, "received": [0, 0]}
    steps = []
    for a, chunks in enumerate(device.sealed.chunks):
        for i in range(len(chunks)):
            steps.append((device.put(a, i).status_code, _status(instance, device.code) is None))
    # Three chunks of the photo, one of the voice note: 202 and nothing to find until the
    # last, then 201 and the report exists.
    assert steps == [(202, True), (202, True), (202, True), (201, False)]
    assert _rows(instance, "uploads") == 0 and _rows(instance, "reports") == 1
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        (stored,) = list(store.envelopes(conn))
        chunks = uploads.sealed_attachments(conn, device.report_id)
        one = uploads.sealed_attachment(conn, device.report_id, device.sealed.attachment_ids[0].hex())
    finally:
        conn.close()
    assert stored.channel == "web" and stored.sealed_by == "device"
    opened = crypto.unseal(stored.envelope, org_key)
    entries = att.entries(opened.payload)
    got = [crypto.open_attachment(opened, e, chunks[e.id]) for e in entries if e is not None]
    assert got == [PHOTO, VOICE]
    assert one == b"".join(device.sealed.chunks[0])


def test_retries_change_nothing_and_say_where_the_upload_stands(client: FlaskClient, instance: Created) -> None:
    device = Device(client, _sealed(instance))
    device.start()
    assert device.put(0, 0).status_code == 202
    again = device.put(0, 0)  # the answer was lost; the same chunk again
    assert again.status_code == 202 and again.get_json()["received"] == [1, 0]
    assert device.start().get_json()["received"] == [1, 0]  # a page opened later resumes here
    assert _rows(instance, "attachment_chunks") == 1
    assert device.put(0, 1).get_json()["received"] == [2, 0]
    device.send_all()
    assert _rows(instance, "attachment_chunks") == 4
    # After the end: the opening answers 201 (a lost last answer is recovered this way); a
    # chunk finds no open upload and makes the device ask.
    assert device.start().status_code == 201
    assert device.put(1, 0).status_code == 404
    assert _rows(instance, "reports") == 1 and _rows(instance, "attachment_chunks") == 4


def test_a_gap_is_refused_with_where_to_go_on(client: FlaskClient, instance: Created) -> None:
    device = Device(client, _sealed(instance))
    device.start()
    device.put(0, 0)
    answer = device.put(0, 2)
    assert answer.status_code == 409
    assert answer.get_json()["error"] == "chunk_out_of_order" and answer.get_json()["received"] == [1, 0]
    assert device.put(1, 0).status_code == 202  # each attachment keeps its own order
    assert _rows(instance, "attachment_chunks") == 2


def test_a_stored_chunk_is_never_replaced(client: FlaskClient, instance: Created) -> None:
    device = Device(client, _sealed(instance))
    device.start()
    device.put(0, 0)
    other = bytearray(device.sealed.chunks[0][0])
    other[100] ^= 1
    answer = device.put(0, 0, bytes(other))
    assert answer.status_code == 409 and answer.get_json()["error"] == "chunk_conflict"


@pytest.mark.parametrize("case", ["wrong token", "no token", "short token", "other report"])
def test_chunks_need_the_uploads_token(client: FlaskClient, instance: Created, case: str) -> None:
    device = Device(client, _sealed(instance))
    device.start()
    aid = device.sealed.attachment_ids[0].hex()
    headers = {"wrong token": {"X-Upload-Token": crypto.b64encode(os.urandom(32))},
               "no token": {}, "short token": {"X-Upload-Token": "abc"},
               "other report": {"X-Upload-Token": crypto.b64encode(device.token)}}[case]
    report_id = os.urandom(16).hex() if case == "other report" else device.report_id
    answer = client.put(f"/api/uploads/{report_id}/{aid}/0", data=device.sealed.chunks[0][0],
                        headers=headers, content_type="application/octet-stream")
    assert answer.status_code == 404 and answer.get_json()["error"] == "upload_unknown"
    assert _rows(instance, "attachment_chunks") == 0


@pytest.mark.parametrize(("case", "status", "error"), [
    ("too short", 400, "bad_upload"), ("too long", 400, "bad_upload"),
    ("last chunk of the wrong size", 400, "bad_upload"), ("index past the end", 400, "bad_upload"),
    ("unknown attachment", 400, "bad_upload"), ("JSON body", 400, "bad_request"),
    ("form body", 400, "bad_request"), ("index not a number", 400, "bad_upload"),
])
def test_chunks_of_the_wrong_shape_are_refused(client: FlaskClient, instance: Created, case: str, status: int, error: str) -> None:
    device = Device(client, _sealed(instance))
    device.start()
    good = device.sealed.chunks[0][0]
    token = {"X-Upload-Token": crypto.b64encode(device.token)}
    aid = device.sealed.attachment_ids[0].hex()
    if case == "too short":
        answer = device.put(0, 0, good[:-1])
    elif case == "too long":
        answer = device.put(0, 0, good + b"x")
    elif case == "last chunk of the wrong size":
        device.put(1, 0, device.sealed.chunks[1][0])  # fine; now the photo's end, too big
        answer = device.put(0, 0) and device.put(0, 1) and device.put(0, 2, good)
    elif case == "index past the end":
        answer = client.put(f"/api/uploads/{device.report_id}/{aid}/3", data=good, headers=token,
                            content_type="application/octet-stream")
    elif case == "unknown attachment":
        answer = client.put(f"/api/uploads/{device.report_id}/{'0' * 32}/0", data=good,
                            headers=token, content_type="application/octet-stream")
    elif case == "index not a number":
        answer = client.put(f"/api/uploads/{device.report_id}/{aid}/-1", data=good,
                            headers=token, content_type="application/octet-stream")
    else:
        kind = "application/json" if case == "JSON body" else "application/x-www-form-urlencoded"
        answer = device.put(0, 0, content_type=kind)
    assert (answer.status_code, answer.get_json()["error"]) == (status, error)
    assert _rows(instance, "reports") == 0


def test_the_plain_door_refuses_envelopes_with_attachments_and_the_reverse(client: FlaskClient, instance: Created) -> None:
    sealed = _sealed(instance)
    answer = client.post("/api/reports", json={
        "envelope": crypto.b64encode(sealed.envelope), "receipt_code": receipts.new_code()})
    assert (answer.status_code, answer.get_json()["error"]) == (422, "attachments_missing")
    plain = crypto.seal({"schema": 1, "what": "x"}, instance.config.recipients)
    answer = Device(client, sealed).start(envelope=crypto.b64encode(plain))
    assert (answer.status_code, answer.get_json()["error"]) == (400, "bad_request")
    assert _rows(instance, "uploads") == 0 and _rows(instance, "reports") == 0


def test_limits_are_checked_from_the_declared_sizes(client: FlaskClient, instance: Created) -> None:
    device = Device(client, _sealed(instance))
    limit = instance.config.limits.max_attachment_bytes
    big = att.sealed_size(limit)
    too_big = [{"id": "ab" * 16, "size": big + 16 + 1, "chunks": att.chunk_count(limit + 1)}]
    assert device.start(attachments=too_big).status_code == 413
    just = [{"id": "ab" * 16, "size": big, "chunks": att.chunk_count(limit)}]
    assert device.start(attachments=just).status_code == 202  # the declared shape is what counts
    many = [{"id": f"{i:032x}", "size": 16, "chunks": 1} for i in range(11)]
    assert Device(client, _sealed(instance)).start(attachments=many).status_code == 413


@pytest.mark.parametrize("declared", [
    [], {}, [{"id": "ab" * 16, "size": 16}], [{"id": "ab" * 16, "size": 17, "chunks": 2}],
    [{"id": "AB" * 16, "size": 16, "chunks": 1}], [{"id": "ab" * 16, "size": True, "chunks": 1}],
    [{"id": "ab" * 16, "size": 16, "chunks": 1, "name": "x"}],
    [{"id": "ab" * 16, "size": 16, "chunks": 1}, {"id": "ab" * 16, "size": 16, "chunks": 1}],
])
def test_declarations_out_of_shape_are_refused(client: FlaskClient, instance: Created, declared: Any) -> None:
    answer = Device(client, _sealed(instance)).start(attachments=declared)
    assert (answer.status_code, answer.get_json()["error"]) == (400, "bad_upload")
    assert _rows(instance, "uploads") == 0


def test_replays_and_conflicts_are_refused(client: FlaskClient, instance: Created) -> None:
    sealed = _sealed(instance)
    device = Device(client, sealed)
    device.start()
    replay = Device(client, sealed, token=device.token).start()
    assert (replay.status_code, replay.get_json()["error"]) == (409, "replayed_envelope")
    other_token = Device(client, sealed, code=device.code).start()
    assert other_token.get_json()["error"] == "report_id_conflict"
    fewer = device.start(attachments=device.body()["attachments"][:1])
    assert fewer.get_json()["error"] == "report_id_conflict"
    device.send_all()
    replay = Device(client, sealed, token=device.token).start()
    assert replay.get_json()["error"] == "replayed_envelope"
    assert _rows(instance, "reports") == 1 and _rows(instance, "uploads") == 0


def test_a_receipt_code_already_taken_does_not_say_so(client: FlaskClient, instance: Created) -> None:
    """As for reports without attachments: a refusal would be a way to guess codes."""
    first = Device(client, _sealed(instance))
    first.start()
    same_code = Device(client, _sealed(instance), code=first.code)
    assert same_code.start().status_code == 202  # while the first is still uploading
    assert same_code.start().status_code == 202  # and its retry is a retry
    assert same_code.send_all().status_code == 201
    assert first.send_all().status_code == 201
    assert Device(client, _sealed(instance), code=first.code).start().status_code == 202
    assert _rows(instance, "reports") == 2
    view = _status(instance, first.code)
    assert view is not None and view.report_id == first.report_id  # the code finds the first


def test_opening_an_upload_when_busy_is_503_and_stores_nothing(instance: Created) -> None:
    from contextlib import ExitStack
    from dataclasses import replace

    from intake import capacity, create_app
    from intake.app import GATE
    from intake.config import Capacity

    app = create_app(replace(instance.config, capacity=Capacity(hash_slots=1, wait_seconds=0)))
    client = app.test_client()
    device = Device(client, _sealed(instance))
    gate: capacity.Gate = app.extensions[GATE]
    with ExitStack() as slots:
        slots.enter_context(gate.slot())
        answer = device.start()
    assert (answer.status_code, answer.get_json()["error"]) == (503, "busy")
    assert answer.headers["Retry-After"] and _rows(instance, "uploads") == 0
    assert device.start().status_code == 202


def test_incomplete_uploads_together_are_capped_and_resumes_still_go_through(instance: Created) -> None:
    from dataclasses import replace

    from intake import create_app

    one = sum(len(c) for chunks in _sealed(instance).chunks for c in chunks)
    # Room for two of these uploads at once, not three.
    limits = replace(instance.config.limits, open_upload_bytes=2 * one + one // 2,
                     max_attachment_bytes=one)
    client = create_app(replace(instance.config, limits=limits)).test_client()
    first, second, third = (Device(client, _sealed(instance)) for _ in range(3))
    assert first.start().status_code == 202 and second.start().status_code == 202
    answer = third.start()
    assert (answer.status_code, answer.get_json()["error"]) == (503, "busy")
    assert answer.headers["Retry-After"] == str(uploads.ROOM_RETRY_SECONDS)
    assert _rows(instance, "uploads") == 2  # nothing of the third was stored
    # A device resuming an upload already counted is never held back.
    assert first.start().get_json() == {"report_id": first.report_id, "received": [0, 0]}
    assert first.send_all().status_code == 201
    # The first upload is a report now, so its room is free again.
    assert third.start().status_code == 202 and third.send_all().status_code == 201
    assert _rows(instance, "reports") == 2 and _rows(instance, "uploads") == 1


def test_the_cap_leaves_room_for_two_full_reports(instance: Created) -> None:
    from intake.config import ConfigError, load

    path = instance.config.instance_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert "open_upload_bytes = 1073741824" in text
    path.write_text(text.replace("open_upload_bytes = 1073741824", "open_upload_bytes = 20000000"),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="at least twice"):
        load(instance.config.instance_dir, environ={})


def test_incomplete_uploads_are_purged_and_complete_ones_kept(client: FlaskClient, instance: Created) -> None:
    done, left = Device(client, _sealed(instance)), Device(client, _sealed(instance))
    done.start()
    done.send_all()
    left.start()
    left.put(0, 0)
    assert _rows(instance, "attachment_chunks") == 5
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    hours = instance.config.limits.upload_expiry_hours
    try:
        assert uploads.purge(conn, instance.config, now=reports.utcnow() + timedelta(hours=hours - 1)) == 0
        assert uploads.purge(conn, instance.config, now=reports.utcnow() + timedelta(hours=hours, minutes=2)) == 1
    finally:
        conn.close()
    assert _rows(instance, "uploads") == 0 and _rows(instance, "attachment_chunks") == 4
    assert _rows(instance, "attachments") == 2 and _rows(instance, "reports") == 1
    # The device still holds the report: its next chunk finds no upload, and it starts again.
    assert left.put(0, 1).status_code == 404
    assert left.start().get_json()["received"] == [0, 0]
    assert left.send_all().status_code == 201


# --- Parsers of what devices send: property tests ----------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_DECLARED = st.lists(st.fixed_dictionaries(
    {"id": st.one_of(st.just("ab" * 16), st.text(max_size=33)),
     "size": st.one_of(st.integers(-20, 3 * CHUNK), _JSON),
     "chunks": st.one_of(st.integers(-1, 4), _JSON)},
    optional={"extra": _JSON}), max_size=12)
_BODIES = st.fixed_dictionaries({}, optional={
    "envelope": st.one_of(st.just("AAAA"), _JSON), "receipt_code": st.one_of(st.just("1" * 16), _JSON),
    "sealed_receipt": _JSON, "upload_token": st.one_of(st.just(crypto.b64encode(bytes(32))), _JSON),
    "attachments": st.one_of(_DECLARED, _JSON), "focal_point": _JSON, "signature": _JSON,
})
SMALL = Limits(max_attachment_bytes=2 * CHUNK, max_attachments=5)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(_BODIES, _JSON))
def test_any_opening_body_parses_or_is_refused_by_name(body: Any) -> None:
    try:
        parsed = uploads.parse_upload(body, SMALL)
    except reports.Rejected as exc:
        assert exc.code in {"bad_request", "bad_upload", "too_large", "malformed_envelope"}
        return
    assert 1 <= len(parsed.attachments) <= SMALL.max_attachments and len(parsed.token) == 32
    assert len({a.id for a in parsed.attachments}) == len(parsed.attachments)
    assert sum(att.plain_size(a.sealed_size, a.chunks) for a in parsed.attachments) <= SMALL.max_attachment_bytes


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=12), st.one_of(st.none(), st.text(max_size=60)))
def test_any_chunk_address_parses_or_is_refused_by_name(report_id: str, attachment_id: str, index: str, token: str | None) -> None:
    try:
        address = uploads.parse_chunk(report_id, attachment_id, index, token)
    except reports.Rejected as exc:
        assert exc.code in {"bad_upload", "upload_unknown"}
        return
    assert len(address.token) == 32 and 0 <= address.index < 10**9
    assert len(bytes.fromhex(address.report_id)) == len(bytes.fromhex(address.attachment_id)) == 16


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_BODIES.map(lambda b: json.dumps(b).encode()), st.binary(max_size=512)),
       chunk=st.binary(max_size=300), path=st.sampled_from(["ab" * 16 + "/" + "cd" * 16 + "/0", "x/y/z", "ab" * 16 + "/" + "cd" * 16 + "/99999999999"]))
def test_any_upload_request_gets_a_clear_answer_and_stores_nothing(client: FlaskClient, instance: Created, body: bytes, chunk: bytes, path: str) -> None:
    first = client.post("/api/uploads", data=body, content_type="application/json")
    assert 400 <= first.status_code < 500 and "error" in first.get_json()
    second = client.put(f"/api/uploads/{path}", data=chunk, content_type="application/octet-stream",
                        headers={"X-Upload-Token": crypto.b64encode(bytes(32))})
    assert 400 <= second.status_code < 500
    assert _rows(instance, "uploads") == 0 and _rows(instance, "attachment_chunks") == 0


def test_a_queue_file_carries_attachments_and_imports_once(instance: Created, org_key: crypto.PrivateKey) -> None:
    sealed = _sealed(instance)
    report_id = sealed.envelope[8:24]
    item = Device(None, sealed).body()  # type: ignore[arg-type]
    code = item.pop("receipt_code")
    item.pop("language")
    item["sealed_receipt"] = crypto.b64encode(crypto.seal_receipt(
        code, "fr", report_id=report_id, key=instance.config.receipt_public_key))
    item["chunks"] = [[crypto.b64encode(c) for c in chunks] for chunks in sealed.chunks]
    short = {**item, "chunks": [item["chunks"][0][:-1], item["chunks"][1]]}
    document = json.dumps({"format": "intake-queue", "version": 1, "items": [item, short]}).encode()
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        first = reports.import_queue(conn, instance.config, document)
        again = reports.import_queue(conn, instance.config, document)
        (stored,) = list(store.envelopes(conn))
        chunks = uploads.sealed_attachments(conn, report_id.hex())
    finally:
        conn.close()
    assert (first.stored, first.already, first.refused) == (1, 0, ((1, "bad_upload"),))
    assert (again.stored, again.already) == (0, 1)
    opened = crypto.unseal(stored.envelope, org_key)
    got = [crypto.open_attachment(opened, e, chunks[e.id]) for e in att.entries(opened.payload) if e]
    assert got == [PHOTO, VOICE]


def test_an_officers_fetch_of_an_attachment_is_audited(client: FlaskClient, instance: Created) -> None:
    from intake import audit, cases

    device = Device(client, _sealed(instance))
    device.start()
    device.put(0, 0)
    aid = device.sealed.attachment_ids[0].hex()
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        fetch = {"report_id": device.report_id, "attachment_id": aid, "actor": 1, "now": reports.utcnow()}
        with pytest.raises(cases.CaseNotFound):  # still uploading: not a case yet
            uploads.fetch_for_officer(conn, instance.config, **fetch)  # type: ignore[arg-type]
        device.send_all()
        data = uploads.fetch_for_officer(conn, instance.config, **fetch)  # type: ignore[arg-type]
        with pytest.raises(cases.CaseNotFound):
            uploads.fetch_for_officer(conn, instance.config, **{**fetch, "attachment_id": "0" * 32})  # type: ignore[arg-type]
        actions = [entry.action for entry in audit.entries(conn)]
    finally:
        conn.close()
    assert data == b"".join(device.sealed.chunks[0])
    assert actions == ["attachment_decrypted"]
