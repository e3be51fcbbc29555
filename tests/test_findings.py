"""Statuses and findings read off the results."""

import tomllib

import pytest

from derive.checking import verify_document
from derive.claims import from_dict
from derive.findings import claim_status, findings
from tests.conftest import finding_toml, mutate, only, seed_data


@pytest.fixture(scope="module")
def seed_result(seed_document):
    return verify_document(seed_document, (1, 2, 3))


def test_statuses(seed_result):
    status = {r.claim.id: claim_status(r) for r in seed_result.claims}
    # detected by the verifier: both sides identically 0
    assert status["eq2-summed"] == "vacuous" and status["eq3-summed"] == "vacuous"
    # declared by the file
    assert status["eq1-corrected"] == "corrected"
    assert status["route-c-dp"] == "restored"
    assert status["eq3"] == "holds" and status["eq1-literal"] == "holds"


def test_findings_of_the_seed(seed_result):
    found = {f.kind: f.text for f in findings(seed_result)}
    assert list(found)[0] == "holds"
    assert "eq1-literal, the claim as printed, holds; eq1-corrected" in found["corrected"]
    assert found["vacuous"].startswith("eq2-summed and eq3-summed: both sides are identically 0")
    assert "drop the path through σ" in found["vacuous"]
    assert "p = x − μ" in found["restored"] and "route-a" in found["restored"]
    assert "Not applicable at n = 1" in found["domain"] and "no ε" in found["domain"]


def test_a_failing_document_leads_with_its_failure():
    data = mutate("eq6", "rhs", "1/n", "2/n")
    result = verify_document(from_dict(only(data, "eq6", "eq3")), (2, 3))
    first = findings(result)[0]
    assert first.kind == "fails" and first.text.startswith("eq6:")
    assert "the left side is" in first.text and "the right side is" in first.text


def test_a_claim_holding_but_not_proved_for_all_n_is_undecided(seed_result):
    import dataclasses

    from derive.alln import Proof
    from derive.results import AllNStep

    r = seed_result.claims[0]
    stuck = AllNStep("all i, j", 1, Proof(False, (), 1))
    assert claim_status(dataclasses.replace(r, proofs=(stuck,)), all_n=True) == "undecided"
    assert seed_data()["document"]["id"] == "bn_backward"


def test_a_reason_quoting_an_expression_names_it_instead():
    from derive.findings import _lettered

    text = _lettered("'gamma*(x[i] - sum(x[m], m)/n)/sqrt(n - 1) + beta' divides by zero at n = 1")
    assert text == "a side divides by zero at n = 1"
    assert _lettered("xhat[1] is undefined at n = 1") == "x̂_1 is undefined at n = 1"


def _finding_result(slip_rhs="x[i]"):
    return verify_document(from_dict(tomllib.loads(finding_toml(slip_rhs))), (1, 2))


def test_a_finding_leads_the_findings_with_its_counterexample_and_note():
    result = _finding_result()
    assert [claim_status(r) for r in result.claims] == ["holds", "finding"]
    first, second = findings(result)[:2]
    assert (first.kind, first.heading) == ("finding", "Fails on purpose (a finding)")
    assert first.text.startswith("slip: The gradient without its 2. It first fails at n = 1")
    assert "the left side is" in first.text and "the right side is" in first.text
    assert first.text.endswith("wrong on purpose. The source drops the factor 2.")
    assert (second.kind, second.text) == (
        "holds",
        "The other claim holds: it is checked exactly at n = 1..2.",
    )


def test_a_finding_that_holds_is_a_failure_of_the_findings():
    result = _finding_result(slip_rhs="2*x[i]")
    assert claim_status(result.claims[1]) == "holds"
    first = findings(result)[0]
    assert (first.kind, first.heading) == ("fails", "Expected to fail, but holds")
    assert first.text.startswith("slip: The gradient without its 2.")
    assert "but it holds at every n checked" in first.text
