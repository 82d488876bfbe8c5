"""Fixtures: a real instance folder with a real SQLCipher database per test, real argon2
(cheap parameters), real HPKE. Nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app, crypto
from intake import instance as instance_mod

from support import CHEAP_HASH, PASSPHRASE


@pytest.fixture
def instance(tmp_path: Path) -> instance_mod.Created:
    return instance_mod.create(
        tmp_path / "instance", key_out=tmp_path / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=False,
    )


@pytest.fixture
def org_key(instance: instance_mod.Created) -> crypto.PrivateKey:
    return crypto.read_key_file(instance.key_file.read_bytes(), PASSPHRASE)


@pytest.fixture
def app(instance: instance_mod.Created) -> Flask:
    return create_app(instance.config)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()

