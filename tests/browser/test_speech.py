"""The receipt code read aloud by the device's own voice, never by a network one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from intake import receipts

from harness import static_server
from pages import ReportPage


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_server() as base:
        tab = browser.new_page()
        tab.goto(base + "/")
        yield tab
        tab.close()


def test_digits_are_read_one_by_one_in_groups(page: Any) -> None:
    text = page.evaluate("async (c) => (await import('/static/js/page.js')).spokenText(c)",
                         "4821 0937 5562 1180")
    assert text == "4 8 2 1. 0 9 3 7. 5 5 6 2. 1 1 8 0"


def test_only_a_local_voice_of_the_page_language_is_used(page: Any) -> None:
    chosen = page.evaluate("""async () => {
      const {localVoice} = await import('/static/js/page.js');
      const voices = [
        {name: 'network fr', lang: 'fr-FR', localService: false},
        {name: 'device en', lang: 'en-GB', localService: true},
        {name: 'device fr', lang: 'fr_CA', localService: true},
      ];
      return [localVoice(voices, 'fr'), localVoice(voices, 'sw'), localVoice(voices.slice(0, 1), 'fr')]
        .map((v) => v && v.name);
    }""")
    assert chosen == ["device fr", None, None]


def test_no_button_when_the_device_has_no_voice_for_the_language(live_server: Any, context: Any) -> None:
    tab = context.new_page()
    report = ReportPage(tab, live_server.url, "sw").open()
    report.fill("speech test")
    report.send()
    receipts.normalise(report.receipt_code())
    # This Chromium has no voices at all: the button must stay hidden rather than promise
    # something the phone cannot do.
    assert tab.evaluate("speechSynthesis.getVoices().length") == 0
    assert not tab.locator("#speak-code").is_visible()
