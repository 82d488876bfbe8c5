"""What the test servers wrote, searched at the end of the browser session for personal data
(DESIGN.md: no IP address, user agent, receipt code or report content reaches any log).

Every fixture that starts a server registers the folder it writes to (`watch`); page objects
record every receipt code a page showed (`shown`). tests/browser/test_logs.py runs last, runs
a whole flow of its own, and then searches every file under every registered folder.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from pathlib import Path

ROOTS: list[Path] = []
CODES: set[str] = set()  # receipt codes as 16 ASCII digits

# Not searched, each for its reason. Everything else under a server's folder is, so a new
# kind of file is searched until someone says why it need not be.
SKIPPED_NAMES = {
    # SQLCipher: every byte is ciphertext, so patterns would match noise; the report flows
    # search these files for their markers instead (test_report_flow, test_console_flow).
    "intake.db", "intake.db-wal", "intake.db-shm", "intake.db-journal",
    # Settings and keys the test or the administrator wrote, not the server.
    "config.toml", "Caddyfile", "passphrase.txt",
    # Caddy's copy of its own configuration, which names its upstream, 127.0.0.1:PORT.
    "autosave.json",
}
SKIPPED_SUFFIXES = {
    ".key", ".crt", ".pem",  # secrets and certificates: base64 and hex, no text
    ".po", ".mo",  # the tests' pseudo-locale catalogue
}
# The one line in which a server names an address: its own, the one it listens on, once at
# start-up. Any other address is a finding, including these outside those exact lines.
OWN_ADDRESS_LINES = (
    re.compile(r" INFO waitress: Serving on http://127\.0\.0\.1:\d+$"),  # intake serve
    re.compile(r"\[INFO\] Listening at: http://127\.0\.0\.1:\d+ \(\d+\)$"),  # gunicorn
)
MARKERS = re.compile(r"\b(?:marker|note)-[0-9a-f]{8,}")  # what the browser tests type
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Candidates for IPv6: hex groups with "::" in them, or with seven colons (a full address).
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:])")
# What any browser's user agent holds. Header names ("User-Agent", "X-Forwarded-For") are
# not searched for: a configuration warning may name them, and a logged value is caught by
# its own pattern (an address, an agent).
AGENT_TRACES = ("Mozilla/5.0", "HeadlessChrome", "Chrome/", "AppleWebKit")


def watch(root: Path) -> None:
    """Register a folder a server writes to, for the search at the end of the session."""
    if root not in ROOTS:
        ROOTS.append(root)


def shown(displayed: str) -> None:
    """Record a receipt code a page showed, in whatever grouping or digits it was shown."""
    digits = _digits(displayed)
    if len(digits) == 16:
        CODES.add(digits)


def searched_files() -> list[Path]:
    return sorted(
        path for root in ROOTS if root.exists() for path in root.rglob("*")
        if path.is_file() and path.name not in SKIPPED_NAMES
        and path.suffix not in SKIPPED_SUFFIXES
    )


def findings(*, agents: set[str], codes: set[str], markers: set[str]) -> list[str]:
    """One line per trace of personal data in any searched file; empty when there is none."""
    found: list[str] = []
    for path in searched_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path}:{number}"
            if not any(own.search(line) for own in OWN_ADDRESS_LINES):
                found += [f"{where}: IP address {a}" for a in _addresses(line)]
            found += [f"{where}: user agent ({t})" for t in (*agents, *AGENT_TRACES) if t in line]
            found += [f"{where}: typed text {m}" for m in MARKERS.findall(line)]
            found += [f"{where}: typed text {m}" for m in markers if m in line]
        # Codes in any grouping, with any digits: search the file's digits run together.
        run = _digits(text)
        found += [f"{path}: receipt code {c}" for c in sorted(codes | CODES) if c in run]
    return found


def _addresses(line: str) -> list[str]:
    found = []
    for pattern in (IPV4, IPV6):
        for candidate in pattern.findall(line):
            if pattern is IPV6 and "::" not in candidate and candidate.count(":") < 7:
                continue
            try:
                ipaddress.ip_address(candidate.split("%")[0])
            except ValueError:
                continue
            found.append(candidate)
    return found


def _digits(text: str) -> str:
    """Every decimal digit of `text`, in any script, as ASCII, with nothing between them."""
    return "".join(str(unicodedata.digit(ch)) for ch in text
                   if ch.isdigit() and unicodedata.category(ch) == "Nd")
