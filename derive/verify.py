"""Deciding claims exactly, with a numeric spot check and counterexamples.

For a concrete n every side becomes a rational function of the variables
(x, g or dy, gamma, beta, eps) and sigma.  Two sides are equal iff the
numerator of their difference reduces to 0 modulo ``sigma**2 - (var + eps)``:
after reduction it reads A + B·sigma with A, B polynomials in the variables,
and that vanishes as a function iff A = B = 0 (sigma is not a rational
function of x for n ≥ 3, and for n = 2, where sigma = |x1 − x2|/2, both signs
are realised).  So the verdict is exact; the high-precision evaluation at
random points is an independent second opinion, and it supplies the
counterexample when a claim fails.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import sympy as sp
from sympy import QQ
from sympy.polys.fields import field as make_field

from . import alln
from .claims import Claim, Document, side_fields
from .language import CASES, LanguageError, parse, uses_literal_index
from .model import (
    INDEX,
    N_SYMBOL,
    L,
    Lp,
    Model,
    ModelError,
    beta,
    dy,
    eps,
    g,
    gamma,
    mu,
    sigma,
    sigma_p,
    x,
)

DEFAULT_NS = tuple(range(2, 9))
HOLDS, FAILS, NOT_APPLICABLE = "holds", "fails", "n/a"

# Working precision of the spot check; agreement is required to SPOT_RTOL.
# 50 digits leave 20 digits of margin over SPOT_RTOL for cancellation in
# sums of n terms, while a true mismatch is of order one.
SPOT_DPS = 50
SPOT_RTOL = mpmath.mpf(10) ** -30
COUNTEREXAMPLE_TRIES = 25


class VerifierError(RuntimeError):
    """The verifier cannot decide (or its two opinions disagree)."""


@dataclass(frozen=True)
class Counterexample:
    n: int
    indices: tuple[tuple[str, int], ...]  # the free indices, e.g. (("i", 1), ("j", 2))
    point: tuple[tuple[str, str], ...]  # each variable with its exact rational value
    sigma: str
    lhs: str
    rhs: str

    def describe(self) -> str:
        idx = ", ".join(f"{k} = {v}" for k, v in self.indices)
        pt = ", ".join(f"{k} = {v}" for k, v in self.point)
        head = f"n = {self.n}" + (f", {idx}" if idx else "")
        return f"{head}; at {pt} (σ = {self.sigma}): lhs = {self.lhs}, rhs = {self.rhs}"


@dataclass(frozen=True)
class StepVerdict:
    case: str  # the case label, e.g. "i != j"
    step: int  # which "=" of the case, from 1
    holds: bool
    counterexample: Counterexample | None = None


@dataclass(frozen=True)
class NVerdict:
    n: int
    status: str  # HOLDS | FAILS | NOT_APPLICABLE
    reason: str = ""
    steps: tuple[StepVerdict, ...] = ()

    @property
    def first_failure(self) -> StepVerdict | None:
        return next((s for s in self.steps if not s.holds), None)


@dataclass(frozen=True)
class AllNStep:
    """The general-n prover's verdict on one "=" of a claim."""

    case: str
    step: int
    proof: alln.Proof | None  # None where the side cannot be read for symbolic n
    reason: str = ""

    @property
    def proved(self) -> bool:
        return self.proof is not None and self.proof.proved


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdicts: tuple[NVerdict, ...]
    proofs: tuple[AllNStep, ...] = ()  # all-n proofs, one per (case, step), when asked for

    @property
    def proved_all_n(self) -> bool:
        return bool(self.proofs) and all(p.proved for p in self.proofs)

    @property
    def holds(self) -> bool:
        return all(v.status != FAILS for v in self.verdicts) and any(
            v.status == HOLDS for v in self.verdicts
        )

    @property
    def first_failure(self) -> NVerdict | None:
        return next((v for v in self.verdicts if v.status == FAILS), None)

    def summary(self, words=None) -> str:
        """'holds for n = 2..8; n/a for n = 1', with optional words per status."""
        parts = []
        for status in (HOLDS, FAILS, NOT_APPLICABLE):
            ns = [v.n for v in self.verdicts if v.status == status]
            if ns:
                word = (words or {}).get(status, status)
                parts.append(f"{word} for n = {format_ns(ns)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class DocumentResult:
    document: Document
    ns: tuple[int, ...]
    claims: tuple[ClaimResult, ...] = field(default_factory=tuple)

    @property
    def holds(self) -> bool:
        return all(c.holds for c in self.claims)


def format_ns(ns) -> str:
    """[2, 3, 4, 8] -> '2..4, 8'."""
    ns = sorted(ns)
    if not ns:
        return "none"
    out, start, prev = [], ns[0], ns[0]
    for v in [*ns[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}..{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)


def not_applicable_reason(model: Model) -> str:
    if model.n == 1 and not model.with_eps:
        return "n = 1: a single value has σ = 0, so x̂ = (x − μ)/σ is undefined"
    return ""


def assignments(label: str, n: int, *, full: bool):
    """Free-index values to check for a case.

    With symmetry, one representative per orbit of the permutation group
    suffices: the model is invariant under permuting positions, and a side
    that names positions only through its free and bound indices is carried
    to itself by such a permutation.
    """
    free, relation = CASES[label]
    if not free:
        return [{}]
    if not full:
        if len(free) == 1:
            return [{"i": 1}]
        reps = {"eq": [(1, 1)], "ne": [(1, 2)], None: [(1, 1), (1, 2)]}[relation]
        return [dict(zip(free, r, strict=True)) for r in reps if max(r) <= n]
    out = []
    for values in itertools.product(range(1, n + 1), repeat=len(free)):
        if relation == "eq" and len(set(values)) != 1:
            continue
        if relation == "ne" and len(set(values)) == 1:
            continue
        out.append(dict(zip(free, values, strict=True)))
    return out


class Algebra:
    """Exact arithmetic for one concrete model: the field Q(sigma, variables)
    and reduction modulo sigma**2 == var + eps.

    Sides arrive in graph form (variables, mu, sigma): mu is the mean by
    definition, and sigma an algebraic element with sigma**2 == var + eps."""

    def __init__(self, model: Model, seed=0):
        if model.symbolic:
            raise ValueError("Algebra needs a concrete n")
        self.model = model
        n = model.n
        up = g if model.kind == "xhat" else dy
        variables = [x[c] for c in range(1, n + 1)] + [up[c] for c in range(1, n + 1)]
        if model.kind == "layer":
            variables += [gamma, beta]
        if model.with_eps:
            variables.append(eps)
        self.variables = variables
        self.var_expr = model.sigma_squared
        # Exact work happens in centred coordinates x_c = m + d_c (c < n),
        # x_n = m - Σ d_c: an invertible linear change of variables, so an
        # identity in x is an identity in (m, d); the mean is exactly m, and
        # products of deviations stay O(n) terms instead of O(n²).
        xs = [x[c] for c in range(1, n + 1)]
        others = [v for v in variables if v not in xs]
        names = ["m_centre", *(f"d_{c}" for c in range(1, n)), *map(_name, others)]
        self.field, s_gen, m_gen, *gens = make_field(["sigma", *names], QQ)
        ring = self.field.ring
        d_gens, other_gens = gens[: n - 1], gens[n - 1 :]
        centred = [m_gen + dc for dc in d_gens] + [m_gen - sum(d_gens, self.field.zero)]
        one = ring.one
        self.atoms = {v: (ring(e.numer), one) for v, e in zip(xs, centred, strict=True)}
        self.atoms.update({v: (e.numer, one) for v, e in zip(others, other_gens, strict=True)})
        self.atoms.update({sigma: (s_gen.numer, one), mu: (m_gen.numer, one)})
        self.sigma_gen = s_gen.numer
        # Nodes a side may still name (x̂_j, y_j, L, route C's p and σ_p) are atoms
        # too, converted once from their graph-form definitions.
        self.nodes = {node: model.to_graph(node) for node in _nodes(model)}
        self.atoms.update({node: self._to_ring(e, {}) for node, e in self.nodes.items()})
        var_num, var_den = self._to_ring(self.var_expr, {})
        if not var_den.is_ground:
            raise VerifierError("var + eps must be a polynomial in the inputs")
        self.var_form = (var_num, var_den)
        self.relation = var_den * self.sigma_gen**2 - var_num
        self.spot_rng = random.Random(f"spot/{n}/{seed}")
        self.spot_point = self.random_point(self.spot_rng)
        self._sides = {}
        self._values = {}

    def side(self, text: str, assignment: dict):
        """A claim side: (expression in graph form, ring form, value at the spot point).

        Computed once per model: claims share sides (the direct derivative,
        the closed form), so the cache saves most of the parsing and
        differentiation."""
        key = (text, tuple(sorted(assignment.items())))
        if key not in self._sides:
            expr = parse(text, self.model, assignment)
            self._sides[key] = expr, self.ring_form(expr), self.evaluate(expr, self.spot_point)
        return self._sides[key]

    def ring_form(self, expr):
        """(numerator, denominator) of expr in Q[sigma, m, d, ...]."""
        return self._to_ring(expr, {})

    def equal(self, a, b) -> bool:
        """Two ring forms agree modulo sigma**2 == var + eps."""
        (na, da), (nb, db) = a, b
        num = na - nb if da == db else na * db - nb * da
        return num.rem([self.relation]) == 0

    def is_zero(self, expr) -> bool:
        num, _ = self.ring_form(expr)
        return num.rem([self.relation]) == 0

    def polynomial(self, expr) -> dict:
        """A polynomial expr reduced modulo the relation: {monomial: coefficient}."""
        num, den = self.ring_form(expr)
        if not den.is_ground:
            raise VerifierError(f"expected a polynomial in σ and the inputs, got {expr}")
        reduced = num.rem([self.relation])
        return {m: sp.Rational(c) / sp.Rational(den.LC) for m, c in reduced.terms()}

    def _to_ring(self, e, memo):
        """e as numerator/denominator in Q[sigma, m, d, ...].

        The field's own conversion cancels a gcd after every addition; our
        denominators are almost always monomials (powers of sigma, integers),
        so adding over their lcm is exact and far cheaper. Repeated subtrees
        (the mean, a deviation) are converted once."""
        if e in memo:
            return memo[e]
        ring = self.field.ring
        if e in self.atoms:
            out = self.atoms[e]
        elif e.is_Add:
            num, den = self._to_ring(e.args[0], memo)
            for arg in e.args[1:]:
                a, b = self._to_ring(arg, memo)
                if b == den:
                    num = num + a
                elif len(b) == 1 and len(den) == 1:
                    lcm = ring.from_terms([(_monomial_lcm(den.LM, b.LM), den.LC * b.LC)])
                    num = num * lcm.quo(den) + a * lcm.quo(b)
                    den = lcm
                else:
                    num, den = num * b + a * den, den * b
            out = num, den
        elif e.is_Mul:
            num, den = ring.one, ring.one
            for arg in e.args:
                a, b = self._to_ring(arg, memo)
                num, den = num * a, den * b
            out = num, den
        elif e.is_Pow and e.exp.is_Integer:
            a, b = self._to_ring(e.base, memo)
            k = int(e.exp)
            out = (a**k, b**k) if k >= 0 else (b ** (-k), a ** (-k))
        elif e.is_Pow and e.exp.is_Rational and e.exp.q == 2:
            out = self._root(e, memo)
        elif e.is_Rational:
            out = ring(e), ring.one
        else:
            raise VerifierError(
                f"cannot decide: {e} is not a rational function of σ and the inputs"
            )
        memo[e] = out
        return out

    def _root(self, e, memo):
        """(var + eps)**(k/2) is sigma**k; any other square root is undecidable here."""
        if not self.equal(self._to_ring(e.base, memo), self.var_form):
            raise VerifierError(f"cannot decide: sqrt({e.base}) is not σ = sqrt(var + eps)")
        k = int(2 * e.exp)
        ring = self.field.ring
        return (self.sigma_gen**k, ring.one) if k >= 0 else (ring.one, self.sigma_gen ** (-k))

    # -- numeric second opinion -----------------------------------------
    def random_point(self, rng: random.Random) -> dict:
        while True:
            pt = {}
            for v in self.variables:
                if v == eps:
                    pt[v] = Fraction(rng.randint(1, 20), 100)
                else:
                    pt[v] = Fraction(rng.randint(-30, 30), rng.randint(1, 6))
            xs = [pt[x[c]] for c in range(1, self.model.n + 1)]
            if len(set(xs)) > 1 or self.model.with_eps:
                return pt

    def evaluate(self, expr, point: dict):
        """expr (graph form) at a point, in SPOT_DPS digits; None where it is
        undefined there.

        A plain recursive evaluation of the expression tree in the original
        variables, with μ and σ computed from x: it shares nothing with the
        exact reduction above."""
        with mpmath.workdps(SPOT_DPS):
            values = self._point_values(point)
            if values is None:
                return None
            try:
                return _mp_eval(expr, values, {})
            except ZeroDivisionError:
                return None

    def _point_values(self, point: dict):
        """Variables, μ, σ and the named nodes at a point (None where σ = 0)."""
        key = tuple(point.items())
        if key not in self._values:
            values = {v: mpmath.mpf(q.numerator) / q.denominator for v, q in point.items()}
            values[mu] = _mp_eval(self.model.mean, values, {})
            var = _mp_eval(self.var_expr, values, {})
            if var <= 0:
                self._values[key] = None
                return None
            values[sigma] = mpmath.sqrt(var)
            try:
                for node, definition in self.nodes.items():
                    values[node] = _mp_eval(definition, values, {})
            except ZeroDivisionError:
                values = None
            self._values[key] = values
        return self._values[key]

    def agree(self, a, b) -> bool:
        scale = 1 + abs(a) + abs(b)
        return abs(a - b) <= SPOT_RTOL * scale

    def counterexample(self, lhs, rhs, indices, seed=0) -> Counterexample | None:
        rng = random.Random(seed)
        for _ in range(COUNTEREXAMPLE_TRIES):
            pt = self.random_point(rng)
            a, b = self.evaluate(lhs, pt), self.evaluate(rhs, pt)
            if a is None or b is None or self.agree(a, b):
                continue
            s = self.evaluate(sigma, pt)
            return Counterexample(
                n=self.model.n,
                indices=tuple(sorted(indices.items())),
                point=tuple((_name(v), str(val)) for v, val in pt.items()),
                sigma=mpmath.nstr(s, 12),
                lhs=mpmath.nstr(a, 12),
                rhs=mpmath.nstr(b, 12),
            )
        return None


def _nodes(model: Model):
    """The graph's named nodes at a concrete n, in a fixed order."""
    families = model.families
    out = []
    for c in range(1, model.n + 1):
        out += [families[name][c] for name in ("xhat", "y", "p") if name in families]
    return out + [L, Lp, sigma_p]


def _monomial_lcm(a, b):
    return tuple(max(p, q) for p, q in zip(a, b, strict=True))


def _mp_eval(e, values, memo):
    if e in values:
        return values[e]
    if e in memo:
        return memo[e]
    if e.is_Add:
        out = mpmath.fsum(_mp_eval(a, values, memo) for a in e.args)
    elif e.is_Mul:
        out = mpmath.mpf(1)
        for a in e.args:
            out *= _mp_eval(a, values, memo)
    elif e.is_Pow:
        base = _mp_eval(e.base, values, memo)
        if e.exp.is_Integer:
            k = int(e.exp)
            if k < 0 and base == 0:
                raise ZeroDivisionError
            out = base**k
        else:
            out = mpmath.power(base, _mp_eval(e.exp, values, memo))
    elif e.is_Rational:
        out = mpmath.mpf(e.p) / e.q
    else:
        raise VerifierError(f"cannot evaluate {e} numerically")
    memo[e] = out
    return out


def _name(v) -> str:
    return f"{v.base}_{v.indices[0]}" if isinstance(v, sp.Indexed) else str(v)


def check_claim(claim: Claim, model: Model, algebra: Algebra, *, full=False, seed=0) -> NVerdict:
    reason = not_applicable_reason(model)
    if reason:
        return NVerdict(model.n, NOT_APPLICABLE, reason)
    rng = random.Random(f"{claim.id}/{model.n}/{seed}")
    steps = []
    for no, case in enumerate(claim.cases, 1):
        use_all = full or any(uses_literal_index(t) for t in case.sides)
        failed: dict[int, Counterexample | None] = {}
        fields = side_fields(claim, no)
        for a in assignments(case.label, model.n, full=use_all):
            read = []
            for field_name, text in zip(fields, case.sides, strict=True):
                try:
                    read.append(algebra.side(text, a))
                except VerifierError as exc:
                    raise VerifierError(
                        f"claim {claim.id!r}, field {field_name!r}: {exc}"
                    ) from None
            sides, forms, values = zip(*read, strict=True)
            if any(v is None for v in values):  # undefined at the shared point: find another
                values = _spot_values(algebra, sides, rng, claim)
            for k in range(case.steps):
                if k in failed:
                    continue
                if algebra.equal(forms[k], forms[k + 1]):
                    if not algebra.agree(values[k], values[k + 1]):
                        raise VerifierError(
                            f"claim {claim.id!r} ({case.label}, step {k + 1}) at n = {model.n}: "
                            f"exact check says equal but the sides differ numerically "
                            f"({values[k]} vs {values[k + 1]})"
                        )
                else:
                    failed[k] = algebra.counterexample(sides[k], sides[k + 1], a, seed=seed)
        steps += [
            StepVerdict(case.label, k + 1, k not in failed, failed.get(k))
            for k in range(case.steps)
        ]
    status = HOLDS if all(s.holds for s in steps) else FAILS
    return NVerdict(model.n, status, "", tuple(steps))


def _spot_values(algebra, sides, rng, claim):
    """Every side at one random point where all of them are defined."""
    for _ in range(COUNTEREXAMPLE_TRIES):
        pt = algebra.random_point(rng)
        values = [algebra.evaluate(s, pt) for s in sides]
        if all(v is not None for v in values):
            return values
    raise VerifierError(f"claim {claim.id!r}: no point where every side is defined")


def prove_claim_all_n(claim: Claim, document: Document) -> tuple[AllNStep, ...]:
    """Each "=" of the claim for a symbolic n, with the general-n prover."""
    model = document.model_for(N_SYMBOL)
    out = []
    for case in claim.cases:
        free, relation = CASES[case.label]
        i, j = INDEX["i"], INDEX["j"]
        assignment = {name: INDEX[name] for name in free}
        if relation == "eq":
            assignment["j"] = i
        ctx = alln.Context.make(
            N_SYMBOL,
            x,
            mu,
            sigma,
            eps=eps if document.eps else None,
            in_range=[INDEX[name] for name in free],
            distinct=[(i, j)] if relation == "ne" else (),
        )
        try:
            sides = [model.to_graph(parse(t, model, assignment)) for t in case.sides]
        except (LanguageError, ModelError) as exc:
            out += [AllNStep(case.label, k + 1, None, str(exc)) for k in range(case.steps)]
            continue
        for k in range(case.steps):
            out.append(AllNStep(case.label, k + 1, alln.prove_equal(sides[k], sides[k + 1], ctx)))
    return tuple(out)


def verify_document(
    document: Document, ns=DEFAULT_NS, *, full=False, seed=0, all_n=False
) -> DocumentResult:
    per_claim = {c.id: [] for c in document.claims}
    for n in ns:
        model = document.model_for(n)
        algebra = None if not_applicable_reason(model) else Algebra(model, seed)
        for claim in document.claims:
            per_claim[claim.id].append(check_claim(claim, model, algebra, full=full, seed=seed))
    results = tuple(
        ClaimResult(
            c,
            tuple(per_claim[c.id]),
            prove_claim_all_n(c, document) if all_n else (),
        )
        for c in document.claims
    )
    return DocumentResult(document, tuple(ns), results)
