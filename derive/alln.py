"""General-n prover: reduce SymPy expressions over a symbolic batch size n to 0.

The expressions come from the claim evaluator after ``sympy.diff``: unevaluated
``Sum(f, (k, 1, n))`` nodes with ``KroneckerDelta`` inside, and the symbols ``mu`` and
``sigma`` standing for the batch mean and standard deviation.  A small table of sound
rewrite rules (each with a LaTeX statement and its side condition) is applied to a
fixpoint, every change recorded as a named ``Step``; a final rational normal form,
treating the remaining sums as opaque atoms, decides whether the expression is 0.

No rule encodes a derivative of mu or sigma: only the *definitions*
``sum_k x_k = n mu`` and ``sum_k (x_k - mu)^2 = n (sigma^2 - eps)`` are used, so every
derivative fact has to come out of the chain rule the caller applied.

``counterexample`` is the independent check: it evaluates the expression at concrete n
and random rational data, with mu and sigma computed from x.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sympy import (
    Add,
    Basic,
    Eq,
    Expr,
    Indexed,
    IndexedBase,
    Integer,
    KroneckerDelta,
    Mul,
    Pow,
    Rational,
    Sum,
    Symbol,
    cancel,
    expand,
    sqrt,
)

__all__ = [
    "Context",
    "Counterexample",
    "Proof",
    "Rule",
    "RULES",
    "RULES_BY_NAME",
    "Step",
    "apply_rule",
    "counterexample",
    "prove_equal",
    "prove_zero",
]


@dataclass(frozen=True)
class Context:
    """What the prover may assume about the symbols of a claim."""

    n: Symbol
    x: IndexedBase
    mu: Symbol
    sigma: Symbol
    eps: Symbol | None = None  # None: sigma^2 is the plain (biased) variance
    in_range: frozenset = frozenset()  # index symbols known to satisfy 1 <= idx <= n
    distinct: frozenset = frozenset()  # frozenset({a, b}) pairs known to satisfy a != b

    @classmethod
    def make(
        cls,
        n: Symbol,
        x: IndexedBase,
        mu: Symbol,
        sigma: Symbol,
        eps: Symbol | None = None,
        in_range: Iterable[Symbol] = (),
        distinct: Iterable[Iterable[Symbol]] = (),
    ) -> Context:
        """Build a context; indices named in ``distinct`` are also taken to be in range,
        since a claim "for i != j" is about indices of the batch."""
        pairs = frozenset(frozenset(p) for p in distinct)
        if any(len(p) != 2 for p in pairs):
            raise ValueError("distinct pairs must name two different symbols")
        in_range = frozenset(in_range).union(*pairs) if pairs else frozenset(in_range)
        return cls(n, x, mu, sigma, eps, in_range, pairs)

    @property
    def eps_value(self) -> Expr:
        return Integer(0) if self.eps is None else self.eps


@dataclass(frozen=True)
class Step:
    rule: str
    expr: Basic


@dataclass(frozen=True)
class Proof:
    proved: bool
    steps: tuple[Step, ...]
    residual: Expr

    def __str__(self) -> str:
        lines = [f"{s.rule:>22}:  {s.expr}" for s in self.steps]
        lines.append("QED" if self.proved else f"NOT PROVED, residual {self.residual}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Counterexample:
    n: int
    point: dict  # symbol / Indexed -> value (mu and sigma included, computed from x)
    value: Expr  # the expression evaluated there, a 50-digit Float


@dataclass(frozen=True)
class _Scope:
    """Binding information at a node: the walker extends it when entering a Sum."""

    in_range: frozenset  # symbols known to lie in 1..n here (free claim indices or binders)
    bound: frozenset  # symbols bound by an enclosing Sum (never claim indices)


# A node rewrite returns the replacement, or None when it does not apply.
NodeRewrite = Callable[[Basic, Context, _Scope], Basic | None]


@dataclass(frozen=True)
class Rule:
    name: str
    latex: str
    condition: str
    rewrite: NodeRewrite


def _enter(scope: _Scope, limits, ctx: Context) -> _Scope:
    """Scope inside binders ``limits``: each binder shadows a free symbol of the same name,
    and is in range only if it runs over exactly 1..n."""
    rng, bound = scope.in_range, scope.bound
    for k, lo, hi in limits:
        rng = rng - {k}
        if lo == 1 and hi == ctx.n:
            rng = rng | {k}
        bound = bound | {k}
    return _Scope(rng, bound)


def _walk(expr: Basic, fn: NodeRewrite, ctx: Context, scope: _Scope) -> Basic:
    """Apply ``fn`` bottom-up to every node, tracking which symbols are bound in range."""
    if not expr.args:
        return expr
    inner = _enter(scope, expr.limits, ctx) if isinstance(expr, Sum) else scope
    args = tuple(_walk(a, fn, ctx, inner) for a in expr.args)
    if args != expr.args:
        expr = expr.func(*args)
    new = fn(expr, ctx, scope)
    return expr if new is None else new


def _innermost(fn: NodeRewrite) -> NodeRewrite:
    """Lift a rule on single-limit sums to SymPy's flattened ``Sum(f, (k, ..), (m, ..))``
    (which means sum_m sum_k f): rewrite sum_k f with the outer binders in scope."""

    def rewrite(node, ctx, scope):
        if not (isinstance(node, Sum) and len(node.limits) > 1):
            return fn(node, ctx, scope)
        outer = node.limits[1:]
        new = fn(Sum(node.function, node.limits[0]), ctx, _enter(scope, outer, ctx))
        return None if new is None else Sum(new, *outer)

    return rewrite


def apply_rule(rule: Rule | str, expr: Expr, ctx: Context) -> Expr:
    """One pass of a rule over the whole expression (each matching node rewritten once)."""
    if isinstance(rule, str):
        rule = RULES_BY_NAME[rule]
    return _walk(expr, rule.rewrite, ctx, _Scope(ctx.in_range, frozenset()))


def _over_1_to_n(node: Basic, ctx: Context):
    """(summand, k) of a single-limit Sum over k = 1..n, else None."""
    if isinstance(node, Sum) and len(node.limits) == 1:
        k, lo, hi = node.limits[0]
        if lo == 1 and hi == ctx.n:
            return node.function, k
    return None


def _binds(expr: Basic, sym: Symbol) -> bool:
    """Whether some Sum inside ``expr`` binds ``sym`` (substituting it would be captured)."""
    return any(sym in s.variables for s in expr.atoms(Sum))


# --- Kronecker delta -------------------------------------------------------------------


def _rw_delta_distinct(node, ctx, scope):
    # Only free claim indices: a bound j in sum_j delta_{ij} ranges over i as well.
    if isinstance(node, KroneckerDelta) and len(node.args) == 2:
        a, b = node.args
        if a in scope.bound or b in scope.bound:
            return None
        if frozenset((a, b)) in ctx.distinct:
            return Integer(0)
    return None


def _delta_partner(factor: Basic, k: Symbol) -> Symbol | None:
    """For factor delta_{a k}^p (p a positive integer), the other index a."""
    base = factor
    if isinstance(factor, Pow):
        base, p = factor.args
        if not (p.is_Integer and p > 0):
            return None
    if isinstance(base, KroneckerDelta) and len(base.args) == 2 and k in base.args:
        a = base.args[1] if base.args[0] == k else base.args[0]
        if isinstance(a, Symbol) and a != k:
            return a
    return None


def _rw_delta_sum(node, ctx, scope):
    hit = _over_1_to_n(node, ctx)
    if hit is None:
        return None
    f, k = hit
    for factor in Mul.make_args(f):
        a = _delta_partner(factor, k)
        if a is not None and a in scope.in_range and not _binds(f, a):
            # delta_{aa} = 1, so substituting into the whole summand gives f(a).
            return f.subs(k, a)
    return None


# --- linearity of sums -----------------------------------------------------------------


def _distribute(f: Expr) -> Expr:
    # Only ring operations (distribute products, expand integer powers of sums).
    return expand(f, power_base=False, power_exp=False, log=False)


def _rw_sum_split(node, ctx, scope):
    if isinstance(node, Sum) and len(node.limits) == 1:
        f = _distribute(node.function)
        if isinstance(f, Add):
            return Add(*(Sum(t, *node.limits) for t in f.args))
    return None


def _rw_sum_pull(node, ctx, scope):
    if isinstance(node, Sum) and len(node.limits) == 1:
        k = node.limits[0][0]
        inside, outside = [], []
        for factor in Mul.make_args(node.function):
            (inside if k in factor.free_symbols else outside).append(factor)
        if outside and inside:
            return Mul(*outside) * Sum(Mul(*inside), *node.limits)
    return None


def _rw_sum_const(node, ctx, scope):
    hit = _over_1_to_n(node, ctx)
    if hit is not None and hit[1] not in hit[0].free_symbols:
        return ctx.n * hit[0]
    return None


# --- definitions of mu and sigma -------------------------------------------------------


def _rw_mean_def(node, ctx, scope):
    hit = _over_1_to_n(node, ctx)
    if hit is not None and hit[0] == ctx.x[hit[1]]:
        return ctx.n * ctx.mu
    return None


def _rw_var_def(node, ctx, scope):
    hit = _over_1_to_n(node, ctx)
    if hit is not None:
        f, k = hit
        centred_sq = (ctx.x[k] - ctx.mu) ** 2
        if f == centred_sq or (f.has(ctx.x[k]) and _distribute(f - centred_sq) == 0):
            return ctx.n * (ctx.sigma**2 - ctx.eps_value)
    return None


def _rw_second_moment(node, ctx, scope):
    hit = _over_1_to_n(node, ctx)
    if hit is not None and hit[0] == ctx.x[hit[1]] ** 2:
        return ctx.n * (ctx.sigma**2 - ctx.eps_value) + ctx.n * ctx.mu**2
    return None


# --- alpha-renaming --------------------------------------------------------------------


def _canonical_index(depth: int) -> Symbol:
    return Symbol(f"k_{depth}", integer=True)


def _rw_alpha(node, ctx, scope):
    # Same sum, different dummy names (sum_j g_j vs sum_k g_k) must become the same atom.
    # Binders get canonical names by depth (innermost limit deepest); a name is used only
    # if it occurs nowhere in the node, so the renaming is a bijection that captures nothing.
    if not isinstance(node, Sum):
        return None
    depth = len(scope.bound) + len(node.limits) - 1
    names = {}
    for t, (k, _, _) in enumerate(node.limits):
        c = _canonical_index(depth - t)
        if k != c:
            if node.has(c):
                return None
            names[k] = c
    bounds = [e for _, lo, hi in node.limits for e in (lo, hi)]
    if not names or any(e.has(*names) for e in bounds):
        return None
    return node.xreplace(names)


RULES: tuple[Rule, ...] = (
    Rule(
        "kronecker_distinct",
        r"\delta_{ij} = 0",
        "{i, j} is a known-distinct pair of free indices",
        _rw_delta_distinct,
    ),
    Rule(
        "kronecker_sum",
        r"\sum_{k=1}^{n} \delta_{ik} f(k) = f(i)",
        "1 <= i <= n (i in in_range, or bound by an enclosing sum over 1..n); "
        "delta_{ik} is a factor of the summand",
        _innermost(_rw_delta_sum),
    ),
    Rule(
        "var_def",
        r"\sum_{k=1}^{n} (x_k - \mu)^2 = n(\sigma^2 - \varepsilon)",
        "definition of sigma; summand is (x_k - mu)^2 up to expansion",
        _innermost(_rw_var_def),
    ),
    Rule(
        "sum_split",
        r"\sum_k (a_k + b_k) = \sum_k a_k + \sum_k b_k",
        "summand is a sum once products are distributed",
        _innermost(_rw_sum_split),
    ),
    Rule(
        "sum_pull_constant",
        r"\sum_k c\, a_k = c \sum_k a_k",
        "c does not contain the bound index k",
        _innermost(_rw_sum_pull),
    ),
    Rule(
        "sum_constant",
        r"\sum_{k=1}^{n} c = n c",
        "c does not contain the bound index k",
        _innermost(_rw_sum_const),
    ),
    Rule(
        "mean_def",
        r"\sum_{k=1}^{n} x_k = n \mu",
        "definition of mu",
        _innermost(_rw_mean_def),
    ),
    Rule(
        "second_moment",
        r"\sum_{k=1}^{n} x_k^2 = n(\sigma^2 - \varepsilon) + n\mu^2",
        "definitions of mu and sigma (var_def after expansion, with mean_def)",
        _innermost(_rw_second_moment),
    ),
    Rule(
        "rename_bound",
        r"\sum_{j} f(j) = \sum_{k} f(k)",
        "alpha-renaming to a canonical dummy that does not occur in the summand",
        _rw_alpha,
    ),
)
RULES_BY_NAME = {r.name: r for r in RULES}

_MAX_STEPS = 500


def prove_zero(expr: Expr, ctx: Context) -> Proof:
    """Rewrite ``expr`` with RULES to a fixpoint, then take the rational normal form."""
    expr = Integer(0) + expr  # sympify plain numbers
    steps = [Step("given", expr)]
    for _ in range(_MAX_STEPS):
        for rule in RULES:
            new = apply_rule(rule, expr, ctx)
            if new != expr:
                expr = new
                steps.append(Step(rule.name, expr))
                break  # restart from the first rule so simple facts fire first
        else:
            break
    else:
        raise RuntimeError("rewriting did not reach a fixpoint")
    # Sums left are atoms (e.g. sum_k g_k x_k); normalise as rational functions of them.
    normal = cancel(expr)
    if normal != expr:
        steps.append(Step("rational_normal_form", normal))
    return Proof(normal == 0, tuple(steps), normal)


def prove_equal(lhs: Expr, rhs: Expr, ctx: Context) -> Proof:
    proof = prove_zero(lhs - rhs, ctx)
    statement = Step("statement", Eq(lhs, rhs, evaluate=False))
    return Proof(proof.proved, (statement, *proof.steps), proof.residual)


# --- numeric refutation ----------------------------------------------------------------


def _free_indices(expr: Expr, ctx: Context) -> list[Symbol]:
    return sorted(
        (s for s in expr.free_symbols if isinstance(s, Symbol) and s.is_integer and s != ctx.n),
        key=str,
    )


def _random_point(expr: Expr, ctx: Context, nv: int, rng: random.Random) -> dict | None:
    def rat() -> Rational:
        return Rational(rng.randint(-9, 9), rng.randint(1, 4))

    point: dict = {}
    indices = _free_indices(expr, ctx)
    for _ in range(100):
        vals = {s: Integer(rng.randint(1, nv)) for s in indices}
        if all(vals[a] != vals[b] for a, b in map(tuple, ctx.distinct) if a in vals and b in vals):
            break
    else:
        return None  # n too small for the distinctness constraints
    point.update(vals)

    bases = {a.base for a in expr.atoms(Indexed)} | {ctx.x}
    labels = {b.label for b in bases}
    for base in sorted(bases, key=str):
        for t in range(1, nv + 1):
            point[base[t]] = rat()
    xs = [point[ctx.x[t]] for t in range(1, nv + 1)]
    mean = sum(xs, Integer(0)) / nv
    var = sum(((v - mean) ** 2 for v in xs), Integer(0)) / nv

    skip = {ctx.n, ctx.mu, ctx.sigma, *indices, *labels}
    # eps enters through sigma even when the expression does not mention it.
    others = expr.free_symbols | ({ctx.eps} if ctx.eps is not None else set())
    for s in sorted(others - skip, key=str):
        if isinstance(s, Symbol):
            v = rat()
            point[s] = abs(v) + Rational(1, 7) if (s.is_positive or s.is_nonnegative) else v
    eps_v = point[ctx.eps] if ctx.eps is not None else Integer(0)
    if var + eps_v == 0:
        return None
    point[ctx.mu] = mean
    point[ctx.sigma] = sqrt(var + eps_v)
    return point


def _evaluate(expr: Expr, ctx: Context, nv: int, point: dict) -> Expr:
    index_vals = {s: v for s, v in point.items() if isinstance(s, Symbol) and s.is_integer}
    # subs respects Sum binders; doit then unrolls the now-finite sums.
    e = expr.subs({ctx.n: Integer(nv), **index_vals}, simultaneous=True).doit()
    e = e.xreplace({k: v for k, v in point.items() if k not in index_vals})
    value = e.evalf(50)
    if not value.is_number:
        raise ValueError(f"could not evaluate {expr} numerically: left with {value}")
    return value


def counterexample(
    expr: Expr,
    ctx: Context,
    *,
    n_values: Iterable[int] = (2, 3, 4, 5),
    seed: int = 0,
    trials: int = 3,
    tol: float = 1e-20,
) -> Counterexample | None:
    """A concrete point where ``expr`` is clearly nonzero, or None if none was found."""
    expr = Integer(0) + expr
    rng = random.Random(seed)
    for nv in n_values:
        for _ in range(trials):
            point = _random_point(expr, ctx, nv, rng)
            if point is None:
                continue
            value = _evaluate(expr, ctx, nv, point)
            if abs(value) > tol:
                return Counterexample(nv, point, value)
    return None
