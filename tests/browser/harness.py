"""Serve intake/static to a real Chromium under a strict CSP, with no network."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

STATIC_DIR = Path(__file__).resolve().parents[2] / "intake" / "static"

# A strict policy: a module that works here needs no inline script, no eval, no style and
# no other origin.
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
    # Every host but the test server's 127.0.0.1 fails to resolve, so nothing can reach the
    # network even by mistake.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

EMPTY_PAGE = b"<!doctype html><html><head><meta charset=utf-8><title>t</title></head></html>"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        ".js": "text/javascript", ".css": "text/css", "": "application/octet-stream"
    }

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(EMPTY_PAGE)))
            self.end_headers()
            self.wfile.write(EMPTY_PAGE)
        elif path.startswith("/static/"):
            self.path = path[len("/static") :]
            super().do_GET()
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:
        self.send_error(405)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Keep test output to test results.


@contextmanager
def static_server() -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of a server for intake/static."""
    handler = functools.partial(_Handler, directory=str(STATIC_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, with everything that phones home turned off."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)


@contextmanager
def static_page(browser: Any) -> Iterator[Any]:
    """A page on the empty CSP-protected document, ready for `import('/static/js/...')`.

    It takes the session's browser (the `browser` fixture) rather than starting its own,
    because Playwright's sync API cannot run two instances in one process.
    """
    with static_server() as base:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(base + "/")
            yield page
        finally:
            context.close()
