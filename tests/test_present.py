"""derive/present.py: the words, text and JSON of a result, from a real verification of
the README's example (one claim that holds, one slip that fails)."""

from __future__ import annotations

import io

import pytest

from derive.checking import verify_document
from derive.claims import load
from derive.present import CLOSING, closing, print_result, result_json, verdict
from derive.results import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_OK, EXIT_UNDECIDED
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "mean.toml"


@pytest.fixture(scope="module")
def result():
    return verify_document(load(EXAMPLE), ns=(2, 3))


def test_verdict_words(result):
    assert [(c.claim.id, verdict(c)) for c in result.claims] == [("dmu", "PASS"), ("slip", "FAIL")]


def test_text_names_the_failing_step_and_a_counterexample(result):
    out = io.StringIO()
    print_result(result, out)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(load(EXAMPLE).title)
    assert lines[1].startswith("  PASS dmu") and lines[2].startswith("  FAIL slip")
    assert "first failure at n = 2: the equation" in lines[3]
    assert lines[4].strip().startswith("counterexample: ")


def test_json_carries_every_n_and_step(result):
    data = result_json(result)
    assert data["exit_code"] == EXIT_FAIL and data["ns"] == [2, 3]
    slip = data["claims"][1]
    assert slip["verdict"] == "FAIL" and [v["n"] for v in slip["per_n"]] == [2, 3]
    (step,) = slip["per_n"][0]["steps"]
    assert step["status"] == "fails" and step["counterexample"]
    assert data["claims"][0]["all_n"] is None  # not asked for


def test_closing_lines(result):
    assert closing([], EXIT_OK) == CLOSING[EXIT_OK]
    assert closing([result], EXIT_FAIL) == CLOSING[EXIT_FAIL]
    assert (
        closing([result], EXIT_BAD_INPUT)
        == f"{CLOSING[EXIT_BAD_INPUT]}; the others: " + (CLOSING[EXIT_FAIL])
    )
    assert "UNDECIDED" in CLOSING[EXIT_UNDECIDED]
