"""Every crash the fuzzing found (tests/fuzz.py), as the smallest input that caused it.

Each test names the target that found it and what went wrong; the fix is in its own commit.
"""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from intake import crypto, receipts, reports, store
from intake.instance import Created


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
