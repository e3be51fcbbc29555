"""Tests for the general-n prover (derive.alln).

Claims are built by hand, independently of the model's own derivatives: ``sympy.diff``
and the chain rule through the definitions of mu and sigma, sums left unevaluated.  The
symbols are the batch-norm presets' (the prover takes its definitions from the model).
"""

import time

import pytest
from sympy import (
    Indexed,
    KroneckerDelta,
    Sum,
    Symbol,
    diff,
    sqrt,
)

from derive.alln import (
    RULES,
    Context,
    Proof,
    apply_rule,
    counterexample,
    prove_equal,
    prove_zero,
)
from derive.language import N_SYMBOL as n
from derive.language import index_symbol
from derive.model import Model
from derive.spec import preset

SEED = Model(preset("xhat", False), n)
LAYER = Model(preset("layer", True), n)
x, g, p = (SEED.families[name] for name in ("x", "g", "p"))
dy = LAYER.families["dy"]
i, j, k, m, ell = (index_symbol(name) for name in ("i", "j", "k", "m", "l"))
mu, sigma, sigma_p = (SEED.scalars[name] for name in ("mu", "sigma", "sigma_p"))
eps, gamma, beta = (LAYER.scalars[name] for name in ("eps", "gamma", "beta"))

CTX = Context.make(SEED, in_range=(i,))
CTX_IJ = Context.make(SEED, distinct=[(i, j)])
CTX_EPS = Context.make(LAYER, in_range=(i,))


def S(f, var=k):
    return Sum(f, (var, 1, n))


def xhat(t):
    return (x[t] - mu) / sigma


def total_derivative(e, w_eps=0):
    """D(e, x_i): chain rule through the definitions of mu and sigma."""
    w = S((x[k] - mu) ** 2) / n + w_eps
    dmu = diff(S(x[k]) / n, x[i])
    dsigma = (diff(w, x[i]) + diff(w, mu) * dmu) / (2 * sigma)
    return diff(e, x[i]) + diff(e, mu) * dmu + diff(e, sigma) * dsigma


W = S((x[k] - mu) ** 2) / n
L_SEED = S(g[j] * xhat(j), j)
L_LAYER = S(dy[j] * (gamma * xhat(j) + beta), j)


def f_closed(inv=1 / n, sign=-1, drop_sum=False):
    """(F) and its mutants: inv * (1/sigma) * (n g_i - sum g - xhat_i sum xhat g)."""
    sum_g = 0 if drop_sum else S(g[j], j)
    return inv / sigma * (n * g[i] - sum_g + sign * xhat(i) * S(xhat(j) * g[j], j))


def jac_same(inv=1 / n, sign=-1, drop=False):
    first = sigma * (1 if drop else 1 - inv)
    return (first + sign * (x[i] - mu) ** 2 / (sigma * n)) / sigma**2


def jac_diff(inv=1 / n, sign=-1, drop=False):
    second = 0 if drop else sign * (x[j] - mu) * (x[i] - mu) / (sigma * n)
    return (sigma * (-inv) + second) / sigma**2


def dsigma_rhs(inv=1 / n, sign=1, drop=False):
    return sign * (x[i] - (0 if drop else mu)) * inv / sigma


def route_c_lhs():
    """dL/dp_i - (1/n) sum_m dL/dp_m with p_k = x_k - mu, then back to x, mu, sigma."""
    lp = S(g[j] * p[j] / sigma_p, j)
    wp = S(p[k] ** 2) / n

    def dp(e, idx):
        return diff(e, p[idx]) + diff(e, sigma_p) * diff(wp, p[idx]) / (2 * sigma_p)

    e = dp(lp, i) - S(dp(lp, m), m) / n
    e = e.replace(lambda a: isinstance(a, Indexed) and a.base == p, lambda a: x[a.indices[0]] - mu)
    return e.subs(sigma_p, sigma)


CLAIMS = {
    "dmu_dx": (diff(S(x[k]) / n, x[i]), 1 / n, CTX),
    "dsigma_dx_partial": (diff(W, x[i]) / (2 * sigma), dsigma_rhs(), CTX),
    "dsigma_dx_total": (total_derivative(sigma), dsigma_rhs(), CTX),
    "dsigma_dmu_graph": (diff(W, mu) / (2 * sigma), 0, CTX),
    "jacobian_same": (total_derivative(xhat(i)), jac_same(), CTX),
    "jacobian_distinct": (total_derivative(xhat(j)), jac_diff(), CTX_IJ),
    "lhs_grouping": (
        S(-g[j] / (n * sigma) * (1 - KroneckerDelta(i, j)), j) + (n - 1) * g[i] / (n * sigma),
        -S(g[j], j) / (n * sigma) + g[i] / sigma,
        CTX,
    ),
    "rhs_grouping": (
        S(-(x[j] - mu) * (x[i] - mu) * g[j] / (n * sigma**3), j),
        -xhat(i) / (n * sigma) * S(xhat(j) * g[j], j),
        CTX,
    ),
    "closed_form_F": (total_derivative(L_SEED), f_closed(), CTX),
    "route_C": (route_c_lhs(), f_closed(), CTX),
    "layer_dx": (
        total_derivative(L_LAYER, eps),
        gamma / (n * sigma) * (n * dy[i] - S(dy[j], j) - xhat(i) * S(xhat(j) * dy[j], j)),
        CTX_EPS,
    ),
    "layer_dgamma": (diff(L_LAYER, gamma), S(dy[j] * xhat(j), j), CTX_EPS),
    "layer_dbeta": (diff(L_LAYER, beta), S(dy[j], j), CTX_EPS),
    # Needs the definition of sigma itself (with eps), not only the mean.
    "sum_xhat_sq": (S(xhat(j) ** 2, j), n - n * eps / sigma**2, CTX_EPS),
}

MUTANTS = {
    "dsigma_sign": (total_derivative(sigma), dsigma_rhs(sign=-1), CTX),
    "dsigma_n_minus_1": (total_derivative(sigma), dsigma_rhs(inv=1 / (n - 1)), CTX),
    "dsigma_drop_mu": (total_derivative(sigma), dsigma_rhs(drop=True), CTX),
    "dsigma_partial_sign": (diff(W, x[i]) / (2 * sigma), dsigma_rhs(sign=-1), CTX),
    "jac_same_sign": (total_derivative(xhat(i)), jac_same(sign=1), CTX),
    "jac_same_n_minus_1": (total_derivative(xhat(i)), jac_same(inv=1 / (n - 1)), CTX),
    "jac_same_drop": (total_derivative(xhat(i)), jac_same(drop=True), CTX),
    "jac_diff_sign": (total_derivative(xhat(j)), jac_diff(sign=1), CTX_IJ),
    "jac_diff_n_minus_1": (total_derivative(xhat(j)), jac_diff(inv=1 / (n - 1)), CTX_IJ),
    "jac_diff_drop": (total_derivative(xhat(j)), jac_diff(drop=True), CTX_IJ),
    "F_sign": (total_derivative(L_SEED), f_closed(sign=1), CTX),
    "F_n_minus_1": (total_derivative(L_SEED), f_closed(inv=1 / (n - 1)), CTX),
    "F_drop_sum": (total_derivative(L_SEED), f_closed(drop_sum=True), CTX),
    "route_C_n_minus_1": (route_c_lhs(), f_closed(inv=1 / (n - 1)), CTX),
    "sum_xhat_sq_forgets_eps": (S(xhat(j) ** 2, j), n, CTX_EPS),
}


# --- the claims ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLAIMS)
def test_claim_proved(name):
    lhs, rhs, ctx = CLAIMS[name]
    proof = prove_equal(lhs, rhs, ctx)
    assert isinstance(proof, Proof)
    assert proof.proved is True, str(proof)
    assert proof.residual == 0
    assert proof.steps[0].rule == "statement"
    assert len(proof.steps) >= 2
    known = {r.name for r in RULES} | {
        "statement",
        "given",
        "definitions",
        "square_roots",
        "rational_normal_form",
    }
    assert {s.rule for s in proof.steps} <= known


@pytest.mark.parametrize("name", CLAIMS)
def test_true_claim_has_no_counterexample(name):
    lhs, rhs, ctx = CLAIMS[name]
    assert counterexample(lhs - rhs, ctx) is None


@pytest.mark.parametrize("name", MUTANTS)
def test_mutant_not_proved_and_refuted(name):
    lhs, rhs, ctx = MUTANTS[name]
    proof = prove_equal(lhs, rhs, ctx)
    assert proof.proved is False
    assert proof.residual != 0
    cex = counterexample(lhs - rhs, ctx)
    assert cex is not None
    assert cex.n in (2, 3, 4, 5)
    assert abs(cex.value) > 1e-6
    for a, b in map(tuple, ctx.distinct):
        assert cex.point[a.name] != cex.point[b.name]


def test_proofs_use_the_definitions():
    rules = lambda name: {s.rule for s in prove_equal(*CLAIMS[name]).steps}  # noqa: E731
    assert {"kronecker_sum", "definitions"} <= rules("closed_form_F")
    assert "definitions" in rules("dsigma_dmu_graph")
    assert "kronecker_distinct" in rules("jacobian_distinct")
    assert "rename_bound" in rules("rhs_grouping")
    # sigma**2 is replaced by its radicand only in the final reduction
    proof = prove_equal(*CLAIMS["sum_xhat_sq"])
    assert proof.proved and proof.steps[-1].rule == "rational_normal_form"


def test_distinctness_is_needed_for_jacobian_off_diagonal():
    # Without "i != j" the delta_ij term survives, so the i != j claim is not proved.
    lhs, rhs, _ = CLAIMS["jacobian_distinct"]
    ctx = Context.make(SEED, in_range=(i, j))
    assert prove_equal(lhs, rhs, ctx).proved is False


def test_all_claims_are_fast():
    start = time.perf_counter()
    for lhs, rhs, ctx in CLAIMS.values():
        assert prove_equal(lhs, rhs, ctx).proved
    assert time.perf_counter() - start < 10


def test_prove_zero_trace_and_residual():
    proof = prove_zero(S(x[k]) - n * mu, CTX)
    assert proof.proved
    assert [s.rule for s in proof.steps][:2] == ["given", "definitions"]
    proof = prove_zero(S(g[k]) - n * mu, CTX)
    assert not proof.proved and proof.residual != 0
    assert prove_zero(0, CTX).proved


# --- the rules, one at a time ----------------------------------------------------------


def fires(rule, before, after, ctx=CTX):
    """The rule rewrites ``before`` to ``after``, and the rewrite holds numerically."""
    got = apply_rule(rule, before, ctx)
    assert (got - after).expand() == 0, got
    assert counterexample(before - got, ctx) is None


def silent(rule, expr, ctx=CTX):
    assert apply_rule(rule, expr, ctx) == expr


def test_rule_table_is_uniform():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for r in RULES:
        assert r.latex and r.condition and callable(r.rewrite)


def test_kronecker_sum():
    fires("kronecker_sum", S(KroneckerDelta(i, k) * x[k]), x[i])
    fires("kronecker_sum", S(2 * KroneckerDelta(k, i) * (x[k] - mu) * g[k]), 2 * (x[i] - mu) * g[i])
    fires("kronecker_sum", S(KroneckerDelta(i, k)), 1)
    fires("kronecker_sum", S(KroneckerDelta(i, k) ** 2 * x[k]), x[i])
    # An enclosing sum over 1..n puts its index in range.
    fires("kronecker_sum", S(S(KroneckerDelta(m, k) * x[k]), m), S(x[m], m))


def test_kronecker_sum_side_conditions():
    silent("kronecker_sum", S(KroneckerDelta(j, k) * x[k]))  # j not known in range
    silent("kronecker_sum", Sum(KroneckerDelta(i, k) * x[k], (k, 1, n - 1)))  # not 1..n
    silent("kronecker_sum", Sum(KroneckerDelta(m, k) * x[k], (k, 1, n), (m, 2, n)))
    silent("kronecker_sum", S(KroneckerDelta(i, k) * x[k] + x[k]))  # delta not a factor
    silent("kronecker_sum", S(KroneckerDelta(i + 1, k) * x[k]))  # not a plain index
    # Substituting k -> i would be captured by the inner binder i.
    silent("kronecker_sum", S(KroneckerDelta(i, k) * Sum(x[i] * x[k], (i, 1, 3))))


def test_kronecker_distinct():
    fires("kronecker_distinct", KroneckerDelta(i, j) * x[i] + g[j], g[j], CTX_IJ)
    fires("kronecker_distinct", KroneckerDelta(j, i) * x[i] + g[j], g[j], CTX_IJ)
    silent("kronecker_distinct", KroneckerDelta(i, j))  # not known distinct
    # A bound j ranges over i as well: sum_j delta_ij is 1, not 0.
    silent("kronecker_distinct", S(KroneckerDelta(i, j) * g[j], j), CTX_IJ)


def test_sum_split():
    fires("sum_split", S(x[k] + g[k]), S(x[k]) + S(g[k]))
    fires("sum_split", S((x[k] - mu) * g[k]), S(x[k] * g[k]) + S(-mu * g[k]))
    silent("sum_split", S(x[k] * g[k]))


def test_sum_pull_constant():
    fires("sum_pull_constant", S(2 * mu * x[k] / sigma), 2 * mu / sigma * S(x[k]))
    fires("sum_pull_constant", S(x[i] * x[k] * g[k]), x[i] * S(x[k] * g[k]))
    fires("sum_pull_constant", S(S(g[m], m) * x[k]), S(g[m], m) * S(x[k]))
    silent("sum_pull_constant", S(x[k] * g[k]))
    silent("sum_pull_constant", S(mu))  # nothing left inside: that is sum_constant


def test_sum_constant():
    fires("sum_constant", S(mu / sigma), n * mu / sigma)
    fires("sum_constant", S(x[i]), n * x[i])
    silent("sum_constant", S(x[k]))
    silent("sum_constant", Sum(mu, (k, 1, n - 1)))


def test_definitions_come_from_the_model():
    # mu is expanded by its declared definition; sigma stays a root with sigma**2 = radicand
    assert prove_zero(S(x[k]) - n * mu, CTX).proved
    assert prove_zero(S(x[m], m) - S(x[ell], ell), CTX).proved
    assert prove_zero(S((x[k] - mu) ** 2) - n * sigma**2, CTX).proved
    assert prove_zero(S((mu - x[k]) ** 2) - n * (sigma**2 - eps), CTX_EPS).proved
    assert prove_zero(S(x[k] ** 2) - n * sigma**2 - n * mu**2, CTX).proved
    # and they cannot be bent: each of these is false
    assert not prove_zero(S(g[k]) - n * mu, CTX).proved
    assert not prove_zero(S((x[k] - mu) ** 2) - n * sigma**2, CTX_EPS).proved
    assert not prove_zero(S(x[k] ** 2) - n * sigma**2, CTX).proved
    assert not prove_zero(Sum(x[k], (k, 1, n - 1)) - n * mu, CTX).proved
    assert not prove_zero(sigma - mu, CTX).proved


def test_equal_radicands_share_one_root():
    # route C's sigma_p has the radicand of sigma once p = x - mu is expanded
    assert prove_zero(sigma_p - sigma, CTX).proved
    # a square root written in a side is recognised as the root node
    assert prove_zero(sqrt(S((x[k] - mu) ** 2) / n) - sigma, CTX).proved
    assert not prove_zero(sqrt(S((x[k] - mu) ** 2) / (n - 1)) - sigma, CTX).proved


def test_rename_bound():
    a = apply_rule("rename_bound", S(g[j] * x[j], j), CTX)
    b = apply_rule("rename_bound", S(x[m] * g[m], m), CTX)
    assert a == b and a != S(g[j] * x[j], j)
    # The canonical dummy is never captured: it occurs in the summand, so no rename.
    k0 = Symbol("k_0", integer=True)
    silent("rename_bound", S(g[j] * x[k0], j))


def test_rules_do_not_fire_on_unrelated_expressions():
    e = mu * sigma + x[i] * g[i]
    for rule in RULES:
        silent(rule, e)


def test_counterexample_point_uses_definitions():
    from fractions import Fraction

    import mpmath

    cex = counterexample(sigma**2 - W - 1, CTX_EPS)  # false: sigma^2 = W + eps
    assert cex is not None
    e = Fraction(cex.point["eps"])
    with mpmath.workdps(50):
        assert abs(cex.value - (mpmath.mpf(e.numerator) / e.denominator - 1)) < 1e-30
    assert counterexample(sigma**2 - W - eps, CTX_EPS) is None


def test_flattened_multi_limit_sums():
    # SymPy flattens Sum(Sum(f, (k, ..)), (m, ..)) into Sum(f, (k, ..), (m, ..)).
    q, r = index_symbol("q"), index_symbol("r")
    nested = Sum(x[k] * g[m], (k, 1, n), (m, 1, n))
    fires("sum_pull_constant", nested, S(g[m] * S(x[k]), m))
    a = apply_rule("rename_bound", Sum(g[j] * x[m], (j, 1, n), (m, 1, n)), CTX)
    b = apply_rule("rename_bound", Sum(g[q] * x[r], (q, 1, n), (r, 1, n)), CTX)
    assert a == b
    silent("kronecker_distinct", Sum(KroneckerDelta(i, j) * g[k], (k, 1, n), (j, 1, n)), CTX_IJ)
    assert prove_zero(Sum(KroneckerDelta(m, k) * x[k], (k, 1, n), (m, 1, n)) - n * mu, CTX).proved


def test_context_make():
    ctx = Context.make(SEED, distinct=[(j, i)])
    assert ctx.in_range == {i, j} and ctx.distinct == {frozenset((i, j))}
    assert ctx.n == n
    with pytest.raises(ValueError):
        Context.make(SEED, distinct=[(i, i)])
