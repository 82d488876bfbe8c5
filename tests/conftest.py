"""Fixtures: a real instance folder with a real SQLCipher database per test, real argon2
(cheap parameters), real HPKE. Nothing is mocked."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app, crypto, store
from intake import instance as instance_mod
from intake.config import Config

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


# --- Domain tests: one instance's keys for the run, a fresh database for each test ---------


@pytest.fixture(scope="session")
def keyed_instance(tmp_path_factory: pytest.TempPathFactory) -> instance_mod.Created:
    """Settings and keys shared by the domain tests: writing a key file costs 600,000 PBKDF2
    rounds, too slow to repeat for each of them. Their databases are their own (`config`)."""
    base = tmp_path_factory.mktemp("keyed")
    return instance_mod.create(
        base / "instance", key_out=base / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=False,
    )


@pytest.fixture
def config(keyed_instance: instance_mod.Created, tmp_path: Path) -> Config:
    """The shared instance's settings, over a fresh SQLCipher file of this test's own: a copy
    of the shared instance's database as instance creation left it, which no test writes to."""
    config = replace(keyed_instance.config, instance_dir=tmp_path)
    shutil.copyfile(keyed_instance.config.db_path, config.db_path)
    return config


@pytest.fixture
def db(config: Config) -> Iterator[store.Connection]:
    conn = store.connect(config.db_path, config.db_key)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def fuzz_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real instance with an enrolled focal point and a logged-in officer, shared by the
    property tests of one module (tests/fuzz.py)."""
    from fuzz import Harness

    harness = Harness.create(tmp_path_factory.mktemp("fuzz"))
    yield harness
    harness.conn.close()
