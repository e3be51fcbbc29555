"""General-n prover: reduce SymPy expressions over a symbolic batch size n to 0.

Sides arrive from the model at a symbolic n: unevaluated ``Sum(f, (k, 1, n))``
with ``KroneckerDelta`` inside, scalar nodes (μ, σ, ...) as symbols.  The proof

1. replaces every explicit, exp and log node by its definition (rules from the
   declared model, one per node); root nodes (σ = sqrt(u)) stay as atoms;
2. applies a small table of generic, sound rewrite rules to a fixpoint, each
   change a named step: Kronecker (δ_ij f(j) = δ_ij f(i) among them), linearity
   of sums, renaming of bound indices; log(exp u) = u, exp(log u) = u,
   log(ab) = log a + log b, log(a^q) = q log a, a log's argument over a common
   denominator, exp(a + b) = exp(a) exp(b), where a, b, u are *known positive*
   by their form (``_positive``: exp(...), a declared-positive input, n, sums,
   products and rational powers of such; never a root or an even power); then
   one rule per model constraint, ``constraint[m]``: a sum the constraint
   contains (up to the names of its indices) rewritten to the rest, which holds
   wherever the claim is checked;
3. gives every square root its own generator s with s² = u (a root node keeps
   its name), and reduces the rational normal form's numerator modulo s² = u;
   the rules run again on that numerator (a few rounds), since distributing
   can bring a pattern together.  Each exp(...) and log(...) left is an
   indeterminate; SymPy's own log expansion is off (the rules split logs), and
   its automatic exp(log u) -> u holds wherever log u has a value;
4. if a numerator is left, writes every finite sum over the model's sizes in one
   canonical order (``sum_interchange``: nested sums that are factors merged,
   binders ordered and named so that the summand sorts first), since sums that
   differ only in their order of summation (Σ_a Σ_k f = Σ_k Σ_a f, the attention
   backward's dQ) are equal, and the rules cannot see it.

The claim is proved when that numerator is 0: every step is an identity (on
the points where the claim has a value and the constraints hold), so a proof
is sound.  No rule knows batch norm or softmax: the definitions come from the
document's ``[model]``.  ``counterexample`` is the independent check: it
evaluates the expression at concrete n and random rational data that meet the
constraints.

Length: one module on purpose. The rule table, each rule's side condition (what is
known positive) and the record of proof steps are read together to see that a rule is
sound; split up, a rule would sit apart from the condition that makes it safe.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import permutations

from sympy import (
    Add,
    Basic,
    Dummy,
    Eq,
    Expr,
    I,
    Indexed,
    Integer,
    KroneckerDelta,
    Mul,
    Pow,
    S,
    Sum,
    Symbol,
    default_sort_key,
    exp,
    expand,
    factor_terms,
    fraction,
    latex,
    log,
    numer,
    sqrt,
    together,
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
    "normal_form",
    "normal_forms",
    "prove_equal",
    "prove_zero",
]


@dataclass(frozen=True)
class Context:
    """What the prover may assume: the model (its definitions), facts about indices,
    the inputs known to be positive and the model's constraints as rewrite rules."""

    model: object  # model.Model at a symbolic n
    # (index, size) pairs known to satisfy 1 <= index <= size (size: n, or one of several)
    in_range: frozenset = frozenset()
    distinct: frozenset = frozenset()  # frozenset({a, b}) pairs known to satisfy a != b
    positive: frozenset = frozenset()  # input Symbols and IndexedBases known to be > 0
    rules: tuple = ()  # Rule per model constraint, applied after the generic RULES

    @classmethod
    def make(
        cls,
        model,
        in_range=(),
        distinct: Iterable[Iterable[Symbol]] = (),
    ) -> Context:
        """Build a context.  in_range: index symbols known to lie in 1..n, or a mapping
        of each to the size it lies in (a model of several sizes); indices named in
        ``distinct`` are also taken to be in range, since a claim "for i != j" is about
        indices of the batch."""
        pairs = frozenset(frozenset(p) for p in distinct)
        if any(len(p) != 2 for p in pairs):
            raise ValueError("distinct pairs must name two different symbols")
        ranges = dict(in_range) if isinstance(in_range, dict) else dict.fromkeys(in_range)
        for p in pairs:
            for a in p:
                ranges.setdefault(a, None)
        if any(v is None for v in ranges.values()) and model.spec.several:
            raise ValueError("with several sizes, in_range must give each index its size")
        in_range = frozenset((a, model.size if v is None else v) for a, v in ranges.items())
        spec = model.spec
        # From the declarations, not SymPy's assumptions (a root's generator is a
        # positive Dummy, but a root may be 0).
        positive = frozenset(model.families[v] for v in spec.indexed_inputs if v in spec.positive)
        positive |= frozenset(model.scalars[v] for v in spec.positive_scalars)
        ctx = cls(model, in_range, pairs, positive)
        return dataclasses.replace(ctx, rules=_constraint_rules(ctx))

    @property
    def n(self) -> Symbol:
        """The one size's symbol (None for a model of several: see sizes)."""
        return self.model.size

    @property
    def sizes(self) -> frozenset:
        """Every size's symbol: {n}, or one per size of a model of several."""
        return frozenset(self.model.size_of(k) for k in self.model.spec.size_names)


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
    point: dict  # input name (and free index) -> value
    value: object  # the expression's value there, at 50 digits


@dataclass(frozen=True)
class _Scope:
    """Binding information at a node: the walker extends it when entering a Sum."""

    in_range: frozenset  # (symbol, size) pairs: 1 <= symbol <= size here (free or bound)
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
    and is in range only if it runs over exactly 1..size, for a size of the model."""
    rng, bound = scope.in_range, scope.bound
    for k, lo, hi in limits:
        rng = frozenset(p for p in rng if p[0] != k)
        if lo == 1 and hi in ctx.sizes:
            rng = rng | {(k, hi)}
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
        by_name = {**RULES_BY_NAME, **{r.name: r for r in ctx.rules}}
        rule = by_name[rule]
    return _walk(expr, rule.rewrite, ctx, _Scope(ctx.in_range, frozenset()))


def _over_1_to_n(node: Basic, ctx: Context):
    """(summand, k, size) of a single-limit Sum over k = 1..size (n, or one of the
    model's several sizes), else None."""
    if isinstance(node, Sum) and len(node.limits) == 1:
        k, lo, hi = node.limits[0]
        if lo == 1 and hi in ctx.sizes:
            return node.function, k, hi
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
        if (isinstance(a, Symbol) and a != k) or a == 1:
            return a
    return None


def _rw_delta_sum(node, ctx, scope):
    hit = _over_1_to_n(node, ctx)
    if hit is None:
        return None
    f, k, size = hit
    for factor in Mul.make_args(f):
        a = _delta_partner(factor, k)
        # A literal position a >= 1 is in range wherever the claim applies (n >= a).
        # With several sizes only position 1 is: the claim may apply where this size < a.
        if a is None:
            continue
        literal = a.is_Integer and (a == 1 or not ctx.model.spec.several)
        in_range = (a, size) in scope.in_range or literal
        if in_range and not (a.is_Symbol and _binds(f, a)):
            # delta_{aa} = 1, so substituting into the whole summand gives f(a).
            return f.subs(k, a)
    return None


def _rw_delta_substitute(node, ctx, scope):
    # delta_ij f(j) = delta_ij f(i): both sides agree where i = j and are 0 elsewhere.
    # Free indices only, and never into a sum that binds either (no capture).
    if not isinstance(node, Mul):
        return None
    for factor in node.args:
        power = isinstance(factor, Pow) and factor.exp.is_Integer and factor.exp > 0
        base = factor.base if power else factor
        if not (isinstance(base, KroneckerDelta) and len(base.args) == 2):
            continue
        a, b = sorted(base.args, key=default_sort_key)
        if not (a.is_Symbol and b.is_Symbol) or a == b or {a, b} & scope.bound:
            continue
        rest = Mul(*(f for f in node.args if f is not factor))
        if rest.has(b) and not (_binds(rest, a) or _binds(rest, b)):
            return factor * rest.xreplace({b: a})
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
        return hit[2] * hit[0]
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


# --- exponentials and logarithms -------------------------------------------------------


def _positive(e: Basic, ctx: Context) -> bool:
    """e > 0 wherever it has a value, by its form alone: exp(u), a declared-positive
    input, n, a positive rational; sums, products and rational powers of those; a sum
    over 1..n of one.  A root is only >= 0 and x**2 may be 0, so neither counts."""
    if e.is_Rational:
        return bool(e > 0)
    if e is S.Exp1 or isinstance(e, exp) or e in ctx.sizes:
        return True
    if isinstance(e, Indexed):
        return e.base in ctx.positive
    if isinstance(e, Symbol):
        return e in ctx.positive
    if isinstance(e, Add | Mul):
        return all(_positive(a, ctx) for a in e.args)
    if isinstance(e, Pow):
        return bool(e.exp.is_Rational) and _positive(e.base, ctx)
    if isinstance(e, Sum):
        # n >= 1, so a sum over 1..n is never empty
        nonempty = all(lo == 1 and hi in ctx.sizes for _, lo, hi in e.limits)
        return nonempty and _positive(e.function, ctx)
    return False


def _real(u: Expr) -> bool:
    # Every atom the language makes is real; a complex u would make log(exp(u)) != u.
    return not u.has(I) and all(a.is_extended_real for a in u.free_symbols)


def _rw_log_exp(node, ctx, scope):
    # SymPy does this itself when it can tell u is real (not always for a Sum or a log).
    if isinstance(node, log) and isinstance(node.args[0], exp):
        u = node.args[0].args[0]
        if _real(u):
            return u
    return None


def _rw_exp_log(node, ctx, scope):
    # SymPy's exp(log(u)) -> u is automatic and unconditional; this rule is for an
    # unevaluated exp(log(u)), and keeps the side condition explicit.
    if isinstance(node, exp) and isinstance(node.args[0], log):
        u = node.args[0].args[0]
        if _positive(u, ctx):
            return u
    return None


def _rw_log_product(node, ctx, scope):
    if isinstance(node, log) and isinstance(node.args[0], Mul):
        factors = node.args[0].args
        if all(_positive(f, ctx) for f in factors):
            return Add(*(log(f) for f in factors))
    return None


def _rw_log_power(node, ctx, scope):
    if isinstance(node, log) and isinstance(node.args[0], Pow):
        a, k = node.args[0].args
        if k.is_Rational and _positive(a, ctx):
            return k * log(a)
    return None


def _rw_log_together(node, ctx, scope):
    # log(1 - 1/(1 + e^-z)) = log(1/(e^z + 1)): over a common denominator the argument
    # may be a product of known positives, which log_product and log_power then split.
    if isinstance(node, log) and isinstance(node.args[0], Add):
        v = together(node.args[0])
        if not isinstance(v, Add) and all(_positive(f, ctx) for f in Mul.make_args(v)):
            return log(v)
    return None


def _rw_exp_sum(node, ctx, scope):
    # So that a constant term leaves a sum: sum_k exp(z_k - c) = exp(-c) sum_k exp(z_k).
    # (exp(k a) = exp(a)**k needs no rule: SymPy writes exp(a)**k as exp(k a) itself.)
    if isinstance(node, exp) and isinstance(node.args[0], Add):
        return Mul(*(exp(t) for t in node.args[0].args))
    return None


RULES: tuple[Rule, ...] = (
    Rule(
        "kronecker_distinct",
        r"\delta_{ij} = 0",
        "{i, j} is a known-distinct pair of free indices",
        _rw_delta_distinct,
    ),
    Rule(
        "kronecker_substitute",
        r"\delta_{ij} f(j) = \delta_{ij} f(i)",
        "i, j free indices; no sum in f binds i or j",
        _rw_delta_substitute,
    ),
    Rule(
        "kronecker_sum",
        r"\sum_{k=1}^{n} \delta_{ik} f(k) = f(i)",
        "1 <= i <= n (i in in_range, or bound by an enclosing sum over 1..n); "
        "delta_{ik} is a factor of the summand",
        _innermost(_rw_delta_sum),
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
        "rename_bound",
        r"\sum_{j} f(j) = \sum_{k} f(k)",
        "alpha-renaming to a canonical dummy that does not occur in the summand",
        _rw_alpha,
    ),
    Rule(
        "log_exp",
        r"\log e^{u} = u",
        "u real (no imaginary unit; every atom real)",
        _rw_log_exp,
    ),
    Rule(
        "exp_log",
        r"e^{\log u} = u",
        "u known positive",
        _rw_exp_log,
    ),
    Rule(
        "log_product",
        r"\log (a b) = \log a + \log b",
        "every factor known positive",
        _rw_log_product,
    ),
    Rule(
        "log_power",
        r"\log a^{q} = q \log a",
        "a known positive, q rational",
        _rw_log_power,
    ),
    Rule(
        "log_together",
        r"\log\left(a + \frac{b}{c}\right) = \log \frac{a c + b}{c}",
        "over a common denominator the argument is a product of known-positive factors",
        _rw_log_together,
    ),
    Rule(
        "exp_sum",
        r"e^{a + b} = e^{a} e^{b}",
        "always (an identity)",
        _rw_exp_sum,
    ),
)
RULES_BY_NAME = {r.name: r for r in RULES}


# --- constraints -----------------------------------------------------------------------


def _closed(expr: Basic, ctx: Context) -> bool:
    """No free index but n: the term means the same wherever it is put."""
    return not any(a.is_Symbol and a.is_integer and a not in ctx.sizes for a in expr.free_symbols)


def _alpha_key(node: Basic, ctx: Context) -> Basic:
    """node with its binders renamed canonically as if it stood alone (each rename is
    an alpha-renaming, so equal keys mean equal sums)."""
    top = _Scope(frozenset(), frozenset())
    for _ in range(8):
        new = _walk(node, _rw_alpha, ctx, top)
        if new == node:
            break
        node = new
    return node


def _rewrite_sum(key: Sum, value: Expr) -> NodeRewrite:
    def rewrite(node, ctx, scope):
        if (
            isinstance(node, Sum)
            and [lim[1:] for lim in node.limits] == [lim[1:] for lim in key.limits]
            and _alpha_key(node, ctx) == key
        ):
            return value  # closed, so nothing in it is captured where it lands
        return None

    return rewrite


def _orient(e: Expr, ctx: Context) -> tuple[Sum, Expr] | None:
    """e = c S + r with S a closed sum, c a nonzero rational and S not in r: (S, -r/c)."""
    terms = Add.make_args(e)
    candidates = []
    for term in terms:
        c, rest = term.as_coeff_Mul()
        if isinstance(rest, Sum) and len(rest.limits) == 1 and c != 0 and _closed(rest, ctx):
            candidates.append((default_sort_key(rest), c, rest, term))
    for _, c, target, term in sorted(candidates, key=lambda t: t[0]):
        value = -(e - term) / c
        key = _alpha_key(target, ctx)
        if _closed(value, ctx) and all(_alpha_key(a, ctx) != key for a in value.atoms(Sum)):
            return key, value
    return None


def _constraint_rules(ctx: Context) -> tuple[Rule, ...]:
    """One rule per model constraint that has a sum to solve for: that sum (up to the
    names of its indices) becomes the rest.  The claims are about points where every
    constraint holds, so each rewrite is an identity there.  A constraint is first
    rewritten by the earlier rules, and their values by it, so no rule brings back
    another's sum and rewriting terminates."""
    model = ctx.model
    oriented: list[list] = []  # [position, key, value]
    for pos, c in enumerate(model.constraints, 1):
        e = _fixpoint(c, ctx, [])  # ctx has no constraint rules yet
        for _, key, value in oriented:
            e = _walk(e, _rewrite_sum(key, value), ctx, _Scope(frozenset(), frozenset()))
        e = _fixpoint(_distribute(e), ctx, [])
        hit = _orient(e, ctx) if e != 0 else None
        if hit is None:
            continue
        key, value = hit
        for entry in oriented:
            entry[2] = _walk(
                entry[2], _rewrite_sum(key, value), ctx, _Scope(frozenset(), frozenset())
            )
        oriented.append([pos, key, value])
    out = []
    for pos, key, value in oriented:
        spec = model.spec.constraints[pos - 1]
        out.append(
            Rule(
                f"constraint[{pos}]",
                f"{latex(key)} = {latex(value)}",
                f"the model's constraint {spec.text}",
                _innermost(_rewrite_sum(key, value)),
            )
        )
    return tuple(out)


_MAX_STEPS = 500
_ROUNDS = 3


def _fixpoint(expr: Expr, ctx: Context, steps: list) -> Expr:
    for _ in range(_MAX_STEPS):
        for rule in (*RULES, *ctx.rules):
            new = apply_rule(rule, expr, ctx)
            if new != expr:
                expr = new
                steps.append(Step(rule.name, expr))
                break  # restart from the first rule so simple facts fire first
        else:
            return expr
    raise RuntimeError("rewriting did not reach a fixpoint")


def _ring_expand(e: Expr) -> Expr:
    # Ring operations and exp(a + b) = exp(a) exp(b), both identities.  Not SymPy's
    # log splitting: it trusts assumptions, and a root's generator is a positive Dummy
    # though the root may be 0; logs are split only by the rules above.
    return expand(e, log=False)


def _is_zero(expr: Expr) -> bool:
    return _ring_expand(numer(together(expr))) == 0


class _Roots:
    """The square roots of a proof: generators with their relations s² = u."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        model = ctx.model
        self.kept = frozenset(
            n.name for n in model.nodes.values() if n.kind.name == "sqrt" and n.index is None
        )
        self.relations: list[tuple[Symbol, Expr]] = []
        self.aliases: dict = {}  # a root node whose radicand is an earlier one's (σ_p = σ)
        for node in model.nodes.values():  # declaration order
            if node.name in self.kept:
                u = _fixpoint(model.expand(node.body, self.kept).xreplace(self.aliases), ctx, [])
                same = self._find(u)
                if same is None:
                    self.relations.append((node.atom, u))
                else:
                    self.aliases[node.atom] = same

    def _find(self, base: Expr) -> Symbol | None:
        return next((s for s, u in self.relations if _is_zero(base - u)), None)

    def generator(self, base: Expr) -> Symbol:
        s = self._find(base)
        if s is None:
            s = Dummy(f"s{len(self.relations) + 1}", positive=True)
            self.relations.append((s, base))
        return s

    def name(self, expr: Expr) -> Expr:
        """expr with each square root written as a generator s (s² = its radicand).

        Never a root whose radicand holds an index some sum binds: one generator
        stands for one value, and sqrt(u_k) under Σ_k is a different value at every
        k (named, Σ_k sqrt(u_k) would become n·s, and Σ_k sqrt(u_k) Σ_q 1/sqrt(u_q)
        would "reduce" to n²).  Such a root stays as it is."""
        expr = expr.xreplace(self.aliases)
        bound = {v for t in expr.atoms(Sum) for v in t.variables}
        return expr.replace(
            lambda e: (
                isinstance(e, Pow)
                and e.exp.is_Rational
                and e.exp.q == 2
                and not (e.base.free_symbols & bound)
            ),
            lambda e: self.generator(e.base) ** int(2 * e.exp),
        )

    def reduce(self, num: Expr) -> Expr:
        """num with every s**k (k >= 2) written as s**(k mod 2) * u**(k div 2), to a fixpoint."""
        for _ in range(_MAX_STEPS):
            new = num
            for s, u in self.relations:
                new = new.replace(
                    lambda e, s=s: (
                        isinstance(e, Pow) and e.base == s and e.exp.is_Integer and e.exp >= 2
                    ),
                    lambda e, s=s, u=u: s ** (int(e.exp) % 2) * u ** (int(e.exp) // 2),
                )
            new = _ring_expand(numer(together(new)))
            if new == num:
                return num
            num = new
        raise RuntimeError("root reduction did not reach a fixpoint")


# --- finite sums in one canonical order (Fubini) -------------------------------------

# At most this many binders in one flattened sum: the canonical order tries every
# permutation of them (5! = 120); a larger sum is left as it is, which is sound.
_MAX_BINDERS = 5


def _over_sizes(node: Basic, ctx: Context) -> bool:
    """Every binder of the Sum runs over exactly 1..size, for a size of the model."""
    return isinstance(node, Sum) and all(lo == 1 and hi in ctx.sizes for _, lo, hi in node.limits)


def _height(expr: Basic) -> int:
    """1 + the deepest nesting of Sums in expr (0 for none)."""
    if isinstance(expr, Sum):
        return 1 + _height(expr.function)
    return max((_height(a) for a in expr.args), default=0)


def _binder(height: int, t: int) -> Symbol:
    # A sum's binders are named by its height, so no sum binds a name an enclosing one
    # binds (capture-free), and two equal sums get equal names wherever they stand.
    return Symbol(f"k_{{{height},{t}}}", integer=True)


def _canonical_sum(node: Sum, ctx: Context) -> Expr:
    """One finite sum (its summand already canonical) in canonical form: sums that are
    factors of the summand merged into it (Σ_a f Σ_b g = Σ_a Σ_b f g, b renamed apart),
    a summand that is a sum of terms split, factors free of every binder pulled out, and
    the binders in the order (and with the names) whose summand sorts first.  Each is
    an identity of finite sums whose limits are 1..size, constants."""
    limits, body = list(node.limits), node.function
    while True:
        factors, merged = [], False
        for f in Mul.make_args(body):
            if _over_sizes(f, ctx) and len(limits) + len(f.limits) <= _MAX_BINDERS:
                fresh = {v: Dummy(integer=True) for v in f.variables}
                factors.append(f.function.xreplace(fresh))
                limits += [(fresh[v], lo, hi) for v, lo, hi in f.limits]
                merged = True
            else:
                factors.append(f)
        body = Mul(*factors)
        if not merged:
            break
    body = _distribute(body)
    if isinstance(body, Add):
        return Add(*(_canonical_sum(Sum(t, *limits), ctx) for t in body.args))
    size = {k: hi for k, _, hi in limits}
    factors = Mul.make_args(body)
    outside = [f for f in factors if not f.free_symbols & set(size)]
    scale = Mul(*(size[k] for k in size if k not in body.free_symbols))
    groups = _components([f for f in factors if f.free_symbols & set(size)], set(size))
    if len(groups) != 1:
        # Σ_a Σ_b f(a) g(b) = (Σ_a f(a)) (Σ_b g(b)): one sum per group of factors that
        # share no binder with another, so nested and multiplied forms meet.
        parts = [
            _canonical_sum(Sum(Mul(*fs), *[(k, 1, size[k]) for k in sorted(ks, key=str)]), ctx)
            for fs, ks in groups
        ]
        return Mul(*outside) * scale * Mul(*parts)
    [(fs, used)] = groups
    body = Mul(*fs)
    height = _height(body) + 1
    best = None
    for order in permutations(sorted(used, key=str)):
        names = {k: _binder(height, t) for t, k in enumerate(order)}
        candidate = body.xreplace(names)
        key = (default_sort_key(candidate), tuple(default_sort_key(size[k]) for k in order))
        if best is None or key < best[0]:
            best = key, candidate, [(names[k], 1, size[k]) for k in order]
    _, summand, new_limits = best
    return Mul(*outside) * scale * Sum(summand, *new_limits)


def _components(factors: list, binders: set) -> list[tuple[list, set]]:
    """The factors grouped so that no two groups share a binder (each with its binders)."""
    groups: list[tuple[list, set]] = []
    for f in factors:
        mine = f.free_symbols & binders
        joined = [g for g in groups if g[1] & mine]
        groups = [g for g in groups if not g[1] & mine]
        fs = [x for g in joined for x in g[0]] + [f]
        groups.append((fs, mine.union(*(g[1] for g in joined))))
    return groups


def _interchange(expr: Basic, ctx: Context) -> Basic:
    """Every finite sum over the model's sizes in canonical form, innermost first, so
    that two sums equal up to the order of summation (Σ_a Σ_k f = Σ_k Σ_a f) and the
    names of their indices are one expression."""
    if not expr.args:
        return expr
    if isinstance(expr, Sum):
        inner = Sum(_interchange(expr.function, ctx), *expr.limits)
        if _over_sizes(inner, ctx) and len(inner.limits) <= _MAX_BINDERS:
            return _canonical_sum(inner, ctx)
        return inner
    args = tuple(_interchange(a, ctx) for a in expr.args)
    return expr.func(*args) if args != expr.args else expr


def prove_zero(expr: Expr, ctx: Context) -> Proof:
    """Definitions, then the generic rules to a fixpoint, then the roots' relations."""
    expr = Integer(0) + expr  # sympify plain numbers
    steps = [Step("given", expr)]
    roots = _Roots(ctx)
    expanded = ctx.model.expand(expr, roots.kept)
    if expanded != expr:
        expr = expanded
        steps.append(Step("definitions", expr))
    expr = _fixpoint(expr, ctx, steps)
    named = roots.name(expr)
    if named != expr:
        expr = _fixpoint(named, ctx, steps)
        steps.append(Step("square_roots", expr))
    num = _ring_expand(numer(together(expr)))
    normal = roots.reduce(num)
    if normal != expr:
        steps.append(Step("rational_normal_form", normal))
    # Distributing can bring a rule's pattern together (delta_ij times f(j), from
    # (1 - delta_ij) f(j)): the rules again on the numerator, a few rounds.
    for _ in range(_ROUNDS):
        again = _fixpoint(normal, ctx, steps) if normal != 0 else normal
        if again == normal:
            break
        normal = roots.reduce(_ring_expand(numer(together(again))))
        steps.append(Step("rational_normal_form", normal))
    if normal != 0:
        # Last: sums that differ only in their order of summation become one.  Kept
        # only where it closes the proof: a residual reads better with its own names.
        swapped = roots.reduce(_ring_expand(numer(together(_interchange(normal, ctx)))))
        if swapped == 0:
            normal = swapped
            steps.append(Step("sum_interchange", normal))
    return Proof(normal == 0, tuple(steps), normal)


def normal_form(expr: Expr, ctx: Context) -> Expr:
    """The expression as the prover leaves it: definitions, the rules to a
    fixpoint, roots named and reduced, numerator and denominator expanded.  Not
    a decision (prove_zero decides); what reports print so that two sides that
    agree are seen to agree."""
    roots = _Roots(ctx)
    expr = _fixpoint(ctx.model.expand(Integer(0) + expr, roots.kept), ctx, [])
    named = roots.name(expr)
    if named != expr:
        expr = _fixpoint(named, ctx, [])
    num, den = fraction(together(expr))
    num, den = roots.reduce(_ring_expand(num)), roots.reduce(_ring_expand(den))
    back = {s: sqrt(u) for s, u in roots.relations if isinstance(s, Dummy)}
    return (factor_terms(num) / factor_terms(den)).xreplace(back)


def normal_forms(document, case) -> list[Expr]:
    """The normal form of every side of one case of a claim, for a symbolic n."""
    from .language import CASES, N_SYMBOL, index_symbol, parse  # language imports no prover

    model = document.model_for(N_SYMBOL)
    free, relation = CASES[case.label]
    i, j = index_symbol("i"), index_symbol("j")
    assignment = {name: index_symbol(name) for name in free}
    if relation == "eq":
        assignment["j"] = i
    ctx = Context.make(
        model,
        in_range=free_ranges(model, case),
        distinct=[(i, j)] if relation == "ne" else (),
    )
    return [normal_form(parse(text, model, assignment), ctx) for text in case.sides]


def free_ranges(model, case) -> dict:
    """Each free index of a case (as a symbol), with the size it ranges over."""
    from .language import CASES, index_symbol

    free, _ = CASES[case.label]
    found = model.index_sizes(case.sides) if model.spec.several else {}
    return {
        index_symbol(name): model.size_of(found[name]) if found else model.size for name in free
    }


def prove_equal(lhs: Expr, rhs: Expr, ctx: Context) -> Proof:
    proof = prove_zero(lhs - rhs, ctx)
    statement = Step("statement", Eq(lhs, rhs, evaluate=False))
    return Proof(proof.proved, (statement, *proof.steps), proof.residual)


# --- numeric refutation ----------------------------------------------------------------


def counterexample(
    expr: Expr,
    ctx: Context,
    *,
    n_values: Iterable[int] = (2, 3, 4, 5),
    seed: int = 0,
    trials: int = 3,
) -> Counterexample | None:
    """A concrete n, index values and point where ``expr`` is clearly nonzero, or None.

    Evaluated by the concrete model's numeric side (node values from their
    definitions), which shares nothing with the rewriting above."""
    from .claims import model_for
    from .numeric import Numeric, atom_name

    expr = Integer(0) + expr
    rng = random.Random(seed)
    indices = sorted(
        (s for s in expr.free_symbols if s.is_integer and s not in ctx.sizes),
        key=lambda s: s.name,
    )
    for nv in n_values:
        model = model_for(ctx.model.spec, nv)
        numeric = Numeric(model)
        for _ in range(trials):
            values = {s: Integer(rng.randint(1, nv)) for s in indices}
            if any(values.get(a) == values.get(b) for a, b in map(tuple, ctx.distinct)):
                continue
            sizes = dict.fromkeys(ctx.sizes, Integer(nv))  # several: every size nv
            concrete = expr.subs({**sizes, **values}).doit()
            point = numeric.random_point(rng)
            hit = numeric.separates(concrete, Integer(0), point)
            if hit is not None:
                shown = {atom_name(k): str(v) for k, v in point.items()}
                shown.update({s.name: int(v) for s, v in values.items()})
                return Counterexample(nv, shown, hit[0])
    return None
