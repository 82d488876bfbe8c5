"""Offline-queue submissions (sealed receipts), focal points, and queue files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from intake import crypto, focal, receipts, reports, store
from intake import envelope as fmt
from intake.cli import main
from intake.instance import Created


class Tablet:
    """A focal point's tablet, as the browser code behaves (signing in pyca, not WebCrypto)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.id = ""

    def enrol(self, client: FlaskClient, code: str):  # type: ignore[no-untyped-def]
        response = client.post("/api/focal/enrol", json={
            "enrolment_code": code, "public_key": crypto.b64encode(self.public)})
        if response.status_code == 201:
            self.id = response.get_json()["focal_point"]
        return response


def _queued(instance: Created, *, code: str | None = None, lang: str = "fr",
            tablet: Tablet | None = None, what: str = "queued") -> tuple[dict[str, str], str]:
    """A queue item as the browser makes it, and its receipt code."""
    code = code or receipts.new_code()
    data = crypto.seal({"schema": 1, "what": what}, instance.config.recipients)
    report_id = fmt.parse(data, max_size=1 << 20).report_id
    sealed = crypto.seal_receipt(code, lang, report_id=report_id, key=instance.config.receipt_public_key)
    body = {"envelope": crypto.b64encode(data), "sealed_receipt": crypto.b64encode(sealed)}
    if tablet is not None:
        signature = crypto.sign_focal(tablet.key, crypto.focal_message(data, sealed))
        body |= {"focal_point": tablet.id, "signature": crypto.b64encode(signature)}
    return body, code


def _add_point(instance: Created, name: str = "Village A") -> tuple[focal.FocalPoint, str]:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return focal.add(conn, name, now=reports.utcnow())
    finally:
        conn.close()


def _rows(instance: Created) -> list[tuple[str, str, str]]:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return conn.execute("SELECT id, channel, language FROM reports").fetchall()
    finally:
        conn.close()


def _status_found(instance: Created, code: str) -> bool:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        return reports.find_status(conn, instance.config, code) is not None
    finally:
        conn.close()


def test_a_sealed_receipt_works_like_a_plain_one(client: FlaskClient, instance: Created) -> None:
    body, code = _queued(instance, lang="ar")
    first = client.post("/api/reports", json=body)
    assert first.status_code == 201
    (row,) = _rows(instance)
    assert row[1:] == ("web", "ar")
    assert _status_found(instance, code)
    # The queue resends after a lost answer: same answer, nothing new stored.
    again = client.post("/api/reports", json=body)
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert len(_rows(instance)) == 1


def test_a_sealed_receipt_moved_to_another_envelope_is_refused(client: FlaskClient, instance: Created) -> None:
    body, _ = _queued(instance)
    other, _ = _queued(instance)
    moved = {"envelope": other["envelope"], "sealed_receipt": body["sealed_receipt"]}
    response = client.post("/api/reports", json=moved)
    assert response.status_code == 422 and response.get_json()["error"] == "invalid_receipt_code"
    damaged = dict(body, sealed_receipt=body["sealed_receipt"][:-4] + "AAAA")
    assert client.post("/api/reports", json=damaged).status_code == 422
    assert _rows(instance) == []


def test_a_sealed_receipt_with_a_mistyped_code_is_refused(client: FlaskClient, instance: Created) -> None:
    code = receipts.new_code()
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)
    body, _ = _queued(instance, code=typo)
    assert client.post("/api/reports", json=body).get_json()["error"] == "invalid_receipt_code"
    assert _rows(instance) == []


def test_both_or_neither_receipt_form_is_a_bad_request(client: FlaskClient, instance: Created) -> None:
    body, code = _queued(instance)
    assert client.post("/api/reports", json=body | {"receipt_code": code}).status_code == 400
    assert client.post("/api/reports", json={"envelope": body["envelope"]}).status_code == 400
    assert client.post("/api/reports", json=body | {"focal_point": "abcd1234"}).status_code == 400
    assert _rows(instance) == []


def test_focal_point_enrols_once_and_its_reports_carry_its_channel(client: FlaskClient, instance: Created) -> None:
    point, code = _add_point(instance)
    tablet = Tablet()
    enrolled = tablet.enrol(client, code.lower().replace("-", " "))  # typed loosely
    assert enrolled.status_code == 201 and enrolled.get_json() == {"focal_point": point.id, "name": "Village A"}
    assert Tablet().enrol(client, code).status_code == 403  # works once
    body, report_code = _queued(instance, tablet=tablet)
    assert client.post("/api/reports", json=body).status_code == 201
    assert _rows(instance)[0][1] == f"focal:{point.id}"
    assert _status_found(instance, report_code)


def test_a_forged_focal_channel_is_refused(client: FlaskClient, instance: Created) -> None:
    point, code = _add_point(instance)
    tablet = Tablet()
    assert tablet.enrol(client, code).status_code == 201
    impostor = Tablet()
    impostor.id = point.id  # claims the focal point without its key
    forged, _ = _queued(instance, tablet=impostor)
    response = client.post("/api/reports", json=forged)
    assert response.status_code == 403 and response.get_json()["error"] == "focal_point_invalid"
    # A real signature over another envelope does not carry over either.
    real, _ = _queued(instance, tablet=tablet)
    other, _ = _queued(instance)
    assert client.post("/api/reports", json=dict(real, envelope=other["envelope"])).status_code in (403, 422)
    unknown = dict(real, focal_point="00000000")
    assert client.post("/api/reports", json=unknown).status_code == 403
    assert _rows(instance) == []


def test_a_revoked_focal_point_is_refused(client: FlaskClient, instance: Created) -> None:
    point, code = _add_point(instance)
    tablet = Tablet()
    tablet.enrol(client, code)
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        assert focal.revoke(conn, point.id, now=reports.utcnow())
    finally:
        conn.close()
    body, _ = _queued(instance, tablet=tablet)
    assert client.post("/api/reports", json=body).status_code == 403
    assert _rows(instance) == []


def test_enrolment_codes_expire(instance: Created) -> None:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        _, code = focal.add(conn, "Late", now=reports.utcnow() - focal.ENROLMENT_VALID_FOR - timedelta(minutes=1))
        try:
            focal.enrol(conn, code, Tablet().public, now=reports.utcnow())
            raise AssertionError("an expired code enrolled")
        except focal.EnrolmentInvalid:
            pass
    finally:
        conn.close()


def test_enrolment_refuses_bad_input(client: FlaskClient, instance: Created) -> None:
    _, code = _add_point(instance)
    assert client.post("/api/focal/enrol", json={"enrolment_code": code, "public_key": "@@"}).status_code == 400
    bad_point = crypto.b64encode(b"\x04" + b"\x01" * 64)
    assert client.post("/api/focal/enrol", json={"enrolment_code": code, "public_key": bad_point}).status_code == 403
    assert client.post("/api/focal/enrol", json=["x"]).status_code == 400
    # The code survived the malformed attempts and still works.
    assert Tablet().enrol(client, code).status_code == 201


def _queue_file(tmp_path: Path, items: list[object]) -> Path:
    path = tmp_path / "queue.json"
    path.write_text(json.dumps({"format": "intake-queue", "version": 1, "items": items}))
    return path


def test_import_stores_each_item_once(runner: CliRunner, client: FlaskClient, instance: Created, tmp_path: Path) -> None:
    point, code = _add_point(instance)
    tablet = Tablet()
    tablet.enrol(client, code)
    items = [_queued(instance, tablet=tablet, what=f"item {i}")[0] for i in range(3)]
    items.append({"envelope": "broken"})
    path = _queue_file(tmp_path, items)
    args = ["--instance", str(instance.config.instance_dir), "import", str(path)]
    first = runner.invoke(main, args)
    assert first.exit_code == 1 and "3 stored, 0 already there, 1 refused." in first.output
    again = runner.invoke(main, args)
    assert "0 stored, 3 already there, 1 refused." in again.output
    assert [row[1] for row in _rows(instance)] == [f"focal:{point.id}"] * 3


def test_import_refuses_a_file_that_is_not_a_queue(runner: CliRunner, instance: Created, tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"format": "something-else"}')
    result = runner.invoke(main, ["--instance", str(instance.config.instance_dir), "import", str(path)])
    assert result.exit_code == 1 and "is not an intake queue file" in result.output


def test_focal_commands(runner: CliRunner, instance: Created) -> None:
    base = ["--instance", str(instance.config.instance_dir), "focal"]
    added = runner.invoke(main, [*base, "add", "Village B"])
    assert added.exit_code == 0
    code = added.output.strip().splitlines()[-1]
    assert len(code.replace("-", "")) == 26
    listed = runner.invoke(main, [*base, "list"])
    focal_id = listed.output.split()[0]
    assert "waiting" in listed.output and "Village B" in listed.output
    assert runner.invoke(main, [*base, "revoke", focal_id]).exit_code == 0
    assert "revoked" in runner.invoke(main, [*base, "list"]).output
    assert runner.invoke(main, [*base, "revoke", focal_id]).exit_code == 1
