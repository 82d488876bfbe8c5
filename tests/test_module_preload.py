"""The report form preloads exactly the modules report.js imports, at every depth, so that
a 2G phone fetches them in one round trip; a preload that falls out of step with the
import lines would fetch a file the page never uses, or leave a round trip in."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

JS = Path(__file__).resolve().parents[1] / "intake" / "static" / "js"
STATIC_IMPORT = re.compile(r"""^\s*import\s+(?:[^'"]*?\s+from\s+)?['"]\./([\w.]+)['"]""", re.M)


def _imports(entry: str) -> set[str]:
    """Every module `entry` imports statically, directly or not (import() loads later)."""
    found: set[str] = set()
    todo = [entry]
    while todo:
        for name in STATIC_IMPORT.findall((JS / todo.pop()).read_text(encoding="utf-8")):
            if name not in found:
                found.add(name)
                todo.append(name)
    return found


def test_the_form_preloads_what_report_js_imports(client: FlaskClient) -> None:
    page = client.get("/en/").get_data(as_text=True)
    preloaded = re.findall(r'<link rel="modulepreload" href="/static/js/([\w.]+)">', page)
    scripts = set(re.findall(r'<script type="module" src="/static/js/([\w.]+)">', page))
    assert scripts == {"page.js", "report.js"}
    assert len(preloaded) == len(set(preloaded))
    assert set(preloaded) == _imports("report.js") - scripts
    assert {"envelope.js", "hpke.js"} <= set(preloaded)  # the deepest level
