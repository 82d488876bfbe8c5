"""Reaching an instance as a browser does: HTTPS, its certificate, the service worker and
the report page. `intake doctor --url` uses it.

Browser cryptography and the service worker (offline use) need a secure context: HTTPS with
a certificate the device trusts, or http://127.0.0.1 on the device itself. A service worker
does not register on a certificate the browser does not trust, even after a click-through,
so an untrusted certificate is a problem here, not a warning.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from intake.doctor import Finding, ok, problem, skipped

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_BODY = 2 * 1024 * 1024
# HSTS shorter than a day protects a phone for less than the time between two visits.
MIN_HSTS_SECONDS = 86400
# Caddy renews a certificate when a third of its lifetime is left; with a fifth left, the
# renewal has been failing for a while.
RENEWAL_OVERDUE = 0.2

# OpenSSL's verification errors that have a clear fix (X509_V_ERR_*).
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNTRUSTED = frozenset({18, 19, 20, 21})
_WRONG_NAME = 62


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: Message
    body: bytes
    cert: dict[str, Any] | None


class _Connection(http.client.HTTPSConnection):
    """HTTP or HTTPS to `host`, optionally connecting to another address (`connect_to`)
    while still naming and verifying `host`: how a test reaches a LAN name on loopback."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None,
                 connect_to: str | None, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._tls, self._connect_to = tls, connect_to

    def connect(self) -> None:
        sock = socket.create_connection((self._connect_to or self.host, self.port),
                                        self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host) if self._tls else sock


def fetch(url: str, *, tls: ssl.SSLContext | None, connect_to: str | None = None,
          timeout: float = 10.0) -> Fetched:
    """GET one URL; raises OSError (including ssl errors) or http.client.HTTPException."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    conn = _Connection(parts.hostname or "", parts.port or (443 if secure else 80),
                       tls=tls if secure else None, connect_to=connect_to, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"User-Agent": "intake-doctor", "Accept": "*/*"})
        response = conn.getresponse()
        body = response.read(MAX_BODY)
        cert = conn.sock.getpeercert() if secure and conn.sock is not None else None
        return Fetched(response.status, response.headers, body, cert)
    finally:
        conn.close()


def check_url(url: str, *, language: str, ca_file: Path | None, now: datetime,
              connect_to: str | None = None,
              timeout: float = 10.0) -> tuple[list[Finding], datetime | None]:
    """Findings about `url`, and the time its server reported (for the clock check)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return [problem("https", f"{url} is not an http:// or https:// address: give --url the "
                                 "address complainants open, such as https://intake.example.org"
                                 ".")], None
    if parts.scheme == "http" and host.endswith(".onion"):
        return [skipped("https", f"{url} is an onion address, which doctor cannot reach "
                                 "without Tor; Tor Browser treats it as a secure context.")], None
    if parts.scheme == "http" and host not in LOOPBACK:
        return [problem("https", f"{url} is plain HTTP, where browsers refuse the report page's "
                                 "encryption and offline use: serve it over HTTPS "
                                 "(deploy/Caddyfile.public or deploy/Caddyfile.lan) and give "
                                 "doctor the https:// address.")], None
    tls = ssl.create_default_context()
    if ca_file is not None:
        try:
            tls.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError):
            return [problem("https", f"{ca_file} is not a PEM certificate: give --ca the root "
                                     "certificate of the field office's Caddy CA (root.crt)."
                                     )], None
    base = f"{parts.scheme}://{parts.netloc}"
    try:
        worker = fetch(f"{base}/sw.js", tls=tls, connect_to=connect_to, timeout=timeout)
        page = fetch(f"{base}/{language}/", tls=tls, connect_to=connect_to, timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        return [_certificate_problem(host, exc)], None
    except (OSError, http.client.HTTPException) as exc:
        return [problem("https", f"Cannot reach {base} ({exc}): check that Caddy and intake run "
                                 "(`systemctl status caddy intake`) and that the name leads to "
                                 "this server.")], None
    server_date = _date(page.headers)
    found = check_responses(base, language, worker, page)
    if parts.scheme == "https":
        found += check_https(base, host, page, now)
    if not found:
        if parts.scheme == "https":
            found.append(ok("https", f"{base} serves the service worker and the report page "
                                     "over HTTPS with a trusted certificate and HSTS: browsers "
                                     "get a secure context."))
        else:
            found.append(ok("https", f"{base} serves the service worker and the report page; "
                                     "it is a secure context on this machine only (phones and "
                                     "tablets need HTTPS)."))
    return found, server_date


def _certificate_problem(host: str, exc: ssl.SSLCertVerificationError) -> Finding:
    code = exc.verify_code
    if code in (_EXPIRED, _NOT_YET_VALID):
        when = "has expired" if code == _EXPIRED else "is not valid yet"
        return problem("https", f"The certificate of {host} {when}: check the clock here and "
                                "on the server (`timedatectl`), then Caddy's renewal "
                                "(`journalctl -u caddy`).")
    if code in _UNTRUSTED:
        return problem("https", f"The certificate of {host} is not signed by a certificate "
                                "authority this machine trusts, and browsers will not register "
                                "the service worker: for a field office's Caddy CA give --ca "
                                "its root certificate (tablets must trust it too, see "
                                "deploy/README.md); for a public domain see why Caddy got no "
                                "certificate (`journalctl -u caddy`).")
    if code == _WRONG_NAME:
        return problem("https", f"The certificate Caddy serves is not for {host}: put exactly "
                                "that name at the top of the site's block in the Caddyfile and "
                                "reload Caddy (`systemctl reload caddy`).")
    return problem("https", f"TLS with {host} failed ({exc.verify_message}): see Caddy's log "
                            "(`journalctl -u caddy`).")


def check_responses(base: str, language: str, worker: Fetched, page: Fetched) -> list[Finding]:
    """Both answered, the worker as JavaScript, the page with the app's headers intact."""
    found = []
    for what, response, path in (("The service worker", worker, "/sw.js"),
                                 ("The report page", page, f"/{language}/")):
        if response.status != 200:
            found.append(problem("https", f"{what} ({base}{path}) answered {response.status}: "
                                          "see `systemctl status intake` and `journalctl -u "
                                          "intake`."))
    if worker.status == 200 and "javascript" not in worker.headers.get("Content-Type", ""):
        found.append(problem("https", f"{base}/sw.js is not served as JavaScript, so browsers "
                                      "will not register it: let Caddy pass the app's "
                                      "responses through unchanged."))
    if page.status == 200 and "Content-Security-Policy" not in page.headers:
        found.append(problem("https", f"{base}/{language}/ arrives without the app's "
                                      "Content-Security-Policy: let Caddy pass the app's "
                                      "headers through unchanged."))
    return found


def check_https(base: str, host: str, page: Fetched, now: datetime) -> list[Finding]:
    """HSTS of a day or more, and a certificate that Caddy keeps renewing."""
    found = []
    match = re.search(r"max-age=(\d+)", page.headers.get("Strict-Transport-Security", ""))
    if match is None or int(match.group(1)) < MIN_HSTS_SECONDS:
        found.append(problem("https", f"{base} sends no Strict-Transport-Security of a day or "
                                      "more: add `header Strict-Transport-Security "
                                      "\"max-age=31536000\"` to the site in the Caddyfile, as "
                                      "deploy/ does."))
    if page.cert and "notAfter" in page.cert and "notBefore" in page.cert:
        start = ssl.cert_time_to_seconds(page.cert["notBefore"])
        end = ssl.cert_time_to_seconds(page.cert["notAfter"])
        left = end - now.timestamp()
        if left < (end - start) * RENEWAL_OVERDUE:
            until = datetime.fromtimestamp(end, UTC)
            found.append(problem("https", f"The certificate of {host} ends at "
                                          f"{until:%Y-%m-%d %H:%M} UTC and Caddy has not "
                                          "renewed it: see why (`journalctl -u caddy`; a "
                                          "public domain needs ports 80 and 443 open)."))
    return found


def _date(headers: Message) -> datetime | None:
    try:
        value = parsedate_to_datetime(headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
