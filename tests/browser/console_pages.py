"""Page objects for the officer console, one per screen."""

from __future__ import annotations

import base64
import time
from typing import Any

from intake import crypto

PASSWORD = "a long officer passphrase 7"


def _secret(text: str) -> bytes:
    raw = text.replace(" ", "")
    return base64.b32decode(raw + "=" * (-len(raw) % 8))


_USED: dict[bytes, int] = {}  # the last time step each secret's code was used


def code_now(secret: bytes, steps_ahead: int = 0) -> str:
    """The authenticator's code, a step ahead if asked (accepted as clock drift), so that a
    login right after set-up does not reuse its code, which the server refuses. If that step
    was used already, wait for the next one, as a person would."""
    step = int(time.time()) // crypto.TOTP_STEP + steps_ahead
    if step <= _USED.get(secret, -1):
        time.sleep(crypto.TOTP_STEP - time.time() % crypto.TOTP_STEP + 0.1)
        step = int(time.time()) // crypto.TOTP_STEP + steps_ahead
    _USED[secret] = step
    return crypto.totp_code(secret, at=step * crypto.TOTP_STEP)


class Console:
    def __init__(self, page: Any, base: str, lang: str = "en") -> None:
        self.page, self.base, self.lang = page, base, lang

    def url(self, path: str) -> str:
        return f"{self.base}/{self.lang}/console/{path}"

    def set_up(self, username: str, setup_code: str, password: str = PASSWORD) -> bytes:
        """Choose a password, read the key under the QR code, confirm; returns the secret."""
        page = self.page
        page.goto(self.url("setup"))
        page.fill("#username", username)
        page.fill("#setup_code", setup_code)
        page.fill("#password", password)
        page.fill("#password_again", password)
        page.click("main button[type=submit]")
        assert page.locator("figure.qr svg").count() == 1
        caption = page.inner_text("figure.qr figcaption")
        secret = _secret(caption.split(":", 1)[1].strip())
        page.fill("#code", code_now(secret))
        page.click("main button[type=submit]")
        page.wait_for_selector("a.button")
        return secret

    def log_in(self, username: str, secret: bytes, password: str = PASSWORD) -> None:
        page = self.page
        page.goto(self.url("login"))
        page.fill("#username", username)
        page.fill("#password", password)
        page.fill("#code", code_now(secret, 1))
        page.click("main button[type=submit]")
        page.wait_for_selector(".console-nav")

    def add_account(self, username: str, role: str) -> str:
        page = self.page
        page.goto(self.url("users"))
        page.fill("#new-username", username)
        page.check(f"#role-{role}")
        page.click("main form[action$='/users'] button[type=submit]")
        return str(page.inner_text("#setup-code")).strip()


class CasePage:
    def __init__(self, page: Any) -> None:
        self.page = page

    def open_first_case(self, console: Console) -> CasePage:
        console.page.goto(console.url("cases"))
        console.page.click("table.cases tbody a")
        console.page.wait_for_selector("#read-button")
        return self

    def unlock(self, key_file: str, passphrase: str) -> None:
        self.page.set_input_files("#key-file", key_file)
        self.page.fill("#key-passphrase", passphrase)
        self.page.click("#key-unlock-button")
        self.page.wait_for_selector("#key-forget:not(.hidden)")

    def read(self) -> str:
        self.page.click("#read-button")
        self.page.wait_for_selector("#report-content:not(.hidden)", timeout=30_000)
        text: str = self.page.inner_text("#report-content")
        return text

    def read_state(self) -> str:
        text: str = self.page.inner_text("#read-state")
        return text

    def add_note(self, text: str) -> None:
        self.page.fill("#note-text", text)
        self.page.click("#note-add")
        self.page.locator("#notes-list .note-text", has_text=text).wait_for(timeout=30_000)

    def triage(self, **choices: str) -> None:
        for name, value in choices.items():
            self.page.select_option(f"#t-{name}", value)
        self.page.click("#triage button[type=submit]")
        self.page.wait_for_load_state()

    def set_status(self, status: str, message: str = "", outcome: str = "") -> None:
        self.page.select_option("#s-status", status)
        if outcome:
            self.page.select_option("#s-outcome", outcome)
        self.page.fill("#s-message", message)
        self.page.click("#status button[type=submit]")
        self.page.wait_for_load_state()

    def refer(self, service: str, on: str) -> None:
        self.page.fill("#r-service", service)
        self.page.fill("#r-date", on)
        self.page.click("#referrals button[type=submit]")
        self.page.wait_for_load_state()
