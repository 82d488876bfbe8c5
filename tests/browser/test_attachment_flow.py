"""Attachments in a real Chromium against a real `intake serve`: a report that is a voice
note alone, recorded from Chromium's fake microphone; a report with a 5 MB photo and a
10 MB video. Both are opened byte for byte by an officer in the console and by
`intake decrypt`, and the attachments' marker bytes are nowhere the server wrote, nor in
the browser's storage while the report waited to be sent."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from attachment_pages import (
    AttachmentsSection,
    CaseAttachments,
    UploadProgress,
    decrypt_to,
    keep_blobs,
)
from console_pages import CasePage, Console

from intake import receipts

from harness import CHROMIUM_ARGS
from pages import DeviceReportPage, QueueControl
from support import PASSPHRASE, translate

MB = 1024 * 1024
RECEIVED = "Your report was received."

# Binary storage (IndexedDB values that are bytes, Blobs, Cache Storage bodies) searched in
# the page for a byte string: JSON dumps would turn bytes into {} and hide them.
FIND_IN_STORAGE = """async (hex) => {
  const needle = new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
  const has = (bytes) => {
    outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  const found = [];
  let seen = 0;
  const look = async (where, value) => {
    if (value instanceof ArrayBuffer) value = new Uint8Array(value);
    if (ArrayBuffer.isView(value)) {
      seen += value.byteLength;
      if (has(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))) found.push(where);
    } else if (value instanceof Blob) {
      await look(where, new Uint8Array(await value.arrayBuffer()));
    } else if (typeof value === 'string') {
      await look(where, new TextEncoder().encode(value));
    } else if (value && typeof value === 'object' && !(value instanceof CryptoKey)) {
      for (const [k, v] of Object.entries(value)) await look(where + '.' + k, v);
    }
  };
  for (const info of await indexedDB.databases()) {
    const db = await new Promise((ok, no) => {
      const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
    });
    for (const store of Array.from(db.objectStoreNames)) {
      const values = await new Promise((ok, no) => {
        const r = db.transaction(store).objectStore(store).getAll();
        r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
      });
      await look(info.name + '/' + store, values);
    }
    db.close();
  }
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      await look('cache ' + request.url, new Uint8Array(await (await cache.match(request)).arrayBuffer()));
    }
  }
  for (const storage of [localStorage, sessionStorage]) {
    for (let i = 0; i < storage.length; i++) await look('web storage', storage.getItem(storage.key(i)));
  }
  return {found, seen};
}"""


@pytest.fixture(scope="module")
def media_browser(browser: Any) -> Iterator[Any]:
    """A second Chromium with a fake microphone that needs no permission prompt."""
    chromium = browser.browser_type.launch(
        executable_path="/usr/bin/chromium",
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
    )
    yield chromium
    chromium.close()


def marked(size: int, marker: bytes) -> bytes:
    """`size` random bytes with `marker` written at the start, middle and end."""
    data = bytearray(os.urandom(size))
    for at in (0, size // 2 + 12_345, size - len(marker)):
        data[at:at + len(marker)] = marker
    return bytes(data)


def officer_case(server: Any, browser: Any) -> CaseAttachments:
    """An officer logged in, on the only case, with the key unlocked and the report open."""
    page = browser.new_context(accept_downloads=True).new_page()
    console = Console(page, server.url)
    secret = console.set_up("olga", server.user_add("olga", "officer"))
    console.log_in("olga", secret)
    case = CasePage(page).open_first_case(console)
    case.unlock(str(server.created.key_file), PASSPHRASE)
    case.read()
    return CaseAttachments(page)


def assert_nowhere_on_the_server(server: Any, markers: list[bytes]) -> None:
    files = server.written_files()
    assert {"intake.db", "server.log"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for marker in markers:
            assert marker not in data, f"attachment bytes found in plaintext in {path}"


def test_a_voice_note_alone_is_a_report(live_server: Any, media_browser: Any, browser: Any, tmp_path: Path) -> None:
    context = media_browser.new_context()
    keep_blobs(context)
    try:
        page = context.new_page()
        report = DeviceReportPage(page, live_server.url, "en").open()
        section = AttachmentsSection(page)
        section.record_voice(1200)
        first = section.voice_note()
        section.record_voice(1500, again=True)  # re-record: the first one is gone
        second = section.voice_note()
        assert first != second and second[1] > 500
        section.delete_voice()
        assert page.get_attribute("#voice-audio", "src") is None
        section.record_voice(2000)
        digest, size = section.voice_note()
        report.send()  # nothing written: the voice note is the report
        code = receipts.normalise(report.receipt_code())
        report.wait_for_delivery(translate("en", RECEIVED))
        # Nothing of it is left on the form or in memory the page can reach.
        assert page.get_attribute("#voice-audio", "src") is None
        assert page.locator("#attachment-list li").count() == 0
    finally:
        context.close()
    assert len(code) == 16

    (document,) = decrypt_to(live_server, tmp_path / "out")
    assert "what" not in document["report"]
    (listed,) = document["report"]["attachments"]
    assert listed["kind"] == "voice" and listed["type"].startswith("audio/webm")
    assert (listed["size"], listed["sha256"]) == (size, digest)
    (written,) = document["attachment_files"]
    assert hashlib.sha256((tmp_path / "out" / written["file"]).read_bytes()).hexdigest() == digest

    attachments = officer_case(live_server, browser)
    attachments.wait_opened(1)
    (title,) = attachments.titles()
    assert title.startswith("Voice note · voice-note.webm · ") and title.endswith(" KB")
    attachments.playable("audio")  # the decrypted note plays, from a blob: URL, under the CSP
    assert hashlib.sha256(attachments.download(0)).hexdigest() == digest
    assert attachments.saved_name(0) == "voice-note.webm"


def test_a_photo_and_a_video_arrive_byte_for_byte(live_server: Any, browser: Any, tmp_path: Path) -> None:
    marker = os.urandom(12).hex().encode()
    photo = marked(5 * MB, marker)
    video = marked(10 * MB, marker)
    # No service worker: it would send the report the moment it is queued, since the
    # browser's offline switch does not reach it, and the test looks at it while it waits.
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        report = DeviceReportPage(page, live_server.url, "fr").open()
        section = AttachmentsSection(page)
        section.add_photos({"name": "plaque.jpg", "mimeType": "image/jpeg", "buffer": photo})
        section.send_photos_as("original")
        section.add_files({"name": "convoi.mp4", "mimeType": "video/mp4", "buffer": video})
        assert section.listed() == ["plaque.jpg", "convoi.mp4"]
        posted: list[bytes] = []
        page.on("request", lambda r: posted.append(r.post_data_buffer or b"") if r.method in ("POST", "PUT") else None)
        context.set_offline(True)  # it waits on the device: what does the device hold?
        report.fill("Un camion blanc, voir la photo et la vidéo.")
        report.send()
        code = receipts.normalise(report.receipt_code())
        QueueControl(page).expect_waiting(translate("fr", "Reports waiting on this device to be sent: %(num)d", num=1))
        held = page.evaluate(FIND_IN_STORAGE, marker.hex())
        assert held["found"] == [] and held["seen"] > 15 * MB  # the chunks were searched
        context.set_offline(False)
        page.evaluate("document.getElementById('send-now').click()")
        UploadProgress(page).wait_for_fraction(0.01)
        report.wait_for_delivery(translate("fr", RECEIVED), timeout=120_000)
        assert page.evaluate(FIND_IN_STORAGE, marker.hex())["found"] == []
    finally:
        context.close()
    assert posted and all(marker not in body for body in posted)
    assert_nowhere_on_the_server(live_server, [marker])

    (document,) = decrypt_to(live_server, tmp_path / "out")
    assert document["report"]["what"] == "Un camion blanc, voir la photo et la vidéo."
    files = [tmp_path / "out" / f["file"] for f in document["attachment_files"]]
    assert [p.read_bytes() == data for p, data in zip(files, (photo, video), strict=True)] == [True, True]
    assert [a["kind"] for a in document["report"]["attachments"]] == ["photo", "file"]

    attachments = officer_case(live_server, browser)
    attachments.wait_opened(2)
    assert attachments.download(0) == photo
    assert attachments.download(1) == video
    assert [attachments.saved_name(i) for i in (0, 1)] == ["plaque.jpg", "convoi.mp4"]
    assert live_server.cli("audit", "verify").startswith("The audit log is intact")
    assert code


def test_the_sections_words_come_in_the_pages_language(shared_server: Any, browser: Any) -> None:
    import re

    from pseudo_locale import ASCII_LETTER, CLOSE, OPEN, PSEUDO

    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.goto(f"{shared_server.url}/{PSEUDO}/")
        words = page.evaluate("async (url) => (await fetch(url)).json()", f"/{PSEUDO}/media.json")
        page.set_input_files("#file-input", [{"name": "a.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"}])
        page.locator("#attachment-status").wait_for(state="visible")
        refused = page.inner_text("#attachment-status")
    finally:
        context.close()
    assert words and set(words) >= {"voice_recording", "upload_sent", "size_mb"}
    for key, text in words.items():
        assert text.startswith(OPEN) and text.endswith(CLOSE), key
        assert not ASCII_LETTER.search(re.sub(r"%\(\w+\)[sd]", "", text)), key
    assert refused.startswith(OPEN) and "a.exe" in refused


def test_attachments_work_offline_from_the_kept_pages(live_server: Any, browser: Any) -> None:
    from device import indexeddb, wait_for_worker

    context = browser.new_context()
    try:
        page = context.new_page()
        DeviceReportPage(page, live_server.url, "fr").open()
        wait_for_worker(page)
        context.set_offline(True)
        report = DeviceReportPage(page, live_server.url, "fr").open()  # the kept page
        section = AttachmentsSection(page)
        section.add_files({"name": "note.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 " * 100})
        # The section's code and words came from the worker's copies, in French.
        assert section.status() == translate("fr", "Added so far: %(total)s", total=translate("fr", "%(num)s KB", num="1"))
        report.send()
        receipts.normalise(report.receipt_code())
        report.wait_for_delivery(translate("fr", "Your report is locked and kept on this device. It has not reached us yet: it will be sent when there is a connection."))
        (item,) = indexeddb(page)["intake"]["queue"]
        assert item["bytes"] == 900 + 16 and set(item) == {"id", "body", "state", "bytes"}
    finally:
        context.close()
