"""The officer console in a real Chromium against a real `intake serve`: an administrator
adds an officer, who enrols TOTP, reads a French report decrypted in the browser, triages
it and answers; the complainant sees the answer in French. The key never leaves the
officer's browser, a colleague without the key file reads nothing, and hostile content is
shown inert."""

from __future__ import annotations

import json
import secrets
import urllib.request
from typing import Any

from console_pages import CasePage, Console

from intake import crypto, receipts

from pages import ReportPage, StatusPage
from support import PASSPHRASE, translate


def _recorder(page: Any) -> list[bytes]:
    """Every request the page sends: URL, headers and body, as bytes."""
    sent: list[bytes] = []

    def record(request: Any) -> None:
        headers = json.dumps(request.headers).encode()
        sent.append(request.url.encode() + b"\n" + headers + b"\n" + (request.post_data_buffer or b""))

    page.on("request", record)
    return sent


def _admin(server: Any, browser: Any) -> Console:
    page = browser.new_context().new_page()
    console = Console(page, server.url)
    secret = console.set_up("ada", server.user_add("ada", "admin"))
    console.log_in("ada", secret)
    return console


def _officer(server: Any, browser: Any, admin: Console, name: str) -> tuple[Console, list[bytes]]:
    code = admin.add_account(name, "officer")
    page = browser.new_context().new_page()
    sent = _recorder(page)
    console = Console(page, server.url)
    secret = console.set_up(name, code)
    SECRETS[id(console)] = secret
    console.log_in(name, secret)
    return console, sent


SECRETS: dict[int, bytes] = {}


def officer_secret(console: Console) -> bytes:
    return SECRETS[id(console)]


def test_officer_reads_triages_and_answers_a_french_report(live_server: Any, browser: Any) -> None:
    marker = f"marker-{secrets.token_hex(8)}"
    reporter = browser.new_context().new_page()
    report = ReportPage(reporter, live_server.url, "fr").open()
    report.fill(f"{marker} ce qui s'est passé", place="Bria")
    report.choose("consent_refer-1").choose("consent_statistics-1")
    report.send()
    code = receipts.normalise(report.receipt_code())

    admin = _admin(live_server, browser)
    officer, sent = _officer(live_server, browser, admin, "olga")
    case = CasePage(officer.page).open_first_case(officer)
    case.unlock(str(live_server.created.key_file), PASSPHRASE)
    content = case.read()
    assert marker in content
    # The complainant's consent, read in the browser, is now recorded on the server.
    officer.page.locator("#consent-refer", has_text="agreed").wait_for(timeout=30_000)

    note = f"note-{secrets.token_hex(8)}"
    case.add_note(note)
    case.triage(allegation="abuse_assault", victim_age="adult", personnel="military",
                mission="MINUSCA", risk="high", priority="high")
    assert officer.page.input_value("#t-allegation") == "abuse_assault"
    case.refer("Centre de santé", "2026-11-27")
    assert "Centre de santé" in officer.page.inner_text("#referrals")
    message = f"Nous avons lu votre rapport {secrets.token_hex(4)}."
    case.set_status("reviewing", message)
    assert message in officer.page.inner_text("#complainant-timeline")

    # The complainant's status page, in French, shows the new status and the message.
    status = StatusPage(reporter, live_server.url, "fr")
    status.check(code)
    assert status.result_title() == translate(
        "fr", "Status: %(status)s", status=translate("fr", "Being reviewed"))
    assert message in reporter.inner_text("#result")

    # Nothing the officer's browser sent holds the key file, its passphrase or the key.
    key_file = live_server.created.key_file.read_bytes()
    document = json.loads(key_file)
    private = crypto.read_key_file(key_file, PASSPHRASE)
    scalar = private._key.private_numbers().private_value.to_bytes(32, "big")
    secrets_of_key = [
        PASSPHRASE.encode(), document["ciphertext"].encode(), document["kdf"]["salt"].encode(),
        scalar, scalar.hex().encode(), crypto.b64encode(scalar).encode(),
    ]
    assert len(sent) > 10
    for request in sent:
        for secret in secrets_of_key:
            assert secret not in request, "key material or passphrase left the browser"
        assert marker.encode() not in request and note.encode() not in request

    # No plaintext of the report or the note anywhere the server wrote.
    for path in live_server.written_files():
        data = path.read_bytes()
        assert marker.encode() not in data and note.encode() not in data, path

    # A colleague without the key file cannot read the content.
    other, _ = _officer(live_server, browser, admin, "omar")
    second = CasePage(other.page).open_first_case(other)
    second.page.click("#read-button")
    second.page.wait_for_selector("#read-state:not(.hidden)")
    assert marker not in other.page.content()
    assert other.page.is_hidden("#report-content")


XSS = [
    "<script>window.__xss = 1</script>",
    "<img src=x onerror=\"window.__xss = 1\">",
    "\"><svg onload=\"window.__xss = 1\"></svg>",
    "javascript:window.__xss=1",
    "<a href=\"javascript:window.__xss = 1\">click</a>",
]


def test_hostile_report_content_is_shown_inert(live_server: Any, browser: Any) -> None:
    config = live_server.created.config
    payload: dict[str, object] = {
        "schema": 1, "language": "en", "what": " ".join(XSS),
        "place": XSS[1], "perpetrator_name": XSS[2], "reporter": XSS[0],
        "help": XSS, XSS[1]: XSS[3], "consent_refer": XSS[4],
    }
    envelope = crypto.seal(payload, config.recipients)
    body = json.dumps({"envelope": crypto.b64encode(envelope),
                       "receipt_code": receipts.new_code(), "language": "en"}).encode()
    request = urllib.request.Request(  # noqa: S310  (the test server on loopback)
        f"{live_server.url}/api/reports", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  (loopback)
        assert answer.status == 201

    admin = _admin(live_server, browser)
    officer, _ = _officer(live_server, browser, admin, "olga")
    dialogs: list[str] = []
    officer.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    case = CasePage(officer.page).open_first_case(officer)
    case.unlock(str(live_server.created.key_file), PASSPHRASE)
    text = case.read()
    # Shown as text, character for character, and nothing ran or was made into an element.
    assert XSS[0] in text and XSS[1] in text
    assert officer.page.evaluate("window.__xss") is None
    assert officer.page.locator("#report-content script, #report-content img, "
                                "#report-content svg, #report-content a").count() == 0
    assert dialogs == []

    # Logging out forgets the unlocked key: after logging in again it must be unlocked anew.
    officer.page.click(".console-nav form button")
    officer.page.wait_for_selector("#username")
    officer.log_in("olga", officer_secret(officer))
    CasePage(officer.page).open_first_case(officer)
    officer.page.wait_for_selector("#key-unlock:not(.hidden)")
    assert officer.page.is_hidden("#key-forget")
