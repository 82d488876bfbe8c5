"""No log holds personal data: after every other browser test (this one runs last), a whole
flow of its own against a server it then stops (reports in several languages, with and
without JavaScript; status checks typed in several ways; the officer console from set-up to
an answer the complainant reads), and then a search of every file every test server wrote
(server_logs.py says which, and what is not searched and why) for IP addresses, the
browser's user agent, every receipt code shown, and every marker typed."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from console_pages import CasePage, Console

from intake import receipts

import server_logs
from pages import ReportPage, StatusPage
from support import PASSPHRASE


def _arabic_digits(code: str) -> str:
    return "".join(chr(0x660 + int(ch)) for ch in code)


def _flow(server: Any, browser: Any) -> tuple[set[str], set[str], set[str]]:
    """(user agents, receipt codes, typed markers) of a whole flow against `server`."""
    markers: set[str] = set()
    codes: set[str] = set()

    def marker() -> str:
        markers.add(text := f"marker-{secrets.token_hex(8)}")
        return text

    context = browser.new_context()
    page = context.new_page()
    agents = {page.evaluate("navigator.userAgent")}
    console_messages: list[str] = []
    page.on("console", lambda m: console_messages.append(m.text))
    for lang in ("en", "ar", "sw"):
        report = ReportPage(page, server.url, lang).open()
        report.fill(marker(), place=marker(), contact_how=marker())
        report.send()
        codes.add(receipts.normalise(report.receipt_code()))
    no_script = browser.new_context(java_script_enabled=False)
    report = ReportPage(no_script.new_page(), server.url, "fr").open()
    report.fill(marker(), place=marker())
    report.send()
    codes.add(receipts.normalise(report.receipt_code()))
    no_script.close()

    # Status checks, the codes typed as people type them, and codes that find nothing.
    en, ar, sw, fr = sorted(codes)[:4] if len(codes) == 4 else list(codes)
    status = StatusPage(page, server.url, "en")
    for typed in (receipts.display(en), _arabic_digits(ar), "-".join(sw[i:i + 4] for i in
                                                                      range(0, 16, 4)), fr):
        status.check(typed)
        status.result_title()
    unknown = receipts.new_code()
    codes.add(unknown)
    StatusPage(page, server.url, "fr").check(receipts.display(unknown))
    page.locator(".field.invalid #code-error").wait_for(timeout=30_000)
    page.goto(f"{server.url}/en/no-such-page")
    # A refused API body, a malformed JSON one, and a too large one: error paths log too.
    for body in (b'{"envelope": "AAAA", "receipt_code": "' + unknown.encode() + b'"}', b"{",
                 b"x" * 400_000):
        request = urllib.request.Request(  # noqa: S310  (the test server on loopback)
            f"{server.url}/api/reports", data=body,
            headers={"Content-Type": "application/json", "User-Agent": next(iter(agents))})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=30)  # noqa: S310  (loopback)

    # The console: an administrator adds an officer, who fails a login once, then reads
    # the report, writes a note and answers; the complainant reads the answer.
    admin = Console(browser.new_context().new_page(), server.url)
    admin.log_in("ada", admin.set_up("ada", server.user_add("ada", "admin")))
    setup_code = admin.add_account("olga", "officer")
    officer = Console(browser.new_context().new_page(), server.url, "fr")
    secret = officer.set_up("olga", setup_code)
    officer.page.goto(officer.url("login"))
    officer.page.fill("#username", "olga")
    officer.page.fill("#password", "a wrong password, typed")
    officer.page.fill("#code", "000000")
    officer.page.click("main button[type=submit]")
    officer.log_in("olga", secret)
    case = CasePage(officer.page).open_first_case(officer)
    case.unlock(str(server.created.key_file), PASSPHRASE)
    assert any(m in case.read() for m in markers)
    case.add_note(marker())
    answer = f"Nous avons lu votre rapport {marker()}"
    case.set_status("reviewing", answer)
    officer.page.click(".console-nav form button")  # log out

    status, answered = StatusPage(page, server.url, "fr"), 0
    for code in sorted(codes - {unknown}):
        status.check(receipts.display(code))
        status.result_title()
        answered += answer in page.inner_text("#result")
    assert answered == 1  # the answer reached its complainant, and no one else
    # No page logs a policy error (every Permissions-Policy feature is one Chromium knows).
    assert not [m for m in console_messages if "Permissions-Policy" in m], console_messages
    context.close()
    return agents, codes, markers


@pytest.mark.runs_last
def test_no_log_holds_personal_data(browser: Any, stopped_after: Any, tmp_path: Path) -> None:
    with stopped_after() as server:
        agents, codes, markers = _flow(server, browser)
        # The flow did what it says: every report is stored and opens.
        assert len(json.loads(server.decrypt())) == 4
    # The server has stopped, so its log is complete. Search it and every other server's.
    assert tmp_path / "server" in server_logs.ROOTS
    assert any(path.name == "server.log" for path in server_logs.searched_files())
    assert all("Chrome/" in agent for agent in agents)  # a real user agent was looked for
    found = server_logs.findings(agents=agents, codes=codes, markers=markers)
    assert not found, "personal data in server logs:\n" + "\n".join(found[:50])


def test_the_search_finds_each_kind_of_trace(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The search itself, on a server folder that holds one of everything it looks for."""
    code = receipts.new_code()
    agent = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0.0.0 Safari/537.36"
    lines = {
        "2026-01-01 10:00:00,000 INFO waitress: Serving on http://127.0.0.1:8000": None,
        "GET /en/ from 127.0.0.1": "IP address 127.0.0.1",
        "client 203.0.113.9 said hello": "IP address 203.0.113.9",
        "peer [2001:db8::42]:443": "IP address 2001:db8::42",
        "loopback ::1 closed": "IP address ::1",
        f"agent {agent}": "user agent",
        f"code {_arabic_digits(code[:8])}-{code[8:]}": f"receipt code {code}",
        "what: marker-0123456789abcdef": "typed text marker-0123456789abcdef",
        "at 10:00:00 nothing happened (version 3.0.2)": None,
    }
    server = tmp_path / "server"
    (server / "tmp").mkdir(parents=True)
    (server / "intake.db").write_bytes(b"127.0.0.1 in ciphertext is noise")
    monkeypatch.setattr(server_logs, "ROOTS", [server])
    monkeypatch.setattr(server_logs, "CODES", set())
    for number, (line, expected) in enumerate(lines.items()):
        (server / "tmp" / f"{number}.log").write_text(line + "\n", encoding="utf-8")
        found = server_logs.findings(agents={agent}, codes={code}, markers=set())
        found = [f for f in found if f"{number}.log" in f]
        if expected is None:
            assert found == [], line
        else:
            assert any(expected in f for f in found), (line, found)
