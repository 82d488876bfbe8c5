"""Property tests for the officer console's JSON bodies (consent.json and notes.json), as a
logged-in officer would send them with a CSRF token: never a 5xx, and nothing stored unless
the answer says so (tests/fuzz.py says how targets are built and run)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import pytest
from hypothesis import strategies as st

from intake import crypto

from fuzz import ANY_TEXT, JSON_VALUES, MATERIAL, Harness, Target, b64, faults, mutated, run
from support import seal_note


@st.composite
def case_paths(draw: st.DrawFn, wrong: frozenset[str]) -> str | None:
    """None for the harness's own case, else another case id or something that is not one."""
    if "case" not in wrong:
        return None
    return draw(st.sampled_from(("0" * 32, "g" * 32, "AB" * 16, "x")) |
                st.text("0123456789abcdef", min_size=31, max_size=33))


@st.composite
def consent_bodies(draw: st.DrawFn) -> tuple[str | None, bool, bytes]:
    """(case, send the CSRF token, body): the three answers as booleans, with a few faults."""
    wrong = draw(faults("value", "missing", "member", "raw", "case", "token"))
    body: dict[str, Any] = {name: draw(st.booleans()) for name in ("refer", "share",
                                                                   "statistics")}
    if "value" in wrong:
        body[draw(st.sampled_from(sorted(body)))] = draw(
            st.sampled_from((0, 1, "true", None, [], {})) | JSON_VALUES)
    if "missing" in wrong:
        del body[draw(st.sampled_from(sorted(body)))]
    if "member" in wrong:
        body[draw(ANY_TEXT)] = draw(JSON_VALUES)
    raw = draw(st.binary(max_size=64) | JSON_VALUES.map(json.dumps).map(str.encode)) \
        if "raw" in wrong else json.dumps(body).encode()
    return draw(case_paths(wrong)), "token" not in wrong, raw


def _post(h: Harness, endpoint: str, case: str | None, token: bool, raw: bytes) -> Any:
    path = f"/en/console/cases/{case or h.case_id}/{endpoint}"
    headers = {"X-CSRFToken": h.officer_token} if token else {}
    return h.officer.post(path, data=raw, content_type="application/json", headers=headers)


def check_consent(h: Harness, example: tuple[str | None, bool, bytes]) -> None:
    case, token, raw = example
    before, entries = h.fingerprint(), h.count("audit_log")
    answer = _post(h, "consent.json", case, token, raw)
    assert answer.status_code in {200, 400, 404}, answer.status_code
    if answer.status_code == 200:
        assert answer.get_json() == {"ok": True}
        assert h.count("audit_log") == entries + 1
        body = json.loads(raw)
        stored = h.conn.execute(
            "SELECT consent_refer, consent_share, consent_statistics FROM reports WHERE id = ?",
            (case or h.case_id,)).fetchone()
        assert stored == tuple(int(body[n]) for n in ("refer", "share", "statistics"))
    else:
        assert h.fingerprint() == before


@st.composite
def notes(draw: st.DrawFn) -> tuple[str | None, bool, frozenset[str], str, Any]:
    wrong = draw(faults("note", "b64", "member", "raw", "case", "token", "bound"))
    text = draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=30))
    # How to spoil the note, drawn now and applied to the note the check seals.
    spoil = draw(st.data()) if wrong & {"note", "b64", "member", "raw"} else None
    return draw(case_paths(wrong)), "token" not in wrong, wrong, text, spoil


def check_note(h: Harness, example: tuple[str | None, bool, frozenset[str], str, Any]) -> None:
    case, token, wrong, text, spoil = example
    bound = "0" * 32 if "bound" in wrong else h.case_id
    sealed = seal_note(text, [MATERIAL.org.public_key], bound)
    body: Any = {"envelope": crypto.b64encode(sealed)}
    if "note" in wrong:
        body["envelope"] = crypto.b64encode(spoil.draw(mutated(sealed)))
    if "b64" in wrong:
        body["envelope"] = spoil.draw(b64(sealed))
    if "member" in wrong:
        body[spoil.draw(st.sampled_from(("envelope", "note")) | ANY_TEXT)] = spoil.draw(
            JSON_VALUES)
    raw = json.dumps(body).encode()
    if "raw" in wrong:
        raw = spoil.draw(st.binary(max_size=64) | JSON_VALUES.map(json.dumps).map(str.encode))
    before, count, entries = h.fingerprint(), h.count("notes"), h.count("audit_log")
    answer = _post(h, "notes.json", case, token, raw)
    assert answer.status_code in {201, 400, 404}, answer.status_code
    if answer.status_code == 201:
        assert h.count("notes") == count + 1 and h.count("audit_log") == entries + 1
        stored = h.conn.execute("SELECT report_id FROM notes WHERE id = ?",
                                (answer.get_json()["id"],)).fetchone()
        assert stored == (case or h.case_id,)
        # The server cannot check the AEAD, but the header it checked binds the note here.
        assert crypto.b64decode(json.loads(raw)["envelope"])[8:24].hex() == stored[0]
    else:
        assert h.fingerprint() == before


# --- Where the console sends an officer after logging in ------------------------------------


SITE = "https://instance.example/en/console/login"
# A console path with an address of another site hidden in it, in the ways browsers read
# one ("/\t/x" is "//x"), mostly, and any text at all.
HIDDEN = st.builds(
    lambda start, blank, slash, host, rest: start + blank + slash + host + "/console/" + rest,
    st.sampled_from(("/", "/", "/", "//", "", "https:", "/%2F")),
    st.sampled_from(("\t", "\n", "\r", " ", "\x00", "\u3000", "%09", "")),
    st.sampled_from(("/", "/", "\\", "")),
    st.sampled_from(("evil.example", "en", "evil.example:443", "@evil.example")),
    st.sampled_from(("", "cases?status=closed&page=2", "#/x", "?next=//evil.example")),
)
NEXT = st.one_of(HIDDEN, HIDDEN, st.text(st.sampled_from("/\\\t\n\r %.:?#@-~acen\u3000"),
                                         max_size=24), ANY_TEXT)


def check_next(h: Harness, target: str) -> None:
    from intake.casework.access import _safe_next

    safe = _safe_next(target)
    if safe is not None:
        # Read as a browser reads a Location (WHATWG URL: tabs and newlines dropped, "\\"
        # as "/"), it is a page of this instance's console.
        read = "".join(ch for ch in safe if ch not in "\t\n\r").replace("\\", "/")
        joined = urlsplit(urljoin(SITE, read))
        assert (joined.scheme, joined.netloc) == ("https", "instance.example"), safe
        assert "/console/" in joined.path
    answer = h.client.get("/en/console/login", query_string={"next": target})
    assert answer.status_code == 200


# --- The console's addresses and list filters, as an officer might type or edit them --------


SEGMENT = st.one_of(st.sampled_from(("CASE", "1", "0", "-1", "9" * 20, "9" * 9, "%00", "..",
                                     "0" * 32, "é")), st.text(max_size=12))
QUERY = st.dictionaries(
    st.sampled_from(("page", "status", "channel", "language", "assignee", "priority", "overdue",
                     "ref", "error", "out", "next")) | st.text(max_size=6),
    st.sampled_from(("1", "-1", "9" * 30, "closed", "none", "focal", "web", "", "²", "٣")) |
    st.text(max_size=20), max_size=4)


@st.composite
def console_addresses(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    kind = draw(st.sampled_from(("cases", "case", "envelope", "note", "note", "other")))
    # As a browser sends what was typed in the address bar: percent-encoded.
    # The real case mostly, since a malformed case id is refused before anything else.
    case = quote(draw(st.just("CASE") | SEGMENT), safe="")
    number = quote(draw(st.one_of(st.integers(-5, 10**40).map(str),
                                  st.integers(2**63 - 2, 2**64).map(str), SEGMENT)), safe="")
    path = {"cases": "cases", "case": f"cases/{case}", "envelope": f"cases/{case}/envelope",
            "note": f"cases/{case}/notes/{number}/envelope",
            "other": draw(st.sampled_from(("", "account", "settings", "figures", "users",
                                           "login", "reauth", "setup")))}[kind]
    return path, draw(QUERY)


def check_console_address(h: Harness, example: tuple[str, dict[str, str]]) -> None:
    path, query = example
    path = path.replace("CASE", h.case_id)
    answer = h.officer.get(f"/en/console/{path}", query_string=query)
    # 308: Werkzeug's redirect from "cases//envelope" to "cases/envelope".
    assert answer.status_code in {200, 302, 303, 308, 400, 403, 404}, (path, answer.status_code)
    answer.close()


TARGETS = (
    Target("console addresses", console_addresses(), check_console_address),
    Target("console consent.json", consent_bodies(), check_consent),
    Target("console notes.json", notes(), check_note),
    Target("console next", NEXT, check_next),
)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_property(target: Target, fuzz_harness: Harness) -> None:
    run(target, fuzz_harness)
