"""The app for a WSGI server other than `intake serve`: gunicorn in deploy/ loads
`intake.wsgi:create()`.

Nothing is read at import time; `create` reads the instance named by INTAKE_INSTANCE (as
the CLI does) when the server calls it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from intake import store
from intake.app import create_app
from intake.config import ConfigError, env_value, load


def create(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app for the instance in INTAKE_INSTANCE (default ./instance)."""
    environ = os.environ if environ is None else environ
    folder = Path(env_value(environ, "INTAKE_INSTANCE") or "instance")
    try:
        return create_app(load(folder, environ))
    except (ConfigError, store.StoreError) as exc:
        # The sentence says what to do; a traceback around it would only hide it.
        raise SystemExit(str(exc)) from None
