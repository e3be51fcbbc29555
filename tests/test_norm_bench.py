"""benchmarks/norm_bench.py: the fresh-process memory measurement."""

from __future__ import annotations

import pytest

from tests.conftest import benchmark


@pytest.fixture(scope="module")
def norm_bench():
    return benchmark("norm_bench")


def test_rss_child_measures_ours(norm_bench):
    (row,) = norm_bench.rss_peaks("ours", [((256, 64), "float64")], threads=1)
    assert row["nbytes"] == 256 * 64 * 8
    assert row["peak_bytes"] >= 0
