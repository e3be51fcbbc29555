"""benchmarks/double_backward_bench.py: one tiny section, and its goal."""

from __future__ import annotations

import pytest

from tests.conftest import benchmark


@pytest.fixture(scope="module")
def double_backward_bench():
    return benchmark("double_backward_bench")


@pytest.fixture(scope="module")
def bench_report():
    return benchmark("bench_report")


def test_double_backward_section_and_goal(double_backward_bench, bench_report):
    out = double_backward_bench.double_backward_section(
        ((64, 4), (2, 3, 4, 4)), ("float32", "float64"), repeats=2, log=lambda *a: None
    )
    assert len(out["rows"]) == 4
    for r in out["rows"]:
        assert {"ours_s", "torch_s", "ratio_torch", "ratio_torch_median", "backend"} <= set(r)
        assert max(r["max_rel_err"].values()) < 1e-4
    goals = bench_report.evaluate_goals({"double_backward": out})
    assert [g["id"] for g in goals] == ["double-backward-vs-torch"]
