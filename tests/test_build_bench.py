"""benchmarks/build_bench.py: the claim files it times, and its table's verdicts."""

from __future__ import annotations

import tomllib

import pytest

from tests.conftest import ROOT, benchmark


@pytest.fixture(scope="module")
def build_bench():
    return benchmark("build_bench")


def test_claim_files_are_the_shipped_documents_then_mutants(build_bench, tmp_path):
    shipped = sorted((ROOT / "derive" / "documents").glob("*.toml"))
    files = build_bench.claim_files(tmp_path, len(shipped) + 2)
    assert len(files) == len(shipped) + 2
    assert [f.read_text() for f in files[: len(shipped)]] == [p.read_text() for p in shipped]
    for mutant in files[len(shipped) :]:
        text = mutant.read_text()
        tomllib.loads(text)  # still a claim file
        assert 'rhs = "2*(' in text


def test_table_verdicts(build_bench):
    def row(base, new):
        return {
            "baseline": {"min": base, "median": base},
            "new": {"min": new, "median": new},
            "ratio": {"min": new / base, "median": new / base},
        }

    results = {"seed, n = 64": row(4.0, 3.0), "build, warm cache": row(40.0, 2.0)}
    text = build_bench.table(results)
    assert "| seed, n = 64 | 4.00 / 4.00 s | 3.00 / 3.00 s | 0.75 / 0.75 | ≤ 0.5×: missed |" in text
    assert "≤ 3 s: met" in text
