"""The exp/log documents: softmax, log-softmax, cross-entropy, log-sum-exp and
the activations.

Each shipped document holds for n = 1..8 and is proved for all n, except its
findings (claims that fail on purpose), which fail with a counterexample; and
for each document a set of mutants (a dropped term, a wrong sign or power, a
wrong index, the classic slips of each formula) is rejected: the mutated claim
FAILS with a counterexample and is not proved.
"""

from __future__ import annotations

import pytest

from derive.checking import verify_document
from derive.claims import from_dict, load
from derive.results import EXIT_OK, FAILS, HOLDS
from tests.conftest import DOCUMENTS, assert_mutant_rejected, one_claim_mutant

NS = tuple(range(1, 9))
MUTANT_NS = (2, 3, 4)
NAMES = ("softmax", "log_softmax", "cross_entropy", "logsumexp", "activations")
# Claims that fail on purpose (expect = "fails"); at n = 1 some hold (p_1 = 1).
FINDINGS = {"cross_entropy": {"xgboost-hessian"}}


def path_of(name: str):
    return DOCUMENTS / f"{name}.toml"


@pytest.fixture(scope="module", params=NAMES)
def verified(request):
    name = request.param
    document = load(path_of(name))
    return name, document, verify_document(document, NS, all_n=True)


def test_every_claim_holds_and_is_proved_for_all_n(verified):
    name, document, result = verified
    assert document.id == name and document.spec.nodes
    findings = FINDINGS.get(name, set())
    for c in result.claims:
        if c.claim.id in findings:
            assert c.claim.finding and c.status == FAILS, c.summary()
            step = c.first_failure.first_failure
            assert step.counterexample is not None
            assert step.counterexample.lhs != step.counterexample.rhs
            continue
        assert [v.status for v in c.verdicts] == [HOLDS] * len(NS), (name, c.claim.id)
        assert c.proved_all_n, (name, c.claim.id, [p.reason for p in c.proofs])
    assert result.exit_code == EXIT_OK


def test_the_xgboost_finding_is_the_factor_2():
    result = verify_document(load(path_of("cross_entropy")), (3,))
    status = {c.claim.id: c.status for c in result.claims}
    assert status["xgboost-hessian"] == FAILS
    assert status["hessian-diagonal"] == HOLDS and status["xgboost-bound"] == HOLDS
    cx = next(c for c in result.claims if c.claim.id == "xgboost-hessian")
    cx = cx.first_failure.first_failure.counterexample
    assert float(cx.rhs) == pytest.approx(2 * float(cx.lhs), rel=1e-9)


# document, claim, field, old, new, case (1-based, cases only).  Every mutant
# is a false claim a person could write.
MUTANTS = [
    # softmax
    ("softmax", "vjp-closed-form", "rhs", "g[i] - ", "", None),
    ("softmax", "vjp-closed-form", "rhs", "g[k]*p[k]", "g[k]", None),
    ("softmax", "jacobian-cases", "rhs", "-p[i]*p[j]", "p[i]*p[j]", 2),
    ("softmax", "jacobian", "steps[3]", "delta(i, j) - p[j]", "delta(i, j) - p[i]", None),
    ("softmax", "jacobian", "steps[2]", "/Z**2", "/Z", None),
    ("softmax", "shift-invariance", "steps[1]", "exp(z[i] - c)", "exp(z[i] + c)", None),
    ("softmax", "dZ-dz", "rhs", "exp(z[i])", "exp(z[i])/Z", None),
    # log-softmax
    ("log_softmax", "backward-closed-form", "steps[3]", "exp(out[i])*", "", None),
    ("log_softmax", "jacobian", "steps[3]", "exp(out[j])", "exp(out[i])", None),
    ("log_softmax", "log-of-softmax", "rhs", "log(exp(z[i])/Z)", "log(exp(z[i]))/Z", None),
    ("log_softmax", "second-order", "rhs", "-1/Z**2", "-1/Z", 2),
    ("log_softmax", "second-order", "rhs", "(delta(i, j) - exp(out[j]))", "delta(i, j)", 1),
    ("log_softmax", "dlse-dz", "steps[2]", "D(Z, z[i])/Z", "D(Z, z[i])", None),
    # cross-entropy
    ("cross_entropy", "gradient-closed-form", "rhs", "p[i] - t[i]", "p[i] - t[i]/n", None),
    ("cross_entropy", "gradient-closed-form", "rhs", "p[i] - t[i]", "t[i] - p[i]", None),
    ("cross_entropy", "hessian", "rhs", " - p[i]*p[j]", "", None),
    ("cross_entropy", "hessian-diagonal", "rhs", "p[i]*(1 - p[i])", "p[i]*(1 - p[i])**2", None),
    ("cross_entropy", "smoothed-gradient", "steps[3]", "eps/n", "eps/(n - 1)", None),
    ("cross_entropy", "smoothed-gradient", "steps[3]", "(1 - eps)*t[i]", "t[i]", None),
    ("cross_entropy", "logits-form", "steps[3]", "log(Z) - ", "", None),
    ("cross_entropy", "second-order-by-Z", "rhs", "1/Z", "1/Z**2", 1),
    ("cross_entropy", "xgboost-bound", "rhs", "*(1 - delta(i, j))", "", None),
    # log-sum-exp
    ("logsumexp", "shifted", "steps[1]", "c + log", "log", None),
    ("logsumexp", "gradient", "steps[3]", "exp(z[i] - lse)", "exp(z[i] + lse)", None),
    ("logsumexp", "hessian", "rhs", "delta(i, j) - ", "", None),
    ("logsumexp", "backward", "rhs", "g*", "", None),
    ("logsumexp", "second-order-by-Z", "rhs", "-1/Z**2", "1/Z**2", 2),
    # activations
    ("activations", "sigmoid-derivative", "steps[3]", "s[i]*(1 - s[i])", "s[i]*(1 + s[i])", None),
    ("activations", "bce-gradient", "steps[3]", "s[i] - t[i]", "s[i] - t[i]*s[i]", None),
    ("activations", "bce-stable-form", "rhs", "log(1 + exp(-z[k]))", "log(1 + exp(z[k]))", None),
    ("activations", "tanh-derivative", "rhs", "1 - th[i]**2", "1 - th[i]", None),
    ("activations", "tanh-sigmoid", "rhs", "exp(-2*z[i])", "exp(-z[i])", None),
    ("activations", "softplus-derivative", "steps[2]", "exp(z[i]) + 1", "exp(z[i]) + 2", None),
    ("activations", "silu-derivative", "steps[3]", "(1 - s[i])", "(1 + s[i])", None),
    ("activations", "gelu-derivative", "rhs", "3*0.044715", "0.044715", None),
    ("activations", "gelu-derivative", "rhs", "(1 - tu[i]**2)", "(1 - tu[i])", None),
]


@pytest.mark.parametrize(
    "name, claim_id, field, old, new, case",
    MUTANTS,
    ids=[f"{m[0]}:{m[1]}:{m[3].strip()[:24]}" for m in MUTANTS],
)
def test_mutant_is_rejected(name, claim_id, field, old, new, case):
    data = one_claim_mutant(path_of(name), claim_id, field, old, new, case)
    data["claims"][0].pop("expect", None)
    document = from_dict(data, path_of(name))
    assert_mutant_rejected(verify_document(document, MUTANT_NS, all_n=True))


def test_every_document_has_mutants():
    for name in NAMES:
        assert sum(m[0] == name for m in MUTANTS) >= 4, name
