"""Page objects: one per screen, so that a change of markup touches one place."""

from __future__ import annotations

from typing import Any


class ReportPage:
    def __init__(self, page: Any, base: str, lang: str) -> None:
        self.page, self.base, self.lang = page, base, lang

    def open(self) -> ReportPage:
        self.page.goto(f"{self.base}/{self.lang}/")
        return self

    def fill(self, what: str, **fields: str) -> ReportPage:
        self.page.fill("#what", what)
        for name, value in fields.items():
            self.page.fill(f"#{name}", value)
        return self

    def choose(self, field_id: str) -> ReportPage:
        self.page.check(f"#{field_id}")
        return self

    def send(self) -> None:
        self.page.click("#send")

    def receipt_code(self) -> str:
        code = self.page.locator("#receipt-code")
        code.wait_for(state="visible", timeout=30_000)
        text: str = code.inner_text()
        return text

    def field_value(self, name: str) -> str:
        value: str = self.page.input_value(f"#{name}")
        return value


class StatusPage:
    def __init__(self, page: Any, base: str, lang: str) -> None:
        self.page, self.base, self.lang = page, base, lang

    def check(self, code: str) -> None:
        self.page.goto(f"{self.base}/{self.lang}/status")
        self.page.fill("#code", code)
        self.page.click("#status-form button")

    def result_title(self) -> str:
        title = self.page.locator("#result-title")
        title.wait_for(state="visible", timeout=30_000)
        text: str = title.inner_text()
        return text

    def error(self) -> str:
        text: str = self.page.locator("#code-error").inner_text()
        return text
