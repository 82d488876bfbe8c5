"""Page objects for attachments: the report form's section, the upload's progress on the
receipt screen, and the case page's opened attachments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import PASSPHRASE

# The page's CSP forbids fetching a blob: URL (connect-src 'self'), rightly; so a test
# that needs the bytes behind one keeps each Blob as the page makes its URL.
KEEP_BLOBS = """(() => {
  const make = URL.createObjectURL;
  window.__blobs = {};
  URL.createObjectURL = function (blob) { const url = make(blob); window.__blobs[url] = blob; return url; };
})()"""

SHA256_OF_BLOB_URL = """async (url) => {
  const bytes = await window.__blobs[url].arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), bytes.byteLength];
}"""


def keep_blobs(context: Any) -> None:
    """Before any page opens: let AttachmentsSection.voice_note read the recorded bytes."""
    context.add_init_script(KEEP_BLOBS)


class AttachmentsSection:
    """The photos, voice note and files of the report form."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def record_voice(self, milliseconds: int, *, again: bool = False) -> None:
        self.page.click("#voice-again" if again else "#voice-record")
        self.page.locator("#voice-stop").wait_for(state="visible", timeout=10_000)
        self.page.wait_for_timeout(milliseconds)
        self.page.click("#voice-stop")
        self.page.locator("#voice-done").wait_for(state="visible", timeout=10_000)

    def delete_voice(self) -> None:
        self.page.click("#voice-delete")
        self.page.locator("#voice-record").wait_for(state="visible")

    def voice_note(self) -> tuple[str, int]:
        """SHA-256 (hex) and size of the recorded voice note, as the page holds it."""
        url = self.page.get_attribute("#voice-audio", "src")
        assert url and url.startswith("blob:")
        digest, size = self.page.evaluate(SHA256_OF_BLOB_URL, url)
        return str(digest), int(size)

    def send_photos_as(self, choice: str) -> None:
        self.page.check(f"#photo-size-{choice}")

    def add_photos(self, *files: dict[str, Any]) -> None:
        self.page.set_input_files("#photo-input", list(files))
        self._wait_added(len(files))

    def add_files(self, *files: dict[str, Any]) -> None:
        self.page.set_input_files("#file-input", list(files))
        self._wait_added(len(files))

    def _wait_added(self, count: int) -> None:
        self.page.wait_for_function(
            "n => document.querySelectorAll('#attachment-list li').length >= n", arg=count,
            timeout=30_000)

    def listed(self) -> list[str]:
        names: list[str] = self.page.locator("#attachment-list .name").all_inner_texts()
        return names

    def status(self) -> str:
        text: str = self.page.locator("#attachment-status").inner_text()
        return text


class UploadProgress:
    """The progress bar under the receipt code while attachments are sent."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def wait_for_fraction(self, fraction: float, timeout: int = 60_000) -> None:
        self.page.wait_for_function(
            """f => { const bar = document.getElementById('upload-bar');
                      return bar && bar.max > 1 && bar.value / bar.max >= f; }""",
            arg=fraction, timeout=timeout)

    def text(self) -> str:
        text: str = self.page.locator("#upload-text").inner_text()
        return text


class CaseAttachments:
    """The attachments of an opened case, decrypted in the officer's browser."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def wait_opened(self, count: int, timeout: int = 60_000) -> None:
        self.page.wait_for_function(
            "n => document.querySelectorAll('#attachment-items a[download]').length >= n",
            arg=count, timeout=timeout)

    def titles(self) -> list[str]:
        texts: list[str] = self.page.locator("#attachment-items .attachment-title").all_inner_texts()
        return texts

    def download(self, index: int) -> bytes:
        with self.page.expect_download() as info:
            self.page.locator("#attachment-items a[download]").nth(index).click()
        path = info.value.path()
        with open(path, "rb") as handle:
            return handle.read()

    def saved_name(self, index: int) -> str:
        name: str = self.page.locator("#attachment-items a[download]").nth(index).get_attribute("download")
        return name

    def playable(self, tag: str) -> float:
        """Waits until the first <audio> or <video> has loaded its metadata; its duration."""
        selector = f"#attachment-items {tag}"
        self.page.wait_for_function(
            "s => { const m = document.querySelector(s); return m && m.readyState >= 1; }",
            arg=selector, timeout=30_000)
        duration: float = self.page.evaluate(
            "s => document.querySelector(s).duration", selector)
        return duration


def decrypt_to(server: Any, out: Path) -> list[dict[str, Any]]:
    """`intake decrypt --out`: the reports' JSON documents; attachments are files in `out`."""
    passfile = server.root.parent / "passphrase.txt"
    passfile.write_text(PASSPHRASE, encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "intake", "--instance", str(server.created.config.instance_dir),
         "decrypt", "--key", str(server.created.key_file), "--passphrase-file", str(passfile),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))]
