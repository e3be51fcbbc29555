import tomllib

import mpmath
import pytest
import sympy as sp

from derive import alln
from derive.checking import assignments, verify_document
from derive.claims import ClaimFileError, from_dict
from derive.exact import Field
from derive.language import index_symbol, parse
from derive.numeric import atom_name
from derive.results import FAILS, HOLDS, NOT_APPLICABLE, UNDECIDED
from tests.conftest import SEED, mutate, only

MUTANT_NS = (2, 3, 4)
# A counterexample must separate the sides by far more than rounding: the
# values are computed here afresh at 40 digits, mutants differ at order 1e-4+.
SEPARATION = 1e-9
# The reported values are printed to 12 significant digits.
REPORTED_RTOL = 1e-10


# Claims that need no sigma hold at n = 1 too; every other claim divides by sigma = 0.
DEFINED_AT_1 = {"eq6", "eq6-summed"}


def test_seed_document_holds_for_n_1_to_8(seed_document):
    result = verify_document(seed_document, range(1, 9))
    assert result.holds
    for c in result.claims:
        statuses = [v.status for v in c.verdicts]
        if c.claim.id in DEFINED_AT_1:
            assert statuses == [HOLDS] * 8, c.claim.id
        else:
            assert statuses == [NOT_APPLICABLE] + [HOLDS] * 7, c.claim.id
            assert "at n = 1" in c.verdicts[0].reason


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
    inputs = [a for fam in ("x", "g") for a in (model.families[fam][c] for c in range(1, cx.n + 1))]
    by_name = {atom_name(a): a for a in inputs}
    point = {by_name[name]: sp.Rational(value) for name, value in cx.point}
    lhs, rhs = (
        model.expand(parse(t, model, indices)).xreplace(point).evalf(40)
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


def test_a_broken_exact_engine_gives_undecided_not_a_verdict(monkeypatch):
    monkeypatch.setattr(Field, "equal", lambda self, a, b: True)
    data = only(mutate("eq6", "rhs", "1/n", "-1/n"), "eq6")
    (result,) = verify_document(from_dict(data, SEED), (3,)).claims
    assert result.status == UNDECIDED
    assert "differ numerically" in result.verdicts[0].reason


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
    ctx = alln.Context.make(
        document.model_for(sp.Symbol("n", integer=True)), in_range=[index_symbol("i")]
    )
    assert alln.counterexample(failed[0].proof.residual, ctx) is not None


# -- issue 9: false verdicts, each as a class ----------------------------------------------
def _doc(claims, table=None, **document):
    data = {"document": {"id": "t", "title": "T", **document}, "claims": claims}
    if table is not None:
        data["model"] = table
    return from_dict(data, "<test>")


def _claim(cid, lhs, rhs, label="all i"):
    return {"id": cid, "title": cid, "latex": "x", "for": label, "lhs": lhs, "rhs": rhs}


# Sides naming positions through literals, the size or index expressions: the
# symmetry shortcut must be off for them, and agree with --full either way.
POSITION_CLAIMS = [
    _claim("delta-n", "delta(i, n)", "0"),
    _claim("delta-1", "delta(i, 1)", "0"),
    _claim(
        "x-n", "D(xhat[n], x[i])", "(sigma*(-1/n) - (x[n] - mu)*(x[i] - mu)/(sigma*n))/sigma**2"
    ),
    _claim(
        "x-n-ij",
        "D(xhat[n], x[i])",
        "(sigma*(-1/n) - (x[n] - mu)*(x[i] - mu)/(sigma*n))/sigma**2",
        "i != j",
    ),
    _claim("shift", "x[i]", "x[i + 0*n]"),
    _claim("index-as-number", "i*g[i]", "g[i]"),
    _claim("true-symmetric", "d(xhat[i], x[i])", "1/sigma"),
    _claim("true-literal", "d(mu, x[1])", "1/n"),
]


def test_positions_written_with_literals_or_n_are_checked_at_every_index():
    document = _doc(POSITION_CLAIMS)
    fast = verify_document(document, (2, 3, 4))
    full = verify_document(document, (2, 3, 4), full=True)
    statuses = {c.claim.id: [v.status for v in c.verdicts] for c in fast.claims}
    for a, b in zip(fast.claims, full.claims, strict=True):
        assert [v.status for v in a.verdicts] == [v.status for v in b.verdicts], a.claim.id
    for cid in ("delta-n", "delta-1", "x-n", "x-n-ij", "index-as-number"):
        assert FAILS in statuses[cid], cid
    for cid in ("shift", "true-symmetric", "true-literal"):
        assert statuses[cid] == [HOLDS] * 3, cid


def test_shipped_claims_agree_with_the_full_check():
    for path in sorted(SEED.parent.glob("*.toml")):
        document = from_dict(tomllib.loads(path.read_text(encoding="utf-8")), path)
        fast = verify_document(document, (2, 3))
        full = verify_document(document, (2, 3), full=True)
        for a, b in zip(fast.claims, full.claims, strict=True):
            assert [v.status for v in a.verdicts] == [v.status for v in b.verdicts], a.claim.id


SECOND_ORDER = [
    # (lhs, rhs, holds): second derivatives by inputs and by nodes
    ("D(D(sigma**2, mu), mu)", "2", True),
    ("D(D(sigma, mu), mu)", "1/sigma", True),
    ("D(D(sigma, mu), mu)", "2/sigma", False),
    ("D(D(sigma**2, x[1]), x[1])", "2*(n - 1)/n**2", True),
    ("D(D(sigma**2, x[1]), x[1])", "4*(n - 1)/n**2", False),
    ("D(D(mu, x[1]), x[2])", "0", True),
    ("D(D(L, g[1]), x[1])", "D(xhat[1], x[1])", True),
    ("D(D(L, xhat[1]), g[1])", "1", True),
    ("D(D(L, sigma), sigma)", "2*sum(g[k]*(x[k] - mu), k)/sigma**3", True),
    ("D(D(L, sigma), sigma)", "sum(g[k]*(x[k] - mu), k)/sigma**3", False),
]


@pytest.mark.parametrize("lhs, rhs, holds", SECOND_ORDER)
def test_second_derivatives_by_inputs_and_nodes(lhs, rhs, holds):
    document = _doc([_claim("c", lhs, rhs, "all")])
    (result,) = verify_document(document, (2, 3, 4), all_n=True).claims
    if holds:
        assert result.status == HOLDS and result.proved_all_n, result.summary()
    else:
        assert result.status == FAILS
        assert not result.proved_all_n
        assert result.first_failure.first_failure.counterexample is not None


def test_a_position_beyond_n_is_not_applicable_not_false():
    document = _doc([_claim("c", "D(mu, x[2])", "1/n", "all")], model="layer", eps=True)
    (result,) = verify_document(document, (1, 2, 3)).claims
    assert [v.status for v in result.verdicts] == [NOT_APPLICABLE, HOLDS, HOLDS]
    assert "position 2" in result.verdicts[0].reason
    assert result.holds


def test_without_eps_n_1_is_not_applicable_not_a_failure(seed_document):
    result = verify_document(seed_document, (1,))
    assert not any(c.status == FAILS for c in result.claims)
    assert result.exit_code == 3  # nothing was checked for most claims


def test_undefined_by_simplification_is_still_not_applicable():
    # SymPy simplifies g_1*sigma*0/sigma**2 to 0; at n = 1 sigma is 0, so the side has no value
    claim = _claim("c", "sum(g[j]*sigma*(delta(i, j) - 1/n)/sigma**2, j)", "0")
    (result,) = verify_document(_doc([claim]), (1,)).claims
    assert result.verdicts[0].status == NOT_APPLICABLE


def test_an_undecidable_claim_is_undecided_and_the_others_still_run():
    model = {"vectors": ["x"], "nodes": ["a = sqrt(x[1]**2)", "b = sqrt(4*x[1]**2)"]}
    claims = [
        _claim("perfect-square", "2*a", "b", "all"),  # true, but a and b are |x1|, 2|x1|
        _claim("wrong", "a", "x[1]", "all"),  # false where x1 < 0
        _claim("fine", "a**2", "x[1]**2", "all"),
    ]
    result = verify_document(_doc(claims, table=model), (2,))
    status = {c.claim.id: c.status for c in result.claims}
    assert status == {"perfect-square": HOLDS, "wrong": FAILS, "fine": HOLDS}


def test_dependent_roots_are_undecided_with_a_reason():
    model = {
        "vectors": ["x"],
        "nodes": [
            "a = sqrt(x[1]**2 + 1)",
            "b = sqrt(x[1]**2 + 2)",
            "c = sqrt((x[1]**2 + 1)*(x[1]**2 + 2))",
        ],
    }
    claims = [_claim("product", "a*b", "c", "all"), _claim("other", "a**2", "x[1]**2 + 1", "all")]
    result = verify_document(_doc(claims, table=model), (2,))
    product, other = result.claims
    assert product.status == UNDECIDED
    assert "could not show equality" in product.verdicts[0].reason
    assert other.status == HOLDS
    assert result.exit_code == 3


def test_centring_is_an_optimisation_that_agrees_with_plain_coordinates(seed_document):
    plain = verify_document(seed_document, (2, 3, 4), centre=False)
    centred = verify_document(seed_document, (2, 3, 4))
    for a, b in zip(plain.claims, centred.claims, strict=True):
        assert [v.status for v in a.verdicts] == [v.status for v in b.verdicts], a.claim.id


def test_floats_are_read_exactly():
    claims = [_claim("c", "D(mu, x[i])", "1./n", "all i"), _claim("d", "sigma**(-1.0)", "1/sigma")]
    result = verify_document(_doc(claims), (2, 3), all_n=True)
    assert all(c.status == HOLDS and c.proved_all_n for c in result.claims)


def test_counterexample_names_only_what_the_claim_uses_and_prints_zero():
    claims = [_claim("c", "d(mu, x[i])", "1/n + g[i]")]
    (result,) = verify_document(_doc(claims), (2,)).claims
    cx = result.first_failure.first_failure.counterexample
    assert {name for name, _ in cx.point} == {"g_1"}
    assert cx.lhs == "0.5"


def test_a_node_undefined_at_one_n_makes_only_that_n_not_applicable():
    table = {"vectors": ["x"], "nodes": ["v = sum(x[k]**2, k)/(n - 1)"]}
    claims = [_claim("c", "v", "sum(x[k]**2, k)/(n - 1)", "all"), _claim("d", "x[i]", "x[i]")]
    result = verify_document(_doc(claims, table=table), (1, 2, 3), all_n=True)
    c, d = result.claims
    assert [v.status for v in c.verdicts] == [NOT_APPLICABLE, HOLDS, HOLDS]
    assert "divides by zero at n = 1" in c.verdicts[0].reason
    assert c.proved_all_n
    assert [v.status for v in d.verdicts] == [HOLDS] * 3


def test_an_empty_case_does_not_hide_a_false_case():
    # at n = 1 there is no i != j, but the false i = j case must still fail
    claim = {
        "id": "c",
        "title": "c",
        "latex": "x",
        "cases": [
            {"for": "i = j", "lhs": "x[i]", "rhs": "x[i] + 1"},
            {"for": "i != j", "lhs": "x[i]", "rhs": "x[i]"},
        ],
    }
    (result,) = verify_document(_doc([claim]), (1,)).claims
    assert result.status == FAILS


def test_vacuous_claims_are_detected(seed_document):
    result = verify_document(seed_document, (2, 3))
    vacuous = {c.claim.id for c in result.claims if c.vacuous}
    # both sides are multiples of sum(x - mu) = 0; dsigma-dmu says "= 0" on purpose
    assert vacuous == {"eq2-summed", "eq3-summed"}
    (wrong,) = verify_document(_doc([_claim("c", "sum(x[k] - mu, k)", "0*x[i]")]), (2,)).claims
    assert not wrong.vacuous  # literally 0 on one side (0*x[i] is 0)


def test_a_literal_position_is_not_proved_for_the_n_below_it():
    # sum_k delta(k, 3) is 1 only for n >= 3; at n = 2 the claim names position 3: n/a
    (result,) = verify_document(
        _doc([_claim("c", "sum(delta(k, 3), k)", "1", "all")]), (2, 3), all_n=True
    ).claims
    assert [v.status for v in result.verdicts] == [NOT_APPLICABLE, HOLDS]
    assert not result.proved_all_n
    (first,) = verify_document(
        _doc([_claim("c", "sum(delta(k, 1), k)", "1", "all")]), (1, 2), all_n=True
    ).claims
    assert first.holds and first.proved_all_n


# -- exp and log: the classes of false verdict, each as a class ----------------------------
# A separating point is checked here afresh by SymPy's evalf, at this many digits.
EVALF_DIGITS = 60


def _check_separates(document, claim_id, result):
    """The FAIL's counterexample, recomputed by SymPy from the printed point: the
    sides differ there by far more than rounding, and as reported."""
    (c,) = [c for c in result.claims if c.claim.id == claim_id]
    assert c.status == FAILS, c.summary()
    verdict = c.first_failure
    step = verdict.first_failure
    cx = step.counterexample
    model = document.model_for(cx.n)
    atoms = [model.families[v][k] for v in model.spec.vectors for k in range(1, cx.n + 1)]
    atoms += [model.scalars[s] for s in model.spec.all_scalars]
    by_name = {atom_name(a): a for a in atoms}
    point = {by_name[name]: sp.Rational(value) for name, value in cx.point}
    case = next(k for k in c.claim.cases if k.label == step.case)
    lhs, rhs = (
        sp.N(model.expand(parse(t, model, dict(cx.indices))).xreplace(point), EVALF_DIGITS)
        for t in case.sides[step.step - 1 : step.step + 1]
    )
    assert lhs.is_real and rhs.is_real, (lhs, rhs)
    assert abs(lhs - rhs) > SEPARATION * (1 + abs(lhs) + abs(rhs)), cx.describe()
    for value, shown in ((lhs, cx.lhs), (rhs, cx.rhs)):
        assert abs(value - sp.Float(shown)) <= REPORTED_RTOL * (1 + abs(value)), cx.describe()


# (positive?, lhs, rhs, verdict when x is real, verdict when x is declared positive):
# each rewrite is sound only for x > 0; without the declaration the claim is false.
POSITIVITY = [
    ("sqrt(x**2)", "x", FAILS, HOLDS),
    ("sqrt(exp(2*z)*x**2)", "exp(z)*x", FAILS, HOLDS),
    ("exp(log(x**2)/2)", "x", FAILS, HOLDS),
    ("exp(log(x**2))", "x**2", HOLDS, HOLDS),  # log|x|: sound wherever x != 0
    ("log(x**2*exp(z))", "2*log(x) + z", HOLDS, HOLDS),  # true where log(x) is defined
    ("sqrt(x**2*exp(z))", "x*exp(z/2)", FAILS, HOLDS),
]


@pytest.mark.parametrize("lhs, rhs, real, positive", POSITIVITY)
def test_positivity_dependent_rewrites_need_the_declaration(lhs, rhs, real, positive):
    for declared, expected in (([], real), (["x"], positive)):
        table = {"vectors": ["v"], "scalars": ["z"] + ([] if declared else ["x"])}
        table["positive"] = declared
        document = _doc([_claim("c", lhs, rhs, "all")], table=table)
        result = verify_document(document, (1, 2))
        (c,) = result.claims
        assert c.status == expected, (declared, c.summary())
        if expected == FAILS:
            _check_separates(document, "c", result)


ROOTS_OF_SQUARES = [
    ("sqrt((exp(z[i]) + 1)**2)", "exp(z[i]) + 1", HOLDS),
    ("sqrt((exp(z[i]) - 1)**2)", "exp(z[i]) - 1", FAILS),  # negative where z < 0
    ("sqrt((exp(z[i]) - 2)**2*exp(2*z[i]))", "(exp(z[i]) - 2)*exp(z[i])", FAILS),
    ("sqrt((1 + exp(-z[i]))**(-2))", "exp(z[i])/(exp(z[i]) + 1)", HOLDS),
]


@pytest.mark.parametrize("lhs, rhs, expected", ROOTS_OF_SQUARES)
def test_roots_of_squares_with_exp(lhs, rhs, expected):
    document = _doc([_claim("c", lhs, rhs)], table={"vectors": ["z"]})
    result = verify_document(document, (1, 2, 3))
    assert result.claims[0].status == expected, result.claims[0].summary()
    if expected == FAILS:
        _check_separates(document, "c", result)


DEPENDENT_EXPONENTIALS = [
    ("exp(a)*exp(b)", "exp(a + b)", HOLDS),
    ("exp(a)*exp(b)", "exp(a + 2*b)", FAILS),
    ("exp(a)**3/exp(b)", "exp(3*a - b)", HOLDS),
    ("exp(a/2)**2", "exp(a)", HOLDS),
    ("exp(0.044715*a)**3", "exp(0.134145*a)", HOLDS),
    ("exp(0.044715*a)**3", "exp(0.134146*a)", FAILS),
    ("exp(a + log(c))", "c*exp(a)", HOLDS),
    ("exp(2*log(c) - a)", "c**2/exp(a)", HOLDS),
    ("log(exp(a)*c)", "a + log(c)", HOLDS),
    ("log(exp(a)*c)", "a*log(c)", FAILS),
    ("exp(log(exp(a) + c))", "exp(a) + c", HOLDS),
    ("exp(log(exp(a) + c)/2)**2", "exp(a) + c", HOLDS),
]


@pytest.mark.parametrize("lhs, rhs, expected", DEPENDENT_EXPONENTIALS)
def test_dependent_exponentials(lhs, rhs, expected):
    table = {"scalars": ["a", "b"], "positive": ["c"]}
    document = _doc([_claim("c", lhs, rhs, "all")], table=table)
    result = verify_document(document, (1,))
    assert result.claims[0].status == expected, result.claims[0].summary()
    if expected == FAILS:
        _check_separates(document, "c", result)


def test_dependent_exponentials_are_undecided_not_failed():
    # exp(a) met before exp(a/3): two generators for one function.  A true
    # claim is then not shown equal; it must be UNDECIDED, never FAILS.
    table = {"scalars": ["a"], "nodes": ["e = exp(a)", "f = exp(a/3)"]}
    document = _doc([_claim("c", "e + 0*f", "f**3", "all")], table=table)
    (c,) = verify_document(document, (1,)).claims
    assert c.status in (HOLDS, UNDECIDED), c.summary()
    if c.status == UNDECIDED:
        assert "exponentials" in c.verdicts[0].reason


CONSTRAINED = {"vectors": ["z", "t"], "constraints": ["sum(t[k], k) = 1"]}
SOFTMAX_CE = [
    "Z = sum(exp(z[k]), k)",
    "p[i] = exp(z[i])/Z",
    "C = -sum(t[k]*log(p[k]), k)",
]


def test_a_claim_true_only_under_a_constraint_fails_without_it():
    claims = [
        _claim("grad", "D(C, z[i])", "p[i] - t[i]"),
        _claim("general", "D(C, z[i])", "p[i]*sum(t[k], k) - t[i]"),
        _claim("sum", "sum(t[k], k)", "1", "all"),
    ]
    with_it = _doc(claims, table={**CONSTRAINED, "nodes": SOFTMAX_CE})
    without = _doc(claims, table={"vectors": ["z", "t"], "nodes": SOFTMAX_CE})
    status = {c.claim.id: c.status for c in verify_document(with_it, (1, 2, 3)).claims}
    assert status == {"grad": HOLDS, "general": HOLDS, "sum": HOLDS}
    result = verify_document(without, (1, 2, 3))
    status = {c.claim.id: c.status for c in result.claims}
    assert status == {"grad": FAILS, "general": HOLDS, "sum": FAILS}
    _check_separates(without, "grad", result)
    _check_separates(without, "sum", result)


def test_the_counterexample_of_a_constrained_model_meets_the_constraint():
    claims = [_claim("wrong", "D(C, z[i])", "p[i] - 2*t[i]")]
    document = _doc(claims, table={**CONSTRAINED, "nodes": SOFTMAX_CE})
    result = verify_document(document, (3,))
    _check_separates(document, "wrong", result)
    cx = result.claims[0].first_failure.first_failure.counterexample
    ts = [sp.Rational(v) for k, v in cx.point if k.startswith("t_")]
    assert len(ts) == 3 and sum(ts) == 1, cx.describe()


@pytest.mark.parametrize(
    "constraint", ["t[1] = 0", "t[n] = 0", "2*t[1] + t[n] = 0", "sum(t[k]*k, k) = 0"]
)
def test_a_constraint_that_names_a_position_turns_the_shortcut_off(constraint):
    # Only t_1 (or t_n, ...) is pinned: "t[i] = 0" for all i is false at the
    # other positions, which the shortcut (i = 1 only) would never look at.
    table = {"vectors": ["t"], "scalars": ["a"], "constraints": [constraint, "a = 1"]}
    claims = [_claim("pinned", "t[i]*a", "0")]
    document = _doc(claims, table=table)
    assert not document.model_for(3).symmetric
    fast = verify_document(document, (2, 3))
    full = verify_document(document, (2, 3), full=True)
    assert [v.status for v in fast.claims[0].verdicts] == [FAILS, FAILS]
    assert [v.status for v in full.claims[0].verdicts] == [FAILS, FAILS]
    _check_separates(document, "pinned", fast)


def test_a_constraint_by_bare_indices_keeps_the_shortcut_and_agrees_with_full():
    document = _doc(
        [_claim("grad", "D(C, z[i])", "p[i] - t[i]"), _claim("wrong", "p[i]", "t[i]")],
        table={**CONSTRAINED, "nodes": SOFTMAX_CE},
    )
    assert document.model_for(3).symmetric
    fast = verify_document(document, (2, 3))
    full = verify_document(document, (2, 3), full=True)
    for a, b in zip(fast.claims, full.claims, strict=True):
        assert [v.status for v in a.verdicts] == [v.status for v in b.verdicts], a.claim.id


SECOND_ORDER_THROUGH_LOG = [
    ("D(D(C, z[i]), z[j])", "p[i]*delta(i, j) - p[i]*p[j]", "all i, j", True),
    ("D(D(C, z[i]), z[j])", "p[i]*delta(i, j) - p[j]", "all i, j", False),
    ("D(D(C, z[i]), z[i])", "2*p[i]*(1 - p[i])", "all i", False),
    ("D(D(C, Z), Z)", "-1/Z**2", "all", True),
    ("D(D(C, Z), Z)", "1/Z**2", "all", False),
    ("D(D(C, p[i]), p[i])", "t[i]/p[i]**2", "all i", True),
    ("D(D(C, p[i]), p[i])", "-t[i]/p[i]**2", "all i", False),
]


@pytest.mark.parametrize("lhs, rhs, label, holds", SECOND_ORDER_THROUGH_LOG)
def test_second_derivatives_through_log(lhs, rhs, label, holds):
    document = _doc([_claim("c", lhs, rhs, label)], table={**CONSTRAINED, "nodes": SOFTMAX_CE})
    result = verify_document(document, (2, 3))
    (c,) = result.claims
    if holds:
        assert c.status == HOLDS, c.summary()
    else:
        _check_separates(document, "c", result)


def test_a_log_or_root_undefined_everywhere_is_not_applicable():
    claims = [
        _claim("neg", "log(-exp(z[i]))", "z[i]"),
        _claim("root", "sqrt(-exp(z[i]) - z[i]**2)", "0"),
        _claim("node", "q", "0", "all"),
    ]
    table = {"vectors": ["z"], "nodes": ["q = log(-1 - exp(z[1]))"]}
    result = verify_document(_doc(claims, table=table), (1, 2))
    for c in result.claims:
        assert [v.status for v in c.verdicts] == [NOT_APPLICABLE] * 2, c.summary()


def test_a_side_that_is_imaginary_is_refused_when_read():
    with pytest.raises(ClaimFileError, match="no real value"):
        _doc([_claim("c", "sqrt(-exp(z[i]))", "0")], table={"vectors": ["z"]})


def test_a_side_undefined_at_a_point_is_no_counterexample_there():
    # sqrt(x)**2 is read as x (SymPy), but has no value for x < 0, where it
    # differs from |x|: no point may be taken there.
    claims = [
        _claim("c", "sqrt(x)**2", "sqrt(x**2)", "all"),
        _claim("d", "exp(log(x))", "sqrt(x**2)", "all"),
    ]
    result = verify_document(_doc(claims, table={"scalars": ["x"]}), (1,))
    for c in result.claims:
        assert c.status in (HOLDS, UNDECIDED), c.summary()


def test_a_proof_that_contradicts_a_counterexample_is_not_trusted(monkeypatch):
    # The grid's counterexample is certified; if the prover ever "proves" the same
    # claim, the proof is wrong, and the claim must not read "proved for all n".
    import derive.checking as checking
    from derive.alln import Proof
    from derive.results import AllNStep
    from tests.conftest import finding_toml

    doc = checking_doc = __import__("derive.claims", fromlist=["from_bytes"]).from_bytes(
        finding_toml().encode()
    )
    del checking_doc

    def always(claim, document):
        return tuple(
            AllNStep(case.label, k + 1, Proof(True, (), 0))
            for case in claim.cases
            for k in range(case.steps)
        )

    monkeypatch.setattr(checking, "prove_claim_all_n", always)
    result = checking.verify_document(doc, (1, 2, 3), all_n=True)
    slip = next(c for c in result.claims if c.status == "fails")
    assert not slip.proved_all_n
    assert all(p.reason == checking.CONTRADICTED for p in slip.proofs)
    held = next(c for c in result.claims if c.status == "holds")
    assert held.proved_all_n  # a claim with no counterexample keeps its proof
