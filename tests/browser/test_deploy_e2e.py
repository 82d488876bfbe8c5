"""The deployment end to end, on loopback, the way a field office's tablet sees it:
Chromium -> Caddy (deploy/Caddyfile.lan, its internal CA) -> gunicorn
(deploy/gunicorn.conf.py) -> the app, under the LAN-style name intake.lan.

Chromium resolves intake.lan to 127.0.0.1 and trusts the CA's root as a tablet does once its
administrator installed it: as a user-added trust anchor, here an NSS database in the
browser's HOME (where Chromium on Linux keeps them). No flag that ignores certificate
errors is used: a service worker registers only on a certificate the browser trusts, and
the test shows both that it registers and that without the root the page does not load.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from device import wait_for_worker
from playwright.sync_api import Error as PlaywrightError

from intake import instance as instance_mod
from intake import reach, receipts, reports

import server_logs
from deploy_stack import LAN_NAME, Caddy, caddy_lan, gunicorn, require_tool
from harness import CHROMIUM_ARGS
from pages import DeviceReportPage, ReportPage, StatusPage
from support import CHEAP_HASH, PASSPHRASE, translate


@dataclass(frozen=True)
class Stack:
    created: instance_mod.Created
    caddy: Caddy
    server_root: Path  # the instance, gunicorn's log and temporary folder
    caddy_root: Path  # Caddy's storage and log

    def decrypt(self) -> list[dict[str, Any]]:
        passfile = self.server_root.parent / "passphrase.txt"
        passfile.write_text(PASSPHRASE, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "intake", "--instance", str(self.created.config.instance_dir),
             "decrypt", "--key", str(self.created.key_file), "--passphrase-file", str(passfile)],
            capture_output=True, text=True, timeout=60, check=True,
        )
        documents: list[dict[str, Any]] = json.loads(result.stdout)
        return documents

    def written_files(self) -> list[Path]:
        return [p for root in (self.server_root, self.caddy_root) for p in root.rglob("*")
                if p.is_file()]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    server_root = tmp_path / "server"
    created = instance_mod.create(
        server_root / "instance", key_out=tmp_path / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=True,
    )
    server_logs.watch(server_root)  # searched for personal data at the end (test_logs.py)
    server_logs.watch(tmp_path / "caddy")
    with gunicorn(created.config.instance_dir, server_root) as (port, _), \
            caddy_lan(tmp_path / "caddy", port) as caddy:
        yield Stack(created, caddy, server_root, tmp_path / "caddy")


def _tablet(browser: Any, home: Path, root_cert: Path | None) -> Any:
    """A Chromium that resolves intake.lan to 127.0.0.1 and, given a root certificate,
    trusts it as a user-added authority."""
    if root_cert is not None:
        certutil = require_tool("certutil")
        nssdb = home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
        subprocess.run([certutil, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n",
                        "intake field office", "-i", str(root_cert)], check=True)
    home.mkdir(parents=True, exist_ok=True)
    rules = f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    args = [arg for arg in CHROMIUM_ARGS if not arg.startswith("--host-resolver-rules")]
    # The session's Playwright starts this second browser: its sync API allows one per process.
    return browser.browser_type.launch(executable_path="/usr/bin/chromium", args=[*args, rules],
                                       env={**os.environ, "HOME": str(home)})


def test_report_through_caddy_and_gunicorn_on_a_lan_name(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    url = stack.caddy.url
    untrusting = _tablet(browser, tmp_path / "home-untrusting", None)
    try:
        page = untrusting.new_page()
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(f"{url}/en/")
    finally:
        untrusting.close()

    # Tablets download the root over plain HTTP (README.md has them check its fingerprint).
    served = reach.fetch(f"http://{LAN_NAME}:{stack.caddy.http_port}/intake-root.crt",
                         tls=None, connect_to="127.0.0.1")
    assert served.status == 200 and served.body == stack.caddy.root_cert.read_bytes()

    tablet = _tablet(browser, tmp_path / "home", stack.caddy.root_cert)
    js_marker, form_marker = (f"marker-{secrets.token_hex(8)}" for _ in range(2))
    try:
        context = tablet.new_context()
        page = context.new_page()
        report = DeviceReportPage(page, url, "en").open()
        assert page.evaluate("window.isSecureContext") is True
        wait_for_worker(page)
        assert page.evaluate("navigator.serviceWorker.controller.scriptURL").startswith(
            f"{url}/sw.js")
        report.fill(js_marker)
        report.send()
        code = receipts.normalise(report.receipt_code())
        report.wait_for_delivery(translate("en", "Your report was received."))
        StatusPage(page, url, "en").check(receipts.display(code))
        received = translate("en", "Status: %(status)s", status=translate("en", "Received"))
        assert StatusPage(page, url, "en").result_title() == received
        context.close()

        # Without JavaScript the form posts plaintext over TLS and the server seals it: the
        # CSRF check must pass behind a TLS-terminating proxy with Referrer-Policy no-referrer.
        context = tablet.new_context(java_script_enabled=False)
        page = context.new_page()
        ReportPage(page, url, "fr").open().fill(form_marker).send()
        receipts.normalise(ReportPage(page, url, "fr").receipt_code())
        context.close()
    finally:
        tablet.close()

    documents = {d["report"]["what"]: d for d in stack.decrypt()}
    assert documents[js_marker]["sealed_by"] == "device"
    assert documents[form_marker]["sealed_by"] == "server"

    # Nothing the server side wrote holds either report, and no log names a client.
    for path in stack.written_files():
        data = path.read_bytes()
        for marker in (js_marker, form_marker):
            assert marker.encode() not in data, f"report text in {path}"
    logs = stack.caddy.log.read_text() + (stack.server_root / "gunicorn.log").read_text()
    for trace in ("remote_ip", "User-Agent", "Chrome/", code):
        assert trace not in logs

    # intake doctor sees what the tablet saw.
    findings, server_date = reach.check_url(url, language="en", ca_file=stack.caddy.root_cert,
                                            now=reports.utcnow(), connect_to="127.0.0.1")
    assert [f.text for f in findings if f.problem] == []
    assert server_date is not None
