"""Smoke tests of benchmarks/softmax_bench.py: its goals, its table, one tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import benchmark

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "softmax_bench.py"
TINY = {"rows": ((4, 7),), "ce_rows": ((3, 5),), "elements": 64, "repeats": 1, "budget_s": 0.0}


@pytest.fixture(scope="module")
def sb():
    return benchmark("softmax_bench")


def row(function, group, ratio, peak=1.0, shape=(4, 7), dtype="float32"):
    return {
        "function": function,
        "group": group,
        "shape": list(shape),
        "dtype": dtype,
        "ours_s": 1e-3 * ratio,
        "torch_s": 1e-3,
        "ratio": ratio,
        "ratio_median": ratio,
        "copies": 2.0,
        "peak_arrays": peak,
    }


def test_goals_are_met_only_within_their_limits(sb):
    rows = [
        row("softmax", "backward", 0.9),
        row("softmax", "forward", 3.0),  # forwards have no time goal
        row("cross_entropy", "forward+backward", 0.7),
    ]
    goals = {g["id"]: g for g in sb.evaluate_goals(rows)}
    assert goals["backward"]["met"] and goals["cross-entropy"]["met"] and goals["memory"]["met"]
    rows += [
        row("log_softmax", "backward", 1.01, dtype="float64"),
        row("cross_entropy", "forward+backward", 0.81, peak=1.31),
    ]
    goals = {g["id"]: g for g in sb.evaluate_goals(rows)}
    assert goals["backward"]["met"] is False
    assert goals["backward"]["misses"] == ["log_softmax (4, 7) float64: 1.01"]
    assert "worst 1.01 (log_softmax backward (4, 7) float64)" in goals["backward"]["value"]
    assert goals["cross-entropy"]["met"] is False
    assert goals["memory"]["met"] is False and "1.31" in goals["memory"]["value"]


def test_a_goal_with_nothing_measured_is_undecided(sb):
    goals = {g["id"]: g for g in sb.evaluate_goals([row("softmax", "forward", 1.0)])}
    assert goals["backward"]["met"] is None and goals["backward"]["value"] == "not measured"


def test_a_tiny_run_measures_every_case_and_writes_its_table(sb, tmp_path, monkeypatch):
    monkeypatch.setattr(sb, "QUICK", TINY)
    assert sb.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "softmax_bench.json").read_text())
    cases = {(r["function"], r["group"], r["dtype"]) for r in results["rows"]}
    for dtype in ("float32", "float64"):
        for f in ("softmax", "log_softmax"):
            assert (f, "forward", dtype) in cases and (f, "backward", dtype) in cases
        assert ("cross_entropy", "forward+backward", dtype) in cases
        for f in ("gelu_tanh", "silu", "sigmoid", "tanh"):
            assert (f, "backward", dtype) in cases
    for r in results["rows"]:
        assert r["ours_s"] > 0 and r["torch_s"] > 0 and r["copy_s"] > 0
        assert r["ours_s"] <= r["ours_median_s"] and r["peak_arrays"] >= 1.0  # dx is returned
    assert results["threads"]["torch_threads"] == 1
    assert results["machine"]["backend"] in ("numba", "numpy")
    table = (tmp_path / "softmax_bench.md").read_text()
    assert table.startswith(f"Backend: {results['machine']['backend']}; 1 thread;")
    assert table.count("\n| ") == len(results["rows"]) + 1  # the header and one line a case
    assert table.count(": every backward at most 1x PyTorch") == 1
