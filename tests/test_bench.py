"""Smoke tests of benchmarks/bench.py's pieces, at tiny sizes (a few seconds in all)."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixed_results() -> dict:
    """A complete bench.json, written by hand: one complete and one capped naive run."""
    machine = {
        "cpu_model": "AMD_EPYC 7B13 & friends @ 100% {fast}",
        "logical_cores": 4,
        "usable_cores": 2,
        "load_average": [0.5, 0.25, 0.1],
        "platform": "Linux-x86_64",
        "python": "3.11.7",
        "numpy": "2.4.6",
        "torch": "2.13.0+cpu",
        "sympy": "1.14.0",
    }
    threads = {
        "numpy_ufunc_threads": 1,
        "numpy_blas_threads_default": 2,
        "numpy_blas_threads": 1,
        "torch_threads_default": 2,
        "torch_threads": 1,
    }
    ver_rows = [
        {
            "n": 8,
            "ours_jacobian_s": 0.04,
            "ours_document_s": 0.4,
            "naive": {
                "n": 8,
                "entries_total": 64,
                "entries_done": 64,
                "entries_not_zero": 0,
                "seconds": 1.7,
                "capped": False,
                "cap_s": 120.0,
            },
            "ratio_jacobian": 42.5,
            "ratio_is_lower_bound": False,
        },
        {
            "n": 16,
            "ours_jacobian_s": 0.05,
            "ours_document_s": 1.1,
            "naive": {
                "n": 16,
                "entries_total": 256,
                "entries_done": 100,
                "entries_not_zero": 0,
                "seconds": 10.0,
                "capped": True,
                "cap_s": 10.0,
            },
            "ratio_jacobian": 200.0,
            "ratio_is_lower_bound": True,
        },
    ]
    bw_rows = [
        {
            "shape": shape,
            "dtype": dtype,
            "nbytes": 1024,
            "ours_s": ours,
            "torch_s": 0.01,
            "copy_s": 0.002,
            "fresh_copy_s": 0.004,
            "ours_copies": ours / 0.002,
            "torch_copies": 5.0,
            "ratio_torch": ours / 0.01,
            "ours_median_s": ours * 1.1,
            "torch_median_s": 0.02,
            "ratio_torch_median": ours * 1.1 / 0.02,
            "max_rel_err": {"dx": 1e-7, "dgamma": 1e-7, "dbeta": 0.0},
        }
        for shape, dtype, ours in (
            ([64, 4], "float32", 0.008),
            ([4, 3, 2, 2], "float64", 0.012),
        )
    ]
    mem_rows = [
        {
            "shape": [64, 4],
            "dtype": "float32",
            "nbytes": 1024,
            "ours_tracemalloc_bytes": 1100,
            "ours_tracemalloc_arrays": 1.07,
            "ours_output_arrays": 1.0,
            "ours_rss_arrays": None,
            "torch_rss_arrays": 1.5,
        }
    ]
    family_rows = [
        {
            "module": module,
            "shape": shape,
            "groups": groups,
            "dtype": "float32",
            "rounds": 3,
            "ours_b_s": 0.004,
            "torch_b_s": 0.005,
            "ratio_torch": 0.8,
            "ratio_torch_median": 0.85,
            "ratio_forward": 1.25,
            "ratio_forward_median": 1.2,
            "ours_copies": 2.5,
            "ours_tracemalloc_arrays": 1.01,
        }
        for module, shape, groups in (("layernorm", [64, 8], None), ("groupnorm", [2, 4, 3], 2))
    ]
    double_rows = [
        {
            "shape": [64, 4],
            "dtype": "float64",
            "backend": "numba",
            "ours_s": 0.002,
            "torch_s": 0.04,
            "ratio_torch": 0.05,
            "ours_median_s": 0.0021,
            "torch_median_s": 0.042,
            "ratio_torch_median": 0.05,
            "max_rel_err": {"dx2": 1e-15, "dgamma2": 3e-15, "ddy": 2e-15},
        }
    ]
    results = {
        "schema": 1,
        "mode": "quick",
        "created": "2026-01-01 00:00 UTC",
        "machine": machine,
        "settings": {"threads": threads},
        "verification": {
            "document": "derive/documents/bn_backward.toml",
            "claims": 28,
            "jacobian_claim": "jacobian",
            "rows": ver_rows,
            "seed_range": {"ns": list(range(2, 17)), "seconds": 4.5},
            "cap_s": 10.0,
            "repeats": 1,
        },
        "backward": {"rows": bw_rows, "repeats": 3, "eps": 1e-5},
        "memory": {"rows": mem_rows},
        "family": {"rows": family_rows, "repeats": 3},
        "double_backward": {"rows": double_rows, "repeats": 3, "eps": 1e-5},
    }
    return results


def test_naive_baseline_completes_and_agrees(bench):
    out = bench.run_naive(2, cap_s=60)
    assert out["entries_done"] == out["entries_total"] == 4
    assert out["entries_not_zero"] == 0
    assert not out["capped"]
    assert 0 < out["seconds"] < 60


def test_naive_baseline_cap_is_honoured_and_marked(bench):
    start = time.monotonic()
    out = bench.run_naive(24, cap_s=1.5)
    assert time.monotonic() - start < 1.5 + 3
    assert out["capped"] and out["cap_s"] == 1.5
    assert out["entries_done"] < out["entries_total"] == 24 * 24
    assert 0 < out["seconds"] <= 1.5 + 0.5


def test_run_writes_every_key(bench, tmp_path):
    results = bench.run(
        mode="quick",
        ns=(2,),
        seed_range=(2, 3),
        cap_s=30,
        verify_repeats=1,
        shapes=((64, 4), (4, 3, 2, 2)),
        dtypes=("float32", "float64"),
        repeats=1,
        threads=1,
        rss=False,
        log=lambda *a: None,
    )
    assert set(results) >= {"schema", "mode", "created", "machine", "settings", "goals"}
    assert set(results) >= {"verification", "backward", "memory"}
    m = results["machine"]
    assert {"cpu_model", "usable_cores", "numpy", "torch", "sympy"} <= set(m)
    threads = results["settings"]["threads"]
    assert threads["torch_threads"] == 1 and threads["numpy_ufunc_threads"] == 1
    (row,) = results["verification"]["rows"]
    assert row["n"] == 2 and not row["naive"]["capped"]
    assert row["naive"]["entries_done"] == 4 and row["ratio_jacobian"] > 0
    assert results["verification"]["seed_range"]["ns"] == [2, 3]
    assert len(results["backward"]["rows"]) == 4
    for r in results["backward"]["rows"]:
        assert {"ours_s", "torch_s", "copy_s", "fresh_copy_s", "ratio_torch"} <= set(r)
        assert {"ours_median_s", "torch_median_s", "ratio_torch_median"} <= set(r)
        assert r["max_rel_err"]["dx"] < 1e-4
    for r in results["memory"]["rows"]:
        assert r["ours_tracemalloc_arrays"] >= r["ours_output_arrays"] == 1.0
        assert r["torch_rss_arrays"] is None
    ids = [g["id"] for g in results["goals"]]
    assert ids == [
        "jacobian-speedup",
        "seed-file-time",
        "backward-vs-torch",
        "backward-copies",
        "backward-memory",
    ]
    assert results["goals"][0]["met"] is None  # n = 16 was not measured
    js, tex = bench.write_outputs(results, tmp_path)
    assert json.loads(js.read_text()) == json.loads(json.dumps(results))
    assert tex.read_text().startswith("% generated by benchmarks/bench.py")


def test_double_backward_section_and_goal(bench):
    out = bench.double_backward_section(
        ((64, 4), (2, 3, 4, 4)), ("float32", "float64"), repeats=2, log=lambda *a: None
    )
    assert len(out["rows"]) == 4
    for r in out["rows"]:
        assert {"ours_s", "torch_s", "ratio_torch", "ratio_torch_median", "backend"} <= set(r)
        assert max(r["max_rel_err"].values()) < 1e-4
    goals = bench.evaluate_goals({"double_backward": out})
    assert [g["id"] for g in goals] == ["double-backward-vs-torch"]


def test_rss_child_measures_ours(bench):
    (row,) = bench.rss_peaks("ours", [((256, 64), "float64")], threads=1)
    assert row["nbytes"] == 256 * 64 * 8
    assert row["peak_bytes"] >= 0


def test_goals_from_fixed_results(bench):
    goals = {g["id"]: g for g in bench.evaluate_goals(fixed_results())}
    assert goals["jacobian-speedup"]["met"] is True  # a lower bound of 200x
    assert goals["jacobian-speedup"]["value"].startswith(">= 200x")
    assert goals["seed-file-time"]["met"] is True
    assert goals["backward-vs-torch"]["met"] is False  # 1.2x at (4, 3, 2, 2)
    assert "(4, 3, 2, 2) float64" in goals["backward-vs-torch"]["value"]
    assert goals["backward-copies"]["met"] is False  # 6 copies
    assert goals["backward-memory"]["met"] is True
    slow = fixed_results()
    slow["verification"]["rows"][1]["ratio_jacobian"] = 20.0
    goals = {g["id"]: g for g in bench.evaluate_goals(slow)}
    assert goals["jacobian-speedup"]["met"] is None  # capped below 50x: undecided


def test_tex_renders_deterministically(bench):
    results = fixed_results()
    results["goals"] = bench.evaluate_goals(results)
    first = bench.render_tex(copy.deepcopy(results))
    assert first == bench.render_tex(copy.deepcopy(results))
    assert r"AMD\_EPYC 7B13 \& friends @ 100\% \{fast\}" in first
    assert r"$\geq$200" in first and r"$>$10.0" in first and "100/256" in first
    assert r"\missed" in first and r"\met" in first
    assert r"naive, capped (lower bound)" in first
    assert r"$4\times3\times2\times2$" in first
    assert r"GroupNorm, 2 groups & $2\times4\times3$ & float32 & 4.00 & 5.00 & 0.80 (0.85)" in first
    assert r"\section{Batch-norm double backward}" in first and "3.0e-15" in first
    assert "\\BLOCK" not in first and "\\VAR" not in first
    assert first.rstrip().endswith(r"\end{document}")


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed")
def test_tex_compiles(bench, tmp_path):
    results = fixed_results()
    results["goals"] = bench.evaluate_goals(results)
    tex = tmp_path / "bench.tex"
    tex.write_text(bench.render_tex(results), encoding="utf-8")
    pdf = bench.build_pdf(tex, tmp_path / "_build")
    assert pdf.stat().st_size > 1000


def test_interleaved_gives_short_calls_more_rounds(bench):
    calls = {"a": 0, "b": 0}

    def count(name):
        def fn():
            calls[name] += 1

        return fn

    timed = (("a", count("a")), ("b", count("b")))
    best, median, rounds = bench.interleaved(timed, 3)
    assert rounds == 3 and calls == {"a": 4, "b": 4}  # one warm-up call each
    assert set(best) == set(median) == {"a", "b"}
    assert all(best[k] <= median[k] for k in best)
    calls.update(a=0, b=0)
    _, _, rounds = bench.interleaved(timed, 3, budget_s=10.0, max_rounds=50)
    assert rounds == 50 and calls == {"a": 51, "b": 51}  # capped at max_rounds

    def slow():
        time.sleep(0.02)

    _, _, rounds = bench.interleaved((("slow", slow),), 2, budget_s=0.01)
    assert rounds == 2  # never fewer than repeats
