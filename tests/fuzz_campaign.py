"""The timed fuzz run: every target of the property tests, round after round of fresh
random examples, until INTAKE_FUZZ_SECONDS are spent. `./dev fuzz` sets it and names this
file (CI runs it). Its name does not start with test_, so the normal test run does not
collect it at all, rather than reporting a skip: each target already ran there."""

from __future__ import annotations

import pytest

from fuzz import FUZZ_SECONDS, Harness, campaign
from test_fuzz_console import TARGETS as CONSOLE
from test_fuzz_public import TARGETS as PUBLIC
from test_fuzz_uploads import TARGETS as UPLOADS


def test_fuzz_campaign(fuzz_harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    assert FUZZ_SECONDS, "set INTAKE_FUZZ_SECONDS, as ./dev fuzz does"
    targets = (*PUBLIC, *CONSOLE, *UPLOADS)
    done = campaign(targets, fuzz_harness, FUZZ_SECONDS)
    with capsys.disabled():
        print(f"\nfuzzed for {FUZZ_SECONDS:.0f} s: " + ", ".join(
            f"{name} {count}" for name, count in done.items()))
    assert all(done.values()), "every target ran at least one round"
