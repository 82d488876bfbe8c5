"""The receipt-code guesser of bench/guess_codes.py, small, against a real `intake serve`.

With short waits (a 1-second first wait, 2-second cap, 12 wrong codes per 6 seconds
overall), it shows in seconds what the defaults do in minutes: one address gets no more
codes checked than the documented schedule allows, other addresses are not held by it,
many addresses together hit the overall limit, and a real code is found afterwards by a
person who waits as told. Behind a trusted proxy, clients are told apart by the proxy's
X-Forwarded-For, and a connection from elsewhere cannot choose its own.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from intake import crypto, receipts, reports, store
from intake import instance as instance_mod

from serving import Server
from support import CHEAP_HASH, PASSPHRASE

FREE, FIRST, MOST = 3, 1, 2
OVERALL, WINDOW = 12, 6


def _bench(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


guesser = _bench("guess_codes")


SHORT_WAITS = f"""\
[throttle]
status_free_failures = {FREE}
status_first_wait_seconds = {FIRST}
status_max_wait_seconds = {MOST}
status_overall_failures = {OVERALL}
status_overall_window_seconds = {WINDOW}
"""


def _serve(tmp_path: Path, top: str = "") -> tuple[Server, str]:
    """A server with short waits (and `top`-level settings), holding one report whose code
    it returns."""
    created = instance_mod.create(
        tmp_path / "instance", key_out=tmp_path / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=False,
    )
    path = created.config.instance_dir / "config.toml"
    # Top-level settings go before the first table, tables after the last.
    path.write_text(f"{top}\n{path.read_text(encoding='utf-8')}\n{SHORT_WAITS}",
                    encoding="utf-8")
    config = created.config
    code = receipts.new_code()
    conn = store.connect(config.db_path, config.db_key)
    try:
        data = crypto.seal({"schema": 1, "what": "the real one"}, config.recipients)
        reports.accept_envelope(conn, config, data=data, receipt_code=code, language="en")
    finally:
        conn.close()
    return Server(config.instance_dir, tmp_path / "server.log").start(), receipts.display(code)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    # No proxy: each loopback source address is a client of its own.
    running, code = _serve(tmp_path, top='trusted_proxy = "none"')
    yield running, code
    running.stop()


def test_the_guesser_is_held_as_documented_and_a_real_code_still_gets_through(server: tuple[Server, str]) -> None:
    running, code = server
    url = f"http://127.0.0.1:{running.port}"

    # One address, as fast as the server answers, for 4 seconds.
    alone = guesser.guess(url, guesses=2_000, seconds=4, sources=["127.0.0.2"])
    allowed = guesser.allowed_checks(alone.seconds, free=FREE, first=FIRST, most=MOST)
    assert alone.answers[429] > 10 * alone.checked  # nearly every guess refused, cheaply
    assert set(alone.answers) <= {404, 429}  # never found, never busy, never an error
    assert alone.checked <= allowed + 1, (alone.checked, allowed)  # +1: the clock's edges
    assert 0 < alone.longest_wait <= MOST
    # The guesser holds only its own address: the complainant next door is checked at once.
    assert guesser.complainant(url, code, source="127.0.0.1", patience=0) == (200, 0.0)
    # From the guesser's own address, a person who waits as told gets through.
    status, waited = guesser.complainant(url, code, source="127.0.0.2", patience=MOST + 1)
    assert status == 200 and waited <= MOST

    # Many addresses at once: the overall limit holds them all.
    many = guesser.guess(url, guesses=2_000, seconds=3,
                         sources=[f"127.0.0.{i}" for i in range(10, 26)])
    assert many.checked <= OVERALL
    assert many.answers[429] > many.checked
    # While it holds, a real code waits too; never longer than the window (plus a cap).
    status, waited = guesser.complainant(url, code, source="127.0.0.99",
                                         patience=WINDOW + MOST + 1)
    assert status == 200 and waited <= WINDOW + MOST


def test_the_guesser_attacks_only_this_machine() -> None:
    for url in ["http://192.0.2.1:8000", "https://127.0.0.1:8000", "http://example.org/",
                "ftp://127.0.0.1/"]:
        with pytest.raises(guesser.NotLoopback):
            guesser.guess(url, guesses=1, seconds=1)
    with pytest.raises(guesser.NotLoopback):
        guesser.Client("127.0.0.1", 8000, source="192.0.2.1")
    with pytest.raises(ValueError, match="at most"):
        guesser.guess("http://127.0.0.1:1", guesses=guesser.MAX_GUESSES + 1, seconds=1)


def test_behind_a_trusted_proxy_clients_are_told_apart_by_its_header(tmp_path: Path) -> None:
    running, code = _serve(tmp_path, top='trusted_proxy = "127.0.0.1"')
    try:
        url = f"http://127.0.0.1:{running.port}"
        attacker = f"198.51.100.{random.randrange(1, 255)}"  # noqa: S311
        held = guesser.guess(url, guesses=40, seconds=3, forwarded_for=[attacker])
        assert held.checked <= FREE + 2 and held.answers[429] > 0
        # Another client behind the same proxy is not held...
        assert guesser.complainant(url, code, forwarded_for="203.0.113.5", patience=0) == (200, 0.0)
        # ...and a connection not from the proxy cannot choose its address: its header is
        # dropped, so forty made-up addresses are one client, the connection's.
        forged = guesser.guess(url, guesses=40, seconds=3, sources=["127.0.0.3"],
                               forwarded_for=[f"192.0.2.{i}" for i in range(1, 41)])
        assert forged.checked <= FREE + 2 and forged.answers[429] > 0
    finally:
        running.stop()
