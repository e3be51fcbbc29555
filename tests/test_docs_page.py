"""benchmarks/docs_page.py: docs/benchmarks.md is what the committed JSON gives, never
hand-edited; a subject not run is named as such; a missed goal is bold."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import ROOT, benchmark
from tests.test_bench_report import fixed_results


@pytest.fixture(scope="module")
def docs_page():
    return benchmark("docs_page")


def test_committed_page_is_what_the_committed_json_gives(docs_page):
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert page == docs_page.render(ROOT / "reports"), "run: python benchmarks/docs_page.py"
    assert docs_page.main(["--check"]) == 0


def test_no_json_names_every_subject_not_run(docs_page, tmp_path):
    page = docs_page.render(tmp_path)
    assert page.count(docs_page.NOT_RUN) >= 8
    assert "| n |" not in page and "| function |" not in page


def test_tables_come_from_the_json(docs_page, bench_report, tmp_path):
    results = fixed_results()
    results["goals"] = bench_report.evaluate_goals(results)
    (tmp_path / "bench.json").write_text(json.dumps(results), encoding="utf-8")
    shutil.copy(ROOT / "reports" / "build_bench.json", tmp_path)
    page = docs_page.render(tmp_path)
    assert "a quick run, on small sizes" in page  # fixed_results is a quick run
    assert "| 16 |" in page and "(100/256 entries)" in page and "≥ 200×" in page
    assert "**1.20 (0.66)** | **6.00**" in page  # 1.2x against 0.8x; 6 copies against 3
    assert "- MISSED: backward time at most 0.8x" in page
    assert "many files, --jobs 2 vs sequential" in page
    assert page.count(docs_page.NOT_RUN) == 3  # softmax, core_speed and attention


def test_check_fails_on_a_stale_page(docs_page, tmp_path):
    stale = tmp_path / "benchmarks.md"
    stale.write_text(docs_page.render(ROOT / "reports").replace("0.63", "0.36"), encoding="utf-8")
    assert docs_page.main(["--check", "--out", str(stale)]) == 1


@pytest.fixture(scope="module")
def bench_report():
    return benchmark("bench_report")
