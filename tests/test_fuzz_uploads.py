"""Property tests for the chunk upload of reports with attachments (SECURITY.md, Formats 14;
tests/fuzz.py says how targets are built and run): the opening body, and sequences of chunk
requests checked against a model of what the server must have stored after each one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from intake import crypto, receipts
from intake.attachments import CHUNK_SIZE
from intake.report.api import ERRORS

from fuzz import ANY_TEXT, JSON_VALUES, MATERIAL, Harness, Target, b64, faults, mutated, run

SIZES = st.sampled_from((0, 1, 100, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 5))


@dataclass
class Sealed:
    """A report with attachments sealed now, as a phone seals it, and its upload token."""

    report: crypto.SealedReport
    token: bytes
    code: str

    @classmethod
    def make(cls, sizes: list[int]) -> Sealed:
        files = [crypto.NewAttachment(f"f{i}.bin", "application/octet-stream", os.urandom(n))
                 for i, n in enumerate(sizes)]
        report = crypto.seal_report({"schema": 1, "language": "en"}, [MATERIAL.org.public_key],
                                    files)
        return cls(report, os.urandom(32), receipts.new_code())

    @property
    def report_id(self) -> str:
        return self.report.envelope[8:24].hex()

    def declared(self) -> list[dict[str, Any]]:
        return [{"id": aid.hex(), "size": sum(map(len, chunks)), "chunks": len(chunks)}
                for aid, chunks in zip(self.report.attachment_ids, self.report.chunks,
                                       strict=True)]

    def body(self) -> dict[str, Any]:
        return {"envelope": crypto.b64encode(self.report.envelope), "receipt_code": self.code,
                "language": "en", "upload_token": crypto.b64encode(self.token),
                "attachments": self.declared()}


def _rows(h: Harness, report_id: str) -> tuple[int, int, int]:
    """(upload rows, chunk rows, report rows) of one report id."""
    return tuple(int(h.conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?",  # noqa: S608
                                    (report_id,)).fetchone()[0])
                 for table, column in (("uploads", "report_id"),
                                       ("attachment_chunks", "report_id"),
                                       ("reports", "id")))  # type: ignore[return-value]


# --- The opening body -------------------------------------------------------------------------


@st.composite
def openings(draw: st.DrawFn) -> tuple[list[int], frozenset[str], Any]:
    """(attachment sizes, faults, a source of drawn values for the faults)."""
    sizes = draw(st.lists(SIZES, min_size=1, max_size=3))
    wrong = draw(faults("size", "chunks", "id", "twice", "token", "envelope", "member", "type",
                        "many", "raw", "plain"))
    return sizes, wrong, draw(st.data())


def check_opening(h: Harness, example: tuple[list[int], frozenset[str], Any]) -> None:
    sizes, wrong, data = example
    sealed = Sealed.make(sizes)
    body = sealed.body()
    declared = body["attachments"]
    if "size" in wrong:
        declared[0]["size"] += data.draw(st.sampled_from((-17, -16, -1, 1, 16, CHUNK_SIZE, 2**64)))
    if "chunks" in wrong:
        declared[0]["chunks"] = data.draw(st.sampled_from((0, -1, 2, 10**9, 2**64)))
    if "id" in wrong:
        declared[0]["id"] = data.draw(st.sampled_from(("", "AB" * 16, "0" * 31, "g" * 32)) |
                                      ANY_TEXT)
    if "twice" in wrong:
        declared.append(dict(declared[0]))
    if "token" in wrong:
        body["upload_token"] = data.draw(b64(data.draw(st.binary(max_size=40))))
    if "envelope" in wrong:
        body["envelope"] = crypto.b64encode(data.draw(mutated(sealed.report.envelope)))
    if "member" in wrong:
        body[data.draw(st.sampled_from(("attachments", "upload_token", "chunks")) | ANY_TEXT)] = \
            data.draw(JSON_VALUES)
    if "type" in wrong:
        declared[0][data.draw(st.sampled_from(("size", "chunks", "id")))] = data.draw(
            st.sampled_from((True, 1.0, "1", None, [])))
    if "many" in wrong:
        body["attachments"] = declared * 11  # over limits.max_attachments
    if "plain" in wrong:
        # A report without attachments, sent through the upload door.
        body["envelope"] = crypto.b64encode(crypto.seal({"schema": 1, "what": "x"},
                                                        [MATERIAL.org.public_key]))
    raw = data.draw(st.binary(max_size=64)) if "raw" in wrong else json.dumps(body).encode()
    before = h.fingerprint()
    answer = h.client.post("/api/uploads", data=raw, content_type="application/json")
    assert answer.status_code in {201, 202, 400, 403, 404, 409, 413, 422}, answer.status_code
    doc = answer.get_json()
    if answer.status_code == 202:
        # The id the header names: a fault may have changed it, which only a key would see.
        report_id = crypto.b64decode(body["envelope"])[8:24].hex()
        assert doc["report_id"] == report_id and set(doc["received"]) == {0}
        assert _rows(h, report_id) == (1, 0, 0)
    else:
        assert answer.status_code != 201, "nothing was sent, so nothing can be complete"
        assert doc["error"] in ERRORS and doc["message"]
        assert h.fingerprint() == before, "a refused opening changed the database"


# --- Chunks, against a model ------------------------------------------------------------------


OPS = st.lists(st.tuples(
    st.integers(0, 2),  # which attachment
    st.integers(-1, 3),  # which chunk, relative to the next one the server expects
    st.sampled_from(("", "", "", "", "token", "type", "length", "flip", "path", "no token")),
), min_size=1, max_size=12)


@st.composite
def uploads(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, int, str]], bool]:
    """(attachment sizes, chunk requests, finish with every chunk sent in order)."""
    return (draw(st.lists(SIZES, min_size=1, max_size=3)), draw(OPS), draw(st.booleans()))


def check_chunks(h: Harness, example: tuple[list[int], list[tuple[int, int, str]], bool]) -> None:
    sizes, ops, finish = example
    sealed = Sealed.make(sizes)
    chunks = sealed.report.chunks
    opened = h.client.post("/api/uploads", json=sealed.body())
    assert opened.status_code == 202, opened.get_json()
    stored = [0] * len(chunks)  # the model: chunks stored, per attachment
    kept: dict[tuple[int, int], bytes] = {}  # and the bytes stored for each
    complete = False

    def put(a: int, index: int, fault: str = "") -> tuple[int, dict[str, Any], bytes]:
        aid = sealed.report.attachment_ids[a].hex()
        data = chunks[a][min(index, len(chunks[a]) - 1)] if index >= 0 else b"x"
        headers = {"X-Upload-Token": crypto.b64encode(sealed.token)}
        path = f"/api/uploads/{sealed.report_id}/{aid}/{index}"
        content_type = "application/octet-stream"
        if fault == "token":
            headers["X-Upload-Token"] = crypto.b64encode(os.urandom(32))
        elif fault == "no token":
            del headers["X-Upload-Token"]
        elif fault == "type":
            content_type = "application/json"
        elif fault == "length":
            data = data + b"\0"
        elif fault == "flip":
            data = bytes([data[0] ^ 1]) + data[1:]
        elif fault == "path":
            path = f"/api/uploads/{sealed.report_id}/{'0' * 32}/{index}"
        answer = h.client.put(path, data=data, headers=headers, content_type=content_type)
        assert answer.status_code < 500, answer.status_code
        return answer.status_code, answer.get_json() or {}, data

    for a, offset, fault in ops:
        a %= len(chunks)
        index = stored[a] + offset
        if index < 0 or index >= len(chunks[a]):
            index = max(0, min(index, len(chunks[a]) - 1))
        before = _rows(h, sealed.report_id)
        status, doc, sent = put(a, index, fault)
        if complete:
            # The upload is a report now: a chunk for it finds no open upload.
            assert (status, doc.get("error")) in {(404, "upload_unknown"), (400, "bad_request")}
            continue
        if fault in ("token", "no token"):
            expected: tuple[int, str | None] = (404, "upload_unknown")
        elif fault == "type":
            expected = (400, "bad_request")
        elif fault in ("length", "path"):
            expected = (400, "bad_upload")
        elif index > stored[a]:
            expected = (409, "chunk_out_of_order")
        elif index < stored[a] and kept[(a, index)] != sent:
            expected = (409, "chunk_conflict")  # a chunk stored is never replaced
        else:
            if index == stored[a]:
                kept[(a, index)] = sent  # a flipped one too: only a key can tell
                stored[a] += 1
            complete = stored == [len(c) for c in chunks]
            expected = (201, None) if complete else (202, None)
        assert (status, doc.get("error")) == expected, (fault, index, stored, status, doc)
        if status >= 400:
            assert _rows(h, sealed.report_id) == before, "a refused chunk changed the upload"
        else:
            assert _rows(h, sealed.report_id) == ((0, sum(stored), 1) if complete
                                                  else (1, sum(stored), 0))
    if finish and not complete:
        for a, attachment in enumerate(chunks):
            for index in range(stored[a], len(attachment)):
                status, _, _ = put(a, index)
                stored[a] += 1
        assert status == 201 and _rows(h, sealed.report_id) == (0, sum(stored), 1)


TARGETS = (
    Target("upload opening", openings(), check_opening),
    Target("chunk upload", uploads(), check_chunks),
)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_property(target: Target, fuzz_harness: Harness) -> None:
    run(target, fuzz_harness, examples=25)
