"""benchmarks/bench_report.py: goals and LaTeX from a bench.json written by hand."""

from __future__ import annotations

import copy
import shutil

import pytest

from tests.conftest import benchmark


@pytest.fixture(scope="module")
def bench_report():
    return benchmark("bench_report")


def fixed_results() -> dict:
    """A complete bench_report.json, written by hand: one complete and one capped naive run."""
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


def test_goals_from_fixed_results(bench_report):
    goals = {g["id"]: g for g in bench_report.evaluate_goals(fixed_results())}
    assert goals["jacobian-speedup"]["met"] is True  # a lower bound of 200x
    assert goals["jacobian-speedup"]["value"].startswith(">= 200x")
    assert goals["seed-file-time"]["met"] is True
    assert goals["backward-vs-torch"]["met"] is False  # 1.2x at (4, 3, 2, 2)
    assert "(4, 3, 2, 2) float64" in goals["backward-vs-torch"]["value"]
    assert goals["backward-copies"]["met"] is False  # 6 copies
    assert goals["backward-memory"]["met"] is True
    slow = fixed_results()
    slow["verification"]["rows"][1]["ratio_jacobian"] = 20.0
    goals = {g["id"]: g for g in bench_report.evaluate_goals(slow)}
    assert goals["jacobian-speedup"]["met"] is None  # capped below 50x: undecided


def test_tex_renders_deterministically(bench_report):
    results = fixed_results()
    results["goals"] = bench_report.evaluate_goals(results)
    first = bench_report.render_tex(copy.deepcopy(results))
    assert first == bench_report.render_tex(copy.deepcopy(results))
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
def test_tex_compiles(bench_report, tmp_path):
    results = fixed_results()
    results["goals"] = bench_report.evaluate_goals(results)
    tex = tmp_path / "bench_report.tex"
    tex.write_text(bench_report.render_tex(results), encoding="utf-8")
    pdf = bench_report.build_pdf(tex, tmp_path / "_build")
    assert pdf.stat().st_size > 1000
