"""Guess receipt codes against a local intake, to show that the limits hold as documented.

Loopback only: the target must be 127.0.0.0/8 or ::1, and the guesser refuses anything
else. Bounded: at most MAX_GUESSES guesses and MAX_SECONDS seconds. It posts random,
well-formed codes (right check digit) to the status page as fast as the server answers,
from one or several loopback source addresses (127.0.0.2, 127.0.0.3, ... each one client),
ignoring Retry-After as an attacker would; then checks a real code as a complainant would,
from another address and then from the guesser's own, waiting as told.

Run against a throwaway instance with production settings (argon2id t=3, m=64 MiB and the
default limits): .venv/bin/python bench/guess_codes.py [--seconds 120] [--addresses 1]
or against a running one: --url http://127.0.0.1:8000 --code "1234 5678 9012 3456"
(which must have trusted_proxy = "none" for loopback addresses to count as clients).
tests/test_attack.py runs a small version with short waits.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import re
import socket
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from intake import receipts

MAX_GUESSES = 20_000
MAX_SECONDS = 900


class NotLoopback(ValueError):
    """The target is not this machine: this script attacks nothing else."""


def loopback_target(url: str) -> tuple[str, int]:
    """(host, port) of `url`, or NotLoopback unless every address it names is loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise NotLoopback(f"{url}: only http://127.0.0.1:PORT (or [::1]) is allowed")
    port = parts.port or 80
    try:
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
    except socket.gaierror:
        raise NotLoopback(f"{parts.hostname} does not resolve") from None
    if not found or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found):
        raise NotLoopback(f"{parts.hostname} is not a loopback address: refusing to attack it")
    return parts.hostname, port


class Client:
    """One guessing client: its own source address, session cookie and CSRF token."""

    def __init__(self, host: str, port: int, source: str | None = None,
                 forwarded_for: str | None = None, lang: str = "en") -> None:
        if source is not None and not ipaddress.ip_address(source).is_loopback:
            raise NotLoopback(f"source address {source} is not loopback")
        self.host, self.port, self.source = host, port, source
        self.path = f"/{lang}/status"
        self.extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = ""
        self.token = ""

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            bind = (self.source, 0) if self.source else None
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30,
                                                   source_address=bind)
        return self.conn

    def _request(self, method: str, body: str | None = None) -> tuple[int, dict[str, str], str]:
        headers = {**self.extra, **({"Cookie": self.cookie} if self.cookie else {})}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn = self._connection()
            conn.request(method, self.path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8")
        except (OSError, http.client.HTTPException):
            self.conn = None  # a new connection next time
            raise
        answer = {k.lower(): v for k, v in response.getheaders()}
        cookie = answer.get("set-cookie", "")
        if cookie.startswith("intake_session="):
            self.cookie = cookie.split(";", 1)[0]
        return response.status, answer, text

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def check(self, code: str) -> tuple[int, int]:
        """Post one code: (HTTP status, Retry-After in seconds or 0)."""
        if not self.token:
            _, _, page = self._request("GET")
            match = re.search(r'name="csrf_token" value="([^"]+)"', page)
            if match is None:
                raise RuntimeError("the status page has no CSRF token")
            self.token = match.group(1)
        body = urllib.parse.urlencode({"csrf_token": self.token, "code": code})
        status, headers, _ = self._request("POST", body)
        return status, int(headers.get("retry-after", "0"))


@dataclass
class Outcome:
    """What the guesser saw."""

    seconds: float = 0.0
    answers: Counter[int] = field(default_factory=Counter)  # HTTP status -> count
    checked_by_client: Counter[str] = field(default_factory=Counter)  # 404 or 200 answers
    longest_wait: int = 0  # the largest Retry-After of a 429
    found: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.answers.values())

    @property
    def checked(self) -> int:
        return self.answers[404] + self.answers[200]


def guess(url: str, *, guesses: int, seconds: float, sources: list[str] | None = None,
          forwarded_for: list[str] | None = None) -> Outcome:
    """Guess from each source (or each X-Forwarded-For value) in turn until either bound."""
    if not 0 < guesses <= MAX_GUESSES or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"at most {MAX_GUESSES} guesses and {MAX_SECONDS} seconds")
    host, port = loopback_target(url)
    if forwarded_for:
        # One connection, claiming a client address per request (a proxy, or a forger).
        source = sources[0] if sources else None
        names = forwarded_for
        clients = [Client(host, port, source=source, forwarded_for=name) for name in names]
    else:
        names = sources or ["127.0.0.2"]
        clients = [Client(host, port, source=name) for name in names]
    outcome = Outcome()
    start = time.monotonic()
    try:
        for i in range(guesses):
            if time.monotonic() - start >= seconds:
                break
            client, name = clients[i % len(clients)], names[i % len(names)]
            code = receipts.new_code()
            status, retry_after = client.check(code)
            outcome.answers[status] += 1
            if status in (200, 404):
                outcome.checked_by_client[name] += 1
            if status == 200:
                outcome.found.append(code)
            if status == 429:
                outcome.longest_wait = max(outcome.longest_wait, retry_after)
    finally:
        for client in clients:
            client.close()
    outcome.seconds = time.monotonic() - start
    return outcome


def complainant(url: str, code: str, *, source: str | None = None,
                forwarded_for: str | None = None, patience: float = 900) -> tuple[int, float]:
    """Check a real code as a person would: wait as told, up to `patience` seconds.
    Returns (final HTTP status, seconds spent waiting)."""
    host, port = loopback_target(url)
    client = Client(host, port, source=source, forwarded_for=forwarded_for)
    waited = 0.0
    try:
        while True:
            status, retry_after = client.check(code)
            if status not in (429, 503) or waited + retry_after > patience:
                return status, waited
            time.sleep(retry_after)
            waited += retry_after
    finally:
        client.close()


def allowed_checks(seconds: float, *, free: int, first: float, most: float) -> int:
    """The most wrong codes one client can have checked in `seconds` under the documented
    per-client limit: `free` at once, then one after each wait, doubling from `first`
    up to `most`."""
    checks, at, wait = free, 0.0, first
    while at + wait <= seconds:
        at += wait
        checks += 1
        wait = min(wait * 2, most)
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running intake on loopback (else a throwaway one)")
    parser.add_argument("--code", help="a real receipt code there, to check afterwards")
    parser.add_argument("--guesses", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--addresses", type=int, default=1, help="loopback source addresses")
    args = parser.parse_args()
    if args.url:
        sources = [f"127.0.0.{2 + i}" for i in range(args.addresses)]
        run(args.url, args.code, args.guesses, args.seconds, sources)
        return
    measure(args.guesses, args.seconds, args.addresses)


def measure(guesses: int = 5_000, seconds: float = 120,
            addresses: int = 1) -> dict[str, object]:
    """Guess against a throwaway instance with production settings; returns run()'s row."""
    sources = [f"127.0.0.{2 + i}" for i in range(addresses)]
    # Imported here: tests/test_attack.py loads this file without bench/ on the path.
    from server import discard, new_instance, serving

    from intake import crypto, reports, store

    created = new_instance()
    config = created.config
    # No proxy in front: each loopback source address is a client of its own. (With the
    # default, "loopback", every one of them would be taken for a proxy naming nobody.)
    path = config.instance_dir / "config.toml"
    path.write_text('trusted_proxy = "none"\n' + path.read_text(encoding="utf-8"),
                    encoding="utf-8")
    code = receipts.new_code()
    conn = store.connect(config.db_path, config.db_key)
    try:
        data = crypto.seal({"schema": 1, "what": "bench"}, config.recipients)
        reports.accept_envelope(conn, config, data=data, receipt_code=code, language="en")
    finally:
        conn.close()
    try:
        with serving(created) as port:
            return run(f"http://127.0.0.1:{port}", code, guesses, seconds, sources)
    finally:
        discard(created)


def run(url: str, code: str | None, guesses: int, seconds: float,
        sources: list[str]) -> dict[str, object]:
    outcome = guess(url, guesses=guesses, seconds=seconds, sources=sources)
    rate = outcome.checked / outcome.seconds * 60 if outcome.seconds else 0.0
    print(f"{outcome.sent} guesses sent in {outcome.seconds:.1f} s from {len(sources)} "
          f"address(es): {outcome.checked} checked, {outcome.answers[429]} refused (429), "
          f"{outcome.answers[503]} busy (503), {len(outcome.found)} found")
    print(f"checked per client: {dict(outcome.checked_by_client)}; "
          f"{rate:.1f} checked per minute; longest wait told: {outcome.longest_wait} s")
    row: dict[str, object] = {"sent": outcome.sent, "checked": outcome.checked,
                              "answers": dict(outcome.answers), "seconds": outcome.seconds,
                              "longest_wait": outcome.longest_wait,
                              "addresses": len(sources)}
    if code:
        other, waited_other = complainant(url, code, source="127.0.0.1")
        own, waited_own = complainant(url, code, source=sources[0])
        print(f"a real code afterwards: from another address {other} after {waited_other:.0f} s"
              f" of waiting; from the guesser's address {own} after {waited_own:.0f} s")
        row |= {"other_address": other, "other_waited": waited_other,
                "same_address": own, "same_waited": waited_own}
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
