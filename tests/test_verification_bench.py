"""benchmarks/verification_bench.py: the naive baseline completes, agrees, and is capped."""

from __future__ import annotations

import time

import pytest

from tests.conftest import benchmark


@pytest.fixture(scope="module")
def verification_bench():
    return benchmark("verification_bench")


def test_naive_baseline_completes_and_agrees(verification_bench):
    out = verification_bench.run_naive(2, cap_s=60)
    assert out["entries_done"] == out["entries_total"] == 4
    assert out["entries_not_zero"] == 0
    assert not out["capped"]
    assert 0 < out["seconds"] < 60


def test_naive_baseline_cap_is_honoured_and_marked(verification_bench):
    start = time.monotonic()
    out = verification_bench.run_naive(24, cap_s=1.5)
    assert time.monotonic() - start < 1.5 + 3
    assert out["capped"] and out["cap_s"] == 1.5
    assert out["entries_done"] < out["entries_total"] == 24 * 24
    assert 0 < out["seconds"] <= 1.5 + 0.5
