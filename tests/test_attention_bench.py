"""Smoke tests of benchmarks/attention_bench.py: its goals, its table, one tiny run, and the
README's table written from its JSON."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import benchmark

TINY = {"shapes": ((1, 8, 4),), "repeats": 1, "budget_s": 0.0, "rss": True}


@pytest.fixture(scope="module")
def ab():
    return benchmark("attention_bench")


def row(shape, causal, ratio, fraction):
    t = shape[1]
    return {
        "shape": list(shape),
        "dtype": "float32",
        "causal": causal,
        "ours_s": 1e-3 * ratio,
        "torch_s": 1e-3,
        "ratio": ratio,
        "ratio_median": ratio,
        "extra_bytes": int(fraction * t * t * 4),
        "extra_fraction": fraction,
    }


def test_goals_are_met_only_within_their_limits(ab):
    rows = [row((8, 1024, 64), False, 0.9, 0.5), row((2, 4096, 64), True, 0.99, 0.1)]
    goals = {g["id"]: g for g in ab.evaluate_goals(rows)}
    # the memory goal reads T = 4096 only: 0.5 of T x T at T = 1024 is no miss
    assert goals["backward"]["met"] and goals["memory"]["met"]
    rows.append(row((2, 4096, 64), False, 1.01, 0.13))
    goals = {g["id"]: g for g in ab.evaluate_goals(rows)}
    assert goals["backward"]["met"] is False and "worst 1.010" in goals["backward"]["value"]
    assert goals["memory"]["met"] is False and "0.130" in goals["memory"]["value"]


def test_the_memory_goal_without_t_4096_is_undecided(ab):
    goals = {g["id"]: g for g in ab.evaluate_goals([row((2, 128, 16), False, 0.5, 0.1)])}
    assert goals["memory"]["met"] is None and goals["memory"]["value"] == "not measured"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_a_tiny_run_measures_every_case_and_writes_its_table(ab, tmp_path, monkeypatch):
    monkeypatch.setattr(ab, "QUICK", TINY)
    assert ab.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "attention_bench.json").read_text())
    assert [r["causal"] for r in results["rows"]] == [False, True]
    for r in results["rows"]:
        assert r["ours_s"] > 0 and r["torch_s"] > 0 and r["ours_s"] <= r["ours_median_s"]
        assert r["extra_bytes"] >= 0
        assert r["rss_ours_bytes"] is not None and r["rss_torch_bytes"] is not None
    assert results["threads"]["torch_threads"] == 1
    table = (tmp_path / "attention_bench.md").read_text()
    assert table.count("\n| ") == len(results["rows"]) + 1  # the header and one line a case
    assert table.count(": attention backward at most 1x PyTorch") == 1


def test_the_readme_table_is_written_between_its_markers(tmp_path):
    docs_page = benchmark("docs_page")
    (tmp_path / "attention_bench.json").write_text(
        json.dumps(
            {
                "date": "2026-01-01T00:00:00+00:00",
                "machine": {"cpu_model": "cpu", "usable_cores": 1},
                "threads": {"torch_threads": 1},
                "config": {"shapes": [[1, 8, 4]]},
                "rows": [row((1, 8, 4), False, 0.5, 0.25)],
                "goals": [],
            }
        )
    )
    text = f"before\n{docs_page.README_BEGIN}\nold\n{docs_page.README_END}\nafter\n"
    new = docs_page.readme(tmp_path, text)
    assert new.startswith("before\n") and new.endswith("after\n") and "old" not in new
    assert "| (1, 8, 4) | no | 0.5 | 1.0 | 0.50 (0.50) |" in new
    with pytest.raises(SystemExit, match="markers"):
        docs_page.readme(tmp_path, "no markers here")
