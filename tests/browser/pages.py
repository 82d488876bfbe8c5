"""Page objects: one per screen, so that a change of markup touches one place."""

from __future__ import annotations

from typing import Any

import server_logs


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
        server_logs.shown(text)  # no log may hold it (test_logs.py)
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


class QueueControl:
    """The "reports waiting to be sent" control, on the report, status, offline and focal pages."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def visible(self) -> bool:
        shown: bool = self.page.locator("#queue").is_visible()
        return shown

    def expect_waiting(self, text: str, timeout: int = 10_000) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#queue-waiting")).to_have_text(text, timeout=timeout)

    def wait_until_empty(self, timeout: int = 30_000) -> None:
        self.page.locator("#queue").wait_for(state="hidden", timeout=timeout)

    def send_now(self) -> None:
        self.page.click("#send-now")


class DeviceReportPage(ReportPage):
    """The report form's screens that exist only with the device-side queue: receipt state,
    key-change warning, focal-point banner, "Next person" and quick exit."""

    def delivery(self) -> str:
        text: str = self.page.locator("#delivery").inner_text()
        return text

    def wait_for_delivery(self, text: str, timeout: int = 30_000) -> None:
        self.page.locator("#delivery", has_text=text).wait_for(timeout=timeout)

    def focal_banner(self) -> str:
        banner = self.page.locator("#focal-banner")
        banner.wait_for(state="visible", timeout=10_000)
        text: str = banner.inner_text()
        return text

    def next_person(self) -> None:
        self.page.click("#next-person")

    def form_visible(self) -> bool:
        shown: bool = self.page.locator("#report-form").is_visible()
        return shown

    def receipt_visible(self) -> bool:
        shown: bool = self.page.locator("#done").is_visible()
        return shown

    def key_warning_fingerprints(self) -> list[str]:
        self.page.locator("#key-warning").wait_for(state="visible", timeout=10_000)
        texts: list[str] = self.page.locator("#key-warning-list .fingerprint").all_inner_texts()
        return texts

    def key_warning_visible(self) -> bool:
        shown: bool = self.page.locator("#key-warning").is_visible()
        return shown

    def send_anyway(self) -> None:
        self.page.click("#keys-accept")

    def dont_send(self) -> None:
        self.page.click("#keys-reject")

    def form_status(self) -> str:
        text: str = self.page.locator("#form-status").inner_text()
        return text

    def quick_exit(self) -> None:
        self.page.click("#quick-exit")


class FocalPage:
    def __init__(self, page: Any, base: str, lang: str) -> None:
        self.page, self.base, self.lang = page, base, lang

    def open(self) -> FocalPage:
        self.page.goto(f"{self.base}/{self.lang}/focal")
        return self

    def enrol(self, code: str) -> None:
        self.page.fill("#enrolment_code", code)
        self.page.click("#enrol-button")

    def state(self, has_text: str) -> str:
        state = self.page.locator("#focal-state", has_text=has_text)
        state.wait_for(timeout=30_000)
        text: str = state.inner_text()
        return text

    def enrol_error(self) -> str:
        error = self.page.locator("#enrol-status")
        error.wait_for(state="visible", timeout=30_000)
        text: str = error.inner_text()
        return text

    def export(self) -> Any:
        """Saves the queue file; returns Playwright's Download."""
        with self.page.expect_download() as info:
            self.page.click("#export")
        return info.value


class OfflineStatusPage(StatusPage):
    def offline_note(self) -> str:
        note = self.page.locator("#offline-note")
        note.wait_for(state="visible", timeout=10_000)
        text: str = note.inner_text()
        return text


class LanguagePicker:
    """The language links at the top of every page."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def pick(self, lang: str) -> None:
        self.page.click(f"nav.langs a[hreflang='{lang}']")
        self.page.wait_for_url(f"**/{lang}/**")
