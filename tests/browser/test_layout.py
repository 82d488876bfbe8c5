"""Small screens and right-to-left: at 360 px, the width of a cheap phone, no key control
runs off the screen or sits on another, in any language; Arabic pages run right to left,
mirror what points in a direction, and write numbers in Latin digits (README, Languages)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from intake.config import AVAILABLE_LANGUAGES

from pages import ReportPage

PHONE = {"width": 360, "height": 740}
# What a person must be able to see and press.
KEY_CONTROLS = ", ".join((
    "nav.langs a", "#quick-exit",
    "main input:not([type=hidden]):not([type=radio]):not([type=checkbox])",
    "main select", "main textarea", "label.choice",
    "main button", "main a.button", "#receipt-code",
))
ARABIC_INDIC_DIGITS = re.compile("[\u0660-\u0669\u06f0-\u06f9]")

_BOXES = """(selector) => {
  const out = [];
  const elements = Array.from(document.querySelectorAll(selector));
  for (const el of elements) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;  // not shown
    out.push({
      name: el.id ? '#' + el.id : el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 30) + '"',
      index: elements.indexOf(el),
      left: r.left + scrollX, right: r.right + scrollX, top: r.top + scrollY, bottom: r.bottom + scrollY,
    });
  }
  // Pairs where one element holds the other (a radio inside its label) may overlap.
  const nested = [];
  for (const a of out) for (const b of out) {
    if (a.index < b.index && (elements[a.index].contains(elements[b.index]) || elements[b.index].contains(elements[a.index]))) nested.push([a.index, b.index]);
  }
  return {boxes: out, nested: nested, width: document.documentElement.clientWidth,
          scrollWidth: document.documentElement.scrollWidth};
}"""


def _layout_problems(page: Any) -> list[str]:
    found = page.evaluate(_BOXES, KEY_CONTROLS)
    width, boxes = found["width"], found["boxes"]
    nested = {tuple(pair) for pair in found["nested"]}
    problems = []
    if found["scrollWidth"] > width:
        problems.append(f"the page scrolls sideways: {found['scrollWidth']} px in {width} px")
    for box in boxes:
        if box["left"] < -0.5 or box["right"] > width + 0.5:
            problems.append(f"{box['name']} runs off the screen: {box['left']:.0f} to {box['right']:.0f}")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if (a["index"], b["index"]) in nested:
                continue
            across = min(a["right"], b["right"]) - max(a["left"], b["left"])
            down = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
            if across > 0.5 and down > 0.5:
                problems.append(f"{a['name']} overlaps {b['name']}")
    assert len(boxes) > 8, "the page has lost its controls"
    return problems


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, service_workers="block")
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("lang", AVAILABLE_LANGUAGES)
def test_report_and_status_pages_fit_a_small_phone(shared_server: Any, phone: Any, lang: str) -> None:
    problems = {}
    report = ReportPage(phone, shared_server.url, lang).open()
    problems[f"/{lang}/"] = _layout_problems(phone)
    report.fill("layout")
    report.send()
    report.receipt_code()
    problems[f"/{lang}/, receipt"] = _layout_problems(phone)
    code = phone.locator("#receipt-code")
    assert code.evaluate("(el) => el.scrollWidth <= el.clientWidth"), "the receipt code is cut"
    phone.goto(f"{shared_server.url}/{lang}/status")
    problems[f"/{lang}/status"] = _layout_problems(phone)
    phone.fill("#code", "1234")
    phone.click("#status-form button")  # an error under the field moves nothing onto another
    phone.locator("#code-error").wait_for(state="visible")
    problems[f"/{lang}/status, code refused"] = _layout_problems(phone)
    assert {where: found for where, found in problems.items() if found} == {}


def test_arabic_runs_right_to_left(shared_server: Any, phone: Any) -> None:
    phone.goto(f"{shared_server.url}/ar/")
    assert phone.get_attribute("html", "dir") == "rtl"
    # The start of each line is on the right: labels hug the right edge of the form.
    label = phone.locator("label[for=what]").bounding_box()
    field = phone.locator("#what").bounding_box()
    assert abs((label["x"] + label["width"]) - (field["x"] + field["width"])) < 1
    # A radio button comes first, so on the right of its words.
    radio = phone.locator("#reporter-0").bounding_box()
    words = phone.locator("label[for=reporter-0] span").bounding_box()
    assert radio["x"] > words["x"] + words["width"]
    # The one pictogram that points somewhere (the speech bubble's tail, toward the start
    # of the line) is mirrored; the others are symmetric.
    transforms = phone.evaluate("""() => Object.fromEntries(Array.from(
      document.querySelectorAll('svg.icon'), (el) => [el.classList[1], getComputedStyle(el).transform]))""")
    assert transforms.pop("icon-what").startswith("matrix(-1, 0, 0, 1,")
    assert set(transforms.values()) == {"none"}
    # The receipt code's example stays left to right, so that its groups keep their order.
    assert phone.locator("#receipt-code").get_attribute("dir") == "ltr"


def test_arabic_pages_write_latin_digits(shared_server: Any, phone: Any) -> None:
    for path in ("", "status", "about"):
        phone.goto(f"{shared_server.url}/ar/{path}")
        text = phone.inner_text("body")
        assert re.search("[0-9]", text), path
        assert not ARABIC_INDIC_DIGITS.search(text), path
