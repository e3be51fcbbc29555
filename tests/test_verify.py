import mpmath
import pytest
import sympy as sp

from derive import alln
from derive.claims import from_dict
from derive.language import parse
from derive.model import INDEX, N_SYMBOL, Model, mu, sigma, x
from derive.verify import (
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    Algebra,
    VerifierError,
    assignments,
    verify_document,
)
from tests.conftest import SEED, mutate, only

MUTANT_NS = (2, 3, 4)
# A counterexample must separate the sides by far more than rounding: the
# values are computed here afresh at 40 digits, mutants differ at order 1e-4+.
SEPARATION = 1e-9
# The reported values are printed to 12 significant digits.
REPORTED_RTOL = 1e-10


def test_seed_document_holds_for_n_1_to_8(seed_document):
    result = verify_document(seed_document, range(1, 9))
    assert result.holds
    for c in result.claims:
        assert [v.status for v in c.verdicts] == [NOT_APPLICABLE] + [HOLDS] * 7, c.claim.id
        assert "σ = 0" in c.verdicts[0].reason


def test_seed_document_at_n_16(seed_document):
    assert verify_document(seed_document, (16,)).holds


def test_seed_document_proved_for_all_n(seed_document):
    result = verify_document(seed_document, (3,), all_n=True)
    unproved = [c.claim.id for c in result.claims if not c.proved_all_n]
    assert unproved == []


def test_symmetry_shortcut_agrees_with_the_full_check(seed_document):
    fast = verify_document(seed_document, (2, 3, 4))
    full = verify_document(seed_document, (2, 3, 4), full=True)
    for a, b in zip(fast.claims, full.claims, strict=True):
        assert [v.status for v in a.verdicts] == [v.status for v in b.verdicts]


def test_representatives():
    assert assignments("all i", 5, full=False) == [{"i": 1}]
    assert assignments("all i, j", 5, full=False) == [{"i": 1, "j": 1}, {"i": 1, "j": 2}]
    assert len(assignments("all i, j", 3, full=True)) == 9
    assert len(assignments("i != j", 3, full=True)) == 6
    assert assignments("i != j", 1, full=True) == []


def _independent_values(document, claim, cx, label, step):
    """Both sides at the counterexample, recomputed with SymPy's own evalf."""
    model = document.model_for(cx.n)
    case = next(c for c in claim.cases if c.label == label)
    indices = dict(cx.indices)
    point = {}
    for name, value in cx.point:
        base, _, c = name.partition("_")
        point[sp.Indexed(sp.IndexedBase(base, real=True), int(c))] = sp.Rational(value)
    var = model.sigma_squared.xreplace(point)
    subs = {**point, sigma: sp.sqrt(var)}
    lhs, rhs = (
        model.to_x(parse(t, model, indices)).xreplace(subs).evalf(40)
        for t in case.sides[step - 1 : step + 1]
    )
    return lhs, rhs


# claim, field, old, new, case (1-based, cases only), failing case label, failing step
MUTANTS = [
    # equations
    ("eq6", "rhs", "1/n", "-1/n", None, "all i", 1),
    ("eq2", "rhs", "sigma**2", "sigma**3", None, "all i", 1),
    ("closed-form", "rhs", "(n*sigma)", "((n - 1)*sigma)", None, "all i", 1),
    ("closed-form", "rhs", " - xhat[i]*sum(xhat[j]*g[j], j)", "", None, "all i", 1),
    ("closed-form", "rhs", "(n*sigma)", "(n*sigma)*(1 + 1/2000)", None, "all i", 1),
    ("eq1-upstream", "rhs", "sum(g[j]", "sum(g[i]", None, "all i", 1),
    # chains: the first failing "=" is named
    ("eq3", "steps[4]", "2*(x[i] - mu)", "2*(x[i] + mu)", None, "all i", 3),
    ("dsigma-dx-fool", "steps[7]", " + sum(x[k], k, ne=i))", ")", None, "all i", 6),
    ("rhs-group", "steps[2]", "*g[j], j)", "*g[i], j)", None, "all i", 1),
    ("lhs-group", "steps[2]", "(n - 1)/(n*sigma)", "(n - 1)/((n - 1)*sigma)", None, "all i", 1),
    ("route-a", "steps[3]", "+ delta(i, j)/sigma", "- delta(i, j)/sigma", None, "all i", 2),
    ("dsigma-dmu", "steps[3]", "0", "1/(n*sigma)", None, "all", 2),
    # case splits: the failing case is named
    ("jacobian", "rhs", "sigma*(-1/n)", "sigma*(1/n)", 1, "i != j", 1),
    ("jacobian", "rhs", "(1 - 1/n)", "(1 - 1/(n - 1))", 2, "i = j", 1),
    ("jacobian", "rhs", ")/sigma**2", ")/sigma**3", 2, "i = j", 1),
    ("jacobian", "rhs", "(x[j] - mu)*(x[i] - mu)", "(x[j] - mu)*(x[j] - mu)", 1, "i != j", 1),
    ("eq4", "rhs", "1/sigma", "1/sigma**2", 1, "i = j", 1),
]


@pytest.mark.parametrize(
    "claim_id, field, old, new, case, label, step",
    MUTANTS,
    ids=[f"{m[0]}:{m[3]}" for m in MUTANTS],
)
def test_mutant_is_rejected_with_step_and_counterexample(
    claim_id, field, old, new, case, label, step
):
    data = only(mutate(claim_id, field, old, new, case=case), claim_id)
    document = from_dict(data, SEED)
    (result,) = verify_document(document, MUTANT_NS).claims
    assert not result.holds
    failing = result.first_failure
    assert failing.status == FAILS
    bad = failing.first_failure
    assert (bad.case, bad.step) == (label, step)
    # every earlier step still holds: the failure is pinned to the right "="
    earlier = [s for s in failing.steps if s.case == label and s.step < step]
    assert all(s.holds for s in earlier)
    cx = bad.counterexample
    assert cx is not None and cx.n == failing.n
    lhs, rhs = _independent_values(document, result.claim, cx, label, step)
    assert abs(lhs - rhs) > SEPARATION * (1 + abs(lhs) + abs(rhs))
    assert float(lhs) == pytest.approx(float(mpmath.mpf(cx.lhs)), rel=REPORTED_RTOL, abs=1e-12)
    assert float(rhs) == pytest.approx(float(mpmath.mpf(cx.rhs)), rel=REPORTED_RTOL, abs=1e-12)


def test_literal_index_turns_the_shortcut_off():
    # wrong only at i = 2: a representative-only check (i = 1) would miss it
    data = only(mutate("eq6", "rhs", "1/n", "1/n + delta(i, 2)"), "eq6")
    (result,) = verify_document(from_dict(data, SEED), (3,)).claims
    assert not result.holds
    assert dict(result.first_failure.first_failure.counterexample.indices) == {"i": 2}


def test_numeric_second_opinion_catches_a_broken_exact_engine(monkeypatch):
    monkeypatch.setattr(Algebra, "equal", lambda self, a, b: True)
    data = only(mutate("eq6", "rhs", "1/n", "-1/n"), "eq6")
    with pytest.raises(VerifierError, match="differ numerically"):
        verify_document(from_dict(data, SEED), (3,))


def test_exact_engine_respects_the_sign_of_sigma_at_n_2():
    # σ = |x1 - x2|/2 at n = 2: equal to (x1 - x2)/2 only on half the space
    algebra = Algebra(Model(2))
    assert algebra.is_zero(sigma**2 - (x[1] - x[2]) ** 2 / 4)
    assert not algebra.is_zero(sigma - (x[1] - x[2]) / 2)
    assert not algebra.is_zero(sigma + (x[1] - x[2]) / 2)


def test_exact_engine_reads_the_square_root_of_the_variance():
    model = Model(3)
    algebra = Algebra(model)
    assert algebra.is_zero(sp.sqrt(model.sigma_squared) - sigma)
    with pytest.raises(VerifierError, match="not σ"):
        algebra.is_zero(sp.sqrt(x[1] ** 2 + 1) - sigma)


@pytest.mark.parametrize(
    "claim_id, field, old, new",
    [
        ("closed-form", "rhs", "(n*sigma)", "((n - 1)*sigma)"),
        ("closed-form", "rhs", "n*g[i] - sum", "n*g[i] + sum"),
        ("eq6", "rhs", "1/n", "1/(n - 1)"),
        ("lhs-group", "steps[4]", " + g[i]/sigma", ""),
    ],
)
def test_all_n_mutants_are_not_proved_and_are_refuted(claim_id, field, old, new):
    data = only(mutate(claim_id, field, old, new), claim_id)
    document = from_dict(data, SEED)
    (result,) = verify_document(document, (3,), all_n=True).claims
    assert not result.proved_all_n
    failed = [p for p in result.proofs if not p.proved]
    assert failed and all(p.proof.residual != 0 for p in failed)
    # the residual is really nonzero: a concrete n refutes it
    ctx = alln.Context.make(N_SYMBOL, x, mu, sigma, in_range=[INDEX["i"]])
    assert alln.counterexample(failed[0].proof.residual, ctx) is not None
