"""Tests for the general-n prover (derive.alln).

Claims are built by hand, independently of the model's own derivatives: ``sympy.diff``
and the chain rule through the definitions of mu and sigma, sums left unevaluated.  The
symbols are the batch-norm presets' (the prover takes its definitions from the model).
"""

import time
from fractions import Fraction

import pytest
from sympy import (
    Dummy,
    I,
    Indexed,
    Integer,
    KroneckerDelta,
    Sum,
    Symbol,
    diff,
    exp,
    log,
    sqrt,
)

from derive.alln import (
    RULES,
    Context,
    Proof,
    _interchange,
    _positive,
    _ring_expand,
    apply_rule,
    counterexample,
    prove_equal,
    prove_zero,
)
from derive.checking import verify_document
from derive.language import N_SYMBOL as n
from derive.language import index_symbol, parse
from derive.model import Model
from derive.spec import from_table, preset

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
        "sum_interchange",
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
    assert ctx.in_range == {(i, n), (j, n)} and ctx.distinct == {frozenset((i, j))}
    assert ctx.n == n
    with pytest.raises(ValueError):
        Context.make(SEED, distinct=[(i, i)])


# --- exp, log and constraints (softmax) ------------------------------------------------

SOFTMAX_TABLE = {
    "vectors": ["z", "t", "w", "y"],
    "scalars": ["c"],
    "positive": ["w", "a"],  # every w[k] > 0; the scalar a > 0
    "constraints": ["sum(t[k], k) = 1"],
    "nodes": [
        "Z = sum(exp(z[k]), k)",
        "p[i] = exp(z[i])/Z",
        "C = -sum(t[k]*log(p[k]), k)",
        "lse = log(Z)",
        "o[i] = z[i] - lse",
        "r = sqrt(sum(y[k]**2, k))",  # a root: only >= 0
    ],
}
UNCONSTRAINED_TABLE = {key: v for key, v in SOFTMAX_TABLE.items() if key != "constraints"}
SOFT = Model(from_table(SOFTMAX_TABLE), n)
FREE = Model(from_table(UNCONSTRAINED_TABLE), n)
z, t, w, y, sp_, o = (SOFT.families[name] for name in ("z", "t", "w", "y", "p", "o"))
a, c, r = (SOFT.scalars[name] for name in ("a", "c", "r"))
SCTX = Context.make(SOFT, in_range=(i,))
SCTX_IJ = Context.make(SOFT, in_range=(i, j))
FCTX = Context.make(FREE, in_range=(i,))
SUM_EXP = S(exp(z[m]), m)


def cross_entropy():
    """C = -sum_k t_k log softmax(z)_k, by hand; SymPy's diff gives the Kronecker deltas."""
    return -S(t[k] * log(exp(z[k]) / SUM_EXP))


def parsed(text, model=SOFT, **indices):
    return parse(text, model, indices)


def test_positive_by_form():
    ok = [exp(y[i]), w[k], a, n, Integer(3), S(w[k]), SUM_EXP, w[i] * exp(c), 1 / SUM_EXP]
    ok += [sqrt(w[i]), w[i] + a, S(w[k] * exp(y[k]))]
    for e in ok:
        assert _positive(e, SCTX), e
    bad = [y[i], c, t[k], r, y[i] ** 2, w[i] - 1, -w[i], Integer(0), Sum(w[k], (k, 1, n - 1))]
    bad += [Dummy("s", positive=True), S(y[k] * w[k]), w[i] * y[i]]
    for e in bad:
        assert not _positive(e, SCTX), e
    # From the declarations: the same name in a model that does not declare it positive.
    plain = Model(from_table({**SOFTMAX_TABLE, "positive": []}), n)
    assert not _positive(plain.families["w"][k], Context.make(plain))


def test_log_exp():
    fires("log_exp", log(exp(z[i]), evaluate=False), z[i], SCTX)
    # SymPy leaves this one alone (it cannot tell that sqrt(y_i) is real)
    fires("log_exp", log(exp(sqrt(S(y[k] ** 2)))), sqrt(S(y[k] ** 2)), SCTX)
    # A complex u: log(exp(u)) is u only up to 2 pi I.
    silent("log_exp", log(exp(I * z[i]), evaluate=False), SCTX)
    silent("log_exp", log(exp(Symbol("q"))), SCTX)  # a symbol with no assumptions


def test_exp_log():
    # SymPy simplifies exp(log(u)) to u by itself, for any u (see the report); the
    # rule is for an unevaluated one and states the side condition.
    assert exp(log(y[i])) == y[i]
    fires("exp_log", exp(log(w[k]), evaluate=False), w[k], SCTX)
    fires("exp_log", exp(log(SUM_EXP), evaluate=False), SUM_EXP, SCTX)
    silent("exp_log", exp(log(y[k]), evaluate=False), SCTX)  # y real: log y may not exist
    silent("exp_log", exp(log(r), evaluate=False), SCTX)  # a root may be 0
    silent("exp_log", exp(log(y[k] ** 2), evaluate=False), SCTX)


def test_log_product():
    fires("log_product", log(w[k] * exp(z[k])), log(w[k]) + z[k], SCTX)
    fires("log_product", log(exp(z[i]) / SUM_EXP), z[i] + log(1 / SUM_EXP), SCTX)
    fires("log_product", log(2 * a * w[i]), log(2) + log(a) + log(w[i]), SCTX)
    silent("log_product", log(y[k] * z[k]), SCTX)  # both may be negative
    silent("log_product", log(w[k] * y[k]), SCTX)  # y not known positive
    silent("log_product", log(r * w[i]), SCTX)  # a root is only >= 0
    silent("log_product", log(y[i] ** 2 * w[i]), SCTX)  # y_i**2 may be 0
    silent("log_product", log(-2 * w[i]), SCTX)
    silent("log_product", log(Sum(w[k], (k, 1, n - 1)) * w[i]), SCTX)  # empty at n = 1
    # and the prover cannot be led to the split either
    assert not prove_zero(log(y[i] * z[i]) - log(y[i]) - log(z[i]), SCTX).proved


def test_log_power():
    fires("log_power", log(SUM_EXP**-2), -2 * log(SUM_EXP), SCTX)
    fires("log_power", log(sqrt(w[i])), log(w[i]) / 2, SCTX)
    fires("log_power", log(a**3), 3 * log(a), SCTX)
    silent("log_power", log(y[i] ** 2), SCTX)  # 2 log y_i has no value for y_i < 0
    silent("log_power", log(y[i] ** 3), SCTX)
    silent("log_power", log(r**2), SCTX)
    silent("log_power", log(w[i] ** c), SCTX)  # true, but outside the rule: c not rational


def test_exp_sum():
    fires("exp_sum", exp(z[i] + c), exp(z[i]) * exp(c), SCTX)
    fires("exp_sum", exp(z[i] - 2 * c), exp(z[i]) * exp(-2 * c), SCTX)
    # an identity everywhere, so there is no unsound case; it leaves non-sums alone
    silent("exp_sum", exp(2 * z[i]), SCTX)
    silent("exp_sum", S(exp(z[k])), SCTX)  # and a sum of exponentials stays a Sum
    # the shifted softmax: the constant leaves the sum
    shifted = exp(z[i] - c) / S(exp(z[k] - c))
    proof = prove_zero(shifted - sp_[i], SCTX)
    assert proof.proved and "exp_sum" in {s.rule for s in proof.steps}


def test_constraint_rule():
    (rule,) = SCTX.rules
    assert rule.name == "constraint[1]" and "sum(t[k], k) = 1" in rule.condition
    fires("constraint[1]", exp(z[i]) * S(t[k]), exp(z[i]), SCTX)
    fires("constraint[1]", S(t[j], j) - 1, 0, SCTX)  # any name of the bound index
    fires("constraint[1]", S(y[m] * S(t[k]), m), S(y[m], m), SCTX)  # nested
    fires("constraint[1]", Sum(t[k], (k, 1, n), (m, 1, n)), S(1, m), SCTX)  # flattened
    silent("constraint[1]", Sum(t[k], (k, 1, n - 1)), SCTX)  # another range
    silent("constraint[1]", S(t[k] * y[k]), SCTX)  # another sum
    silent("constraint[1]", S(t[k] * KroneckerDelta(i, k)), SCTX)  # depends on i
    assert FCTX.rules == ()
    with pytest.raises(KeyError):
        apply_rule("constraint[1]", S(t[k]), FCTX)


def test_constraints_in_order_and_scaled():
    table = {
        **UNCONSTRAINED_TABLE,
        "constraints": [
            "2*sum(t[k], k) = 2",
            "sum(y[k], k) = sum(t[k], k) + c",
            "sum(t[k]*y[k], k) + sum(y[k], k) = 3",
        ],
    }
    ctx = Context.make(Model(from_table(table), n), in_range=(i,))
    assert [rule.name for rule in ctx.rules] == [f"constraint[{q}]" for q in (1, 2, 3)]
    for e in (S(t[k]) - 1, S(y[k]) - 1 - c, S(y[k] * t[k]) - 2 + c):
        assert prove_zero(e, ctx).proved, e
    assert not prove_zero(S(y[k]) - 1, ctx).proved
    # Two sums equated to each other: one is rewritten to the other, and that terminates.
    table["constraints"] = ["sum(t[k], k) = sum(y[k], k)", "sum(y[k], k) = 2"]
    ctx = Context.make(Model(from_table(table), n), in_range=(i,))
    assert prove_zero(S(t[k]) - 2, ctx).proved and prove_zero(S(y[k]) - 2, ctx).proved


def test_softmax_cross_entropy_gradient_all_n():
    by_hand = diff(cross_entropy(), z[i])
    proof = prove_equal(by_hand, exp(z[i]) / SUM_EXP - t[i], SCTX)
    assert proof.proved, str(proof)
    assert "constraint[1]" in {s.rule for s in proof.steps}
    # and the same claim read by the language, through the declared graph
    proof = prove_equal(parsed("D(C, z[i])", i=i), sp_[i] - t[i], SCTX)
    assert proof.proved, str(proof)
    hess = parsed("D(D(C, z[i]), z[j])", i=i, j=j)
    assert prove_equal(hess, sp_[i] * KroneckerDelta(i, j) - sp_[i] * sp_[j], SCTX_IJ).proved


def test_log_softmax_all_n():
    proof = prove_equal(o[i], log(sp_[i]), SCTX)
    assert proof.proved, str(proof)
    assert {"log_product", "log_power"} <= {s.rule for s in proof.steps}
    lhs = z[i] - log(SUM_EXP)
    assert prove_equal(lhs, log(exp(z[i]) / SUM_EXP), SCTX).proved
    assert prove_equal(exp(o[i]), sp_[i], SCTX).proved


def test_true_softmax_claims_have_no_counterexample():
    assert counterexample(diff(cross_entropy(), z[i]) - sp_[i] + t[i], SCTX) is None
    assert counterexample(o[i] - log(sp_[i]), SCTX) is None


def test_counterexample_meets_the_constraint():
    # The numeric side solves the constraint for one input (model.solved), so the
    # constraint itself is never refuted, and a point it reports satisfies it.
    assert counterexample(S(t[k]) - 1, SCTX) is None
    assert counterexample(S(t[k]) - 1, FCTX) is not None
    wrong = parsed("D(D(C, z[i]), z[i])", i=i) - 2 * sp_[i] * (1 - sp_[i])  # xgb's claim
    assert not prove_zero(wrong, SCTX).proved
    cex = counterexample(wrong, SCTX)
    assert cex is not None and cex.value != 0  # confirmed at twice the precision
    total = sum(Fraction(cex.point[f"t_{q}"]) for q in range(1, cex.n + 1))
    assert total == 1


@pytest.mark.parametrize(
    "lhs, rhs, ctx",
    [
        # d holds Z fixed: the partial derivative is not the Jacobian
        (parsed("d(p[i], z[j])", i=i, j=j), sp_[i] * (KroneckerDelta(i, j) - sp_[j]), SCTX_IJ),
        (diff(cross_entropy(), z[i]), t[i] - exp(z[i]) / SUM_EXP, SCTX),  # sign
        (diff(cross_entropy(), z[i]), exp(z[i]) / SUM_EXP - 2 * t[i], SCTX),
        (o[i], log(sp_[i]) + log(2), SCTX),
        (log(w[i] * w[j]), log(w[i]) + log(w[j]) + log(a), SCTX),
    ],
)
def test_wrong_softmax_claims_refuted(lhs, rhs, ctx):
    proof = prove_equal(lhs, rhs, ctx)
    assert proof.proved is False and proof.residual != 0
    cex = counterexample(lhs - rhs, ctx)
    assert cex is not None and abs(cex.value) > 1e-6


def test_claim_true_only_under_constraint_is_not_proved_without_it():
    lhs, rhs = diff(cross_entropy(), z[i]), exp(z[i]) / SUM_EXP - t[i]
    assert prove_equal(lhs, rhs, SCTX).proved
    proof = prove_equal(lhs, rhs, FCTX)
    assert not proof.proved and proof.residual != 0
    assert "constraint[1]" not in {s.rule for s in proof.steps}
    cex = counterexample(lhs - rhs, FCTX)
    assert cex is not None and abs(cex.value) > 1e-6


def test_final_stage_does_not_split_logs():
    # SymPy's expand(log=True) would split log(w_i y_i) (w_i > 0) into log w_i + log y_i;
    # the final stage leaves logs to the rules, which need every factor positive.
    assert _ring_expand(log(w[i] * y[i])) == log(w[i] * y[i])
    assert not prove_zero(log(w[i] * y[i]) - log(w[i]) - log(y[i]), SCTX).proved


CTX_I_J = Context.make(SEED, in_range=(i, j))  # both in range, not known distinct


def test_kronecker_substitute():
    fires("kronecker_substitute", KroneckerDelta(i, j) * x[j], KroneckerDelta(i, j) * x[i], CTX_I_J)
    fires(
        "kronecker_substitute",
        KroneckerDelta(j, i) * (x[j] - g[i]) ** 2,
        KroneckerDelta(i, j) * (x[i] - g[i]) ** 2,
        CTX_I_J,
    )
    silent("kronecker_substitute", KroneckerDelta(i, j) * mu, CTX_I_J)  # nothing to replace
    # j -> i inside a sum binding i would be captured
    silent("kronecker_substitute", KroneckerDelta(i, j) * Sum(x[i] * x[j], (i, 1, 3)), CTX_I_J)
    # a bound index is the business of kronecker_sum, which knows the range
    inner = apply_rule("kronecker_substitute", S(KroneckerDelta(i, k) * x[k]), CTX_I_J)
    assert inner == S(KroneckerDelta(i, k) * x[k])
    # after distributing, delta_ij meets f(j) in the numerator: a second round proves it
    e = (1 - KroneckerDelta(i, j)) * x[i] * x[j] + KroneckerDelta(i, j) * x[i] ** 2 - x[i] * x[j]
    proof = prove_zero(e, CTX_I_J)
    assert proof.proved and "kronecker_substitute" in {s.rule for s in proof.steps}
    wrong = KroneckerDelta(i, j) * x[j] - x[i]
    assert not prove_zero(wrong, CTX_I_J).proved
    assert counterexample(wrong, CTX_I_J) is not None


def test_log_together():
    sig = 1 / (1 + exp(-z[i]))
    fires("log_together", log(1 - sig), log(1 / (exp(z[i]) + 1)), SCTX)
    fires("log_together", log(1 + exp(-z[i])), log((exp(z[i]) + 1) * exp(-z[i])), SCTX)
    silent("log_together", log(1 - exp(-z[i])), SCTX)  # e^z - 1 may be <= 0
    silent("log_together", log(1 - y[i] / (1 + w[i])), SCTX)  # 1 + w - y may be <= 0
    silent("log_together", log(w[i] + y[i]), SCTX)  # no common denominator to take
    # binary cross-entropy with logits, the stable form torch computes
    bce = -t[i] * log(sig) - (1 - t[i]) * log(1 - sig)
    proof = prove_equal(bce, (1 - t[i]) * z[i] + log(1 + exp(-z[i])), SCTX)
    assert proof.proved, str(proof)
    assert not prove_equal(bce, (1 - t[i]) * z[i] + log(1 + exp(z[i])), SCTX).proved


def test_softmax_hessian_bound_all_n():
    # cross_entropy.toml's xgboost-bound: needs delta_ij p_j = delta_ij p_i after distributing
    hess = parsed("D(D(C, z[i]), z[j])", i=i, j=j)
    d = KroneckerDelta(i, j)
    lhs = 2 * sp_[i] * (1 - sp_[i]) * d - hess
    rhs = sp_[i] * (1 - sp_[i]) * d + sp_[i] * sp_[j] * (1 - d)
    assert prove_equal(lhs, rhs, SCTX_IJ).proved
    assert not prove_equal(lhs, rhs + sp_[i] * d, SCTX_IJ).proved


def test_kronecker_sum_needs_the_index_in_the_sum_s_own_size():
    # Σ_{k=1}^{T} δ_ik f(k) = f(i) only where 1 <= i <= T: an i over another size E
    # may exceed T, so the rule must not fire (several sizes, issue 19).
    from derive.claims import from_dict
    from derive.model import size_symbol

    doc = from_dict(
        {
            "document": {"id": "t", "title": "t"},
            "model": {"sizes": ["T", "E"], "arrays": ["q[T]", "e[E]"], "nodes": ["L = 1"]},
            "claims": [{"id": "c", "title": "c", "for": "all", "lhs": "1", "rhs": "1"}],
        }
    )
    model = doc.model_for(n)
    T, E = size_symbol("T"), size_symbol("E")
    q = model.families["q"]
    expr = Sum(KroneckerDelta(i, k) * q[k], (k, 1, T))
    wrong = Context.make(model, in_range={i: E})
    assert apply_rule("kronecker_sum", expr, wrong) == expr
    right = Context.make(model, in_range={i: T})
    assert apply_rule("kronecker_sum", expr, right) == q[i]
    assert apply_rule("sum_constant", Sum(q[i], (k, 1, E)), right) == E * q[i]
    with pytest.raises(ValueError, match="several sizes"):
        Context.make(model, in_range=(i,))


def test_a_root_under_a_sum_is_not_one_value():
    # Σ_k sqrt(u_k) Σ_q 1/sqrt(u_q) = n² only where every u_k is equal: a root whose
    # radicand holds a bound index must not be named as one generator (found in review).
    from derive.claims import from_dict

    doc = from_dict(
        {
            "document": {"id": "t", "title": "t"},
            "model": {"vectors": ["y"], "nodes": ["r[i] = sqrt(y[i]**2 + 1)", "L = 1"]},
            "claims": [
                {
                    "id": "c",
                    "title": "c",
                    "for": "all",
                    "lhs": "sum(r[k], k)*sum(1/r[q], q)",
                    "rhs": "n**2",
                },
                {
                    "id": "bare",
                    "title": "bare",
                    "for": "all",
                    "lhs": "sum(sqrt(y[k]**2 + 1), k)*sum(1/sqrt(y[q]**2 + 1), q)",
                    "rhs": "n**2",
                },
            ],
        }
    )
    for c in verify_document(doc, (1, 2), all_n=True).claims:
        assert c.status == "fails" and not c.proved_all_n, c.claim.id


# Σ over two indices in either order, and with the factors of the outer sum outside
# or inside the inner one: one sum (Fubini, finite sums with constant limits).
INTERCHANGED = [
    (S(x[k] * S(g[m] * x[m] * p[k], m)), S(S(x[m] * g[k] * x[k] * p[m], m))),
    (S(x[k] * g[k] * S(p[m], m)), S(p[k] * S(x[m] * g[m], m))),
    (S(S(x[k] * g[m], m) + x[k] * p[k]), S(g[k], k) * S(x[m], m) + S(x[m] * p[m], m)),
    (S(S(S(x[k] * g[m] * p[ell], ell), m)), S(S(S(x[m] * g[ell] * p[k], k), m), ell)),
]


@pytest.mark.parametrize("a, b", INTERCHANGED)
def test_sum_interchange_makes_reordered_sums_one(a, b):
    assert _interchange(a, CTX) == _interchange(b, CTX)
    assert prove_zero(a - b, CTX).proved
    # The shortcut agrees with the full check: each canonical form has the value of
    # the sum it came from, at concrete n with random data.
    for e in (a, b):
        assert counterexample(_interchange(e, CTX) - e, CTX) is None


# Reordered wrongly: a factor moved to the other index, or the sums' sizes swapped.
NOT_INTERCHANGED = [
    (S(x[k] * S(g[m] * p[m], m)), S(x[k] * S(g[k] * p[m], m))),
    (S(x[k] * S(g[m] * p[k], m)), S(x[k] * S(g[k] * p[m], m)) + x[i]),
]


@pytest.mark.parametrize("a, b", NOT_INTERCHANGED)
def test_sum_interchange_does_not_prove_a_wrong_order(a, b):
    assert not prove_zero(a - b, CTX).proved
    assert counterexample(a - b, CTX) is not None


def test_sum_interchange_keeps_each_sum_s_size():
    from derive.claims import from_dict
    from derive.model import size_symbol

    doc = from_dict(
        {
            "document": {"id": "t", "title": "t"},
            "model": {"sizes": ["T", "E"], "arrays": ["X[T, E]"], "nodes": ["L = 1"]},
            "claims": [{"id": "c", "title": "c", "for": "all", "lhs": "1", "rhs": "1"}],
        }
    )
    model = doc.model_for(n)
    T, E = size_symbol("T"), size_symbol("E")
    X = model.families["X"]
    ctx = Context.make(model)
    a = Sum(Sum(X[k, m], (m, 1, E)), (k, 1, T))
    assert prove_zero(a - Sum(Sum(X[k, m], (k, 1, T)), (m, 1, E)), ctx).proved
    # The same summand with the limits' sizes exchanged is another sum (T != E).
    wrong = Sum(Sum(X[k, m], (m, 1, T)), (k, 1, E))
    assert _interchange(a, ctx) != _interchange(wrong, ctx)
    assert not prove_zero(a - wrong, ctx).proved
