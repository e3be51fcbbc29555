"""benchmarks/core_speed.py: its timer runs on this tree, and its table says met or missed."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, benchmark


@pytest.fixture(scope="module")
def core_speed():
    return benchmark("core_speed")


def test_the_timer_verifies_the_seed_in_a_fresh_process(core_speed):
    seconds, verdicts = core_speed.time_once(ROOT, "(2,)")
    assert 0 < seconds < 60
    assert verdicts and set(verdicts.values()) == {"holds"}
    assert all(k.startswith("bn_backward/") for k in verdicts)


def test_the_timer_reads_any_documents_and_reports_each_verdict(core_speed):
    paths = [ROOT / "derive" / "documents" / f"{name}.toml" for name in ("softmax", "rmsnorm")]
    _, verdicts = core_speed.time_once(ROOT, "(2,)", paths)
    assert {k.split("/")[0] for k in verdicts} == {"softmax", "rmsnorm"}


def test_markdown_marks_a_missed_goal(core_speed):
    row = {
        "case": "n = 64",
        "baseline_min_s": 2.0,
        "baseline_median_s": 2.5,
        "new_min_s": 3.0,
        "new_median_s": 3.5,
        "ratio_min": 1.5,
        "ratio_median": 1.4,
        "goal": 1.0,
        "met": False,
    }
    text = core_speed.markdown({"baselines": [{"baseline": "abc1234", "rows": [row]}]})
    assert (
        "| n = 64 | abc1234 | 2.00 / 2.50 s | 3.00 / 3.50 s | 1.50 / 1.40 | -- | **missed** |"
        in text
    )
    row |= {"same_verdicts": False, "claims": 3, "ratio_median": 0.9, "met": False}
    text = core_speed.markdown({"baselines": [{"baseline": "abc1234", "rows": [row]}]})
    assert "| **no** | **missed** |" in text
