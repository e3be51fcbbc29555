"""The numeric second opinion: random rational points, 50-digit values, counterexamples.

A plain recursive evaluation of the expression tree in the inputs, with every
node computed from its definition at the point.  It shares nothing with the
exact engine, so the two check each other; and it is what finds the point
that separates the two sides of a false claim.

Points respect the declarations: positive inputs are > 0, nonnegative ones
>= 0, and every constraint holds (each solved for one input, ``model.solved``,
whose value is computed from the others; a point where that value breaks a
declared sign is drawn again).  A point where a side has no value (a log's
argument <= 0, also where SymPy dropped the log: exp(log(u)) -> u) is never a
counterexample.

A separation is certified, not just seen: both sides are evaluated again in
interval arithmetic (``mpmath.iv``) at twice the precision, and the two
enclosures must be apart by more than the tolerance.  Rounding, however large
the cancellation (exp(130)**2 - exp(260)), cannot fake a failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy as sp

from .language import PositionError
from .model import Model, position
from .nodes import Undefined
from .sizes import Point, at

# Working precision of the spot check; agreement is required to SPOT_RTOL.
# 50 digits leave 20 digits of margin over SPOT_RTOL for cancellation in
# sums of n terms, while a true mismatch is of order one.
SPOT_DPS = 50
SPOT_RTOL = mpmath.mpf(10) ** -30
# A counterexample is re-evaluated at twice the precision, in intervals, and
# must still separate the sides; where the enclosures are too wide for a
# verdict (heavy cancellation) the precision is raised up to CERTIFY_MAX_DPS.
CONFIRM_DPS = 2 * SPOT_DPS
CERTIFY_MAX_DPS = 8 * SPOT_DPS
# Random points tried for a separating point, or for one where every side is
# defined; a false claim is separated at the first point almost surely.
POINT_TRIES = 25
# A counterexample is wanted where the sides differ clearly (tanh(22/3) is 1 to
# 12 digits): the search takes the first point with this relative gap, else
# the widest it saw, printed with as many digits as the values need to differ.
CLEAR_GAP = mpmath.mpf(10) ** -6
SHOWN_DIGITS = 12
# Draws of a point before giving up on one where every solved input keeps its
# declared sign; each draw shrinks the free values (Σ t = 1 with t > 0 is met
# once the free t are small).
SIGN_TRIES = 12


@dataclass(frozen=True)
class Counterexample:
    n: int | Point  # where: n, or one value per size
    indices: tuple[tuple[str, int], ...]  # the free indices, e.g. (("i", 1), ("j", 2))
    point: tuple[tuple[str, str], ...]  # each input the claim uses, with its exact value
    nodes: tuple[tuple[str, str], ...]  # scalar nodes the sides name (σ, ...), rounded
    lhs: str
    rhs: str

    def describe(self) -> str:
        idx = ", ".join(f"{k} = {v}" for k, v in self.indices)
        pt = ", ".join(f"{k} = {v}" for k, v in self.point) or "any point"
        head = at(self.n) + (f", {idx}" if idx else "")
        shown = ", ".join(f"{k} = {v}" for k, v in self.nodes)
        where = f"at {pt}" + (f" ({shown})" if shown else "")
        return f"{head}; {where}: lhs = {self.lhs}, rhs = {self.rhs}"


def atom_name(v) -> str:
    """x_3, Q[1, 2], sigma."""
    if not isinstance(v, sp.Indexed):
        return str(v)
    if len(v.indices) == 1:
        return f"{v.base}_{v.indices[0]}"
    return f"{v.base}[{', '.join(map(str, v.indices))}]"


def _require(v, how: str, what) -> None:
    """v is certainly positive / nonnegative / nonzero (an interval: all of it)."""
    ok = {"positive": v > 0, "nonnegative": v >= 0, "nonzero": (v > 0) or (v < 0)}[how]
    if ok is not True:
        raise Undefined(f"{what} is not {how} at this point")


def _exact(v) -> Fraction:
    return _raw(v._mpf_)


def _raw(raw) -> Fraction:
    """An mpmath raw float (sign, mantissa, exponent, bits), exactly."""
    sign, man, exp, _ = raw
    if not man and exp:
        raise Undefined("an interval end point is infinite or not a number")
    return (-1) ** sign * Fraction(man) * Fraction(2) ** exp


def _bounds(x) -> tuple[Fraction, Fraction]:
    """An interval's end points, exactly."""
    lo, hi = (_raw(raw) for raw in x._mpi_)
    return lo, hi


def show(value, digits: int = SHOWN_DIGITS) -> str:
    """A value for a person: SHOWN_DIGITS digits (more where two values need them to
    differ), and 0 printed as 0 (not 5e-101)."""
    if abs(value) <= SPOT_RTOL:
        return "0"
    return mpmath.nstr(value, digits)


class Numeric:
    """Random points and values for one concrete model."""

    def __init__(self, model: Model):
        self.model = model
        spec = model.spec
        positive = set(spec.positive)
        self.solved = model.solved
        solved = {a for a, _ in self.solved}
        vectors = [model.families[v][c] for v in spec.indexed_inputs for c in model.positions(v)]
        scalars = [model.scalars[s] for s in spec.all_scalars]
        self.inputs = [v for v in vectors + scalars if v not in solved]
        self.positive = {v for v in vectors if v.base.name in positive} | {
            model.scalars[s] for s in spec.positive_scalars
        }
        self.nonnegative = {model.scalars[s] for s in spec.nonnegative}
        self._values: dict = {}

    def _draw(self, v, rng, shrink):
        if v in self.positive:
            return Fraction(rng.randint(1, 60), rng.randint(1, 6) * shrink)
        if v in self.nonnegative:
            return Fraction(rng.randint(1, 20), 100 * shrink)
        return Fraction(rng.randint(-30, 30), rng.randint(1, 6) * shrink)

    def random_point(self, rng: random.Random) -> dict:
        """Free inputs drawn at random, solved inputs computed from them."""
        for attempt in range(SIGN_TRIES):
            point = {v: self._draw(v, rng, 2**attempt) for v in self.inputs}
            for atom, value in self.solved:
                q = value.xreplace(
                    {v: sp.Rational(q.numerator, q.denominator) for v, q in point.items()}
                )
                point[atom] = Fraction(int(q.p), int(q.q))
            if all(self._signed(a, point[a]) for a, _ in self.solved):
                break
        return point

    def _signed(self, atom, q) -> bool:
        if atom in self.positive:
            return q > 0
        return q >= 0 if atom in self.nonnegative else True

    def evaluate(self, expr, point: dict, dps: int = SPOT_DPS, conditions=()):
        """expr at a point; raises Undefined where it has no value there (also
        where one of the side's conditions fails, or a solved input its sign)."""
        with mpmath.workdps(dps):
            return self._at(expr, point, dps, conditions, mpmath.mp)

    def enclose(self, expr, point: dict, dps: int, conditions=()):
        """An interval that certainly holds expr's value at the point; raises
        Undefined unless the side is certainly defined there."""
        iv = mpmath.iv
        saved = iv.dps
        iv.dps = dps
        try:
            return self._at(expr, point, ("iv", dps), conditions, iv)
        finally:
            iv.dps = saved

    def _at(self, expr, point, tag, conditions, ctx):
        for atom, _ in self.solved:
            if not self._signed(atom, point[atom]):
                raise Undefined(f"{atom} breaks its declared sign at this point")
        key = (tag, tuple(point.values()))
        values = self._values.get(key)
        if values is None:
            values = {v: ctx.mpf(q.numerator) / q.denominator for v, q in point.items()}
            self._values = {key: values}  # one point at a time is all a check needs
        memo: dict = {}  # shared: a condition is mostly a piece of the side
        self._hold(conditions, values, memo, ctx)
        return self._eval(expr, values, memo, ctx)

    def _hold(self, conditions, values, memo, ctx):
        for how, c in conditions:
            _require(self._eval(c, values, memo, ctx), how, c)

    def _eval(self, e, values, memo, ctx):
        if e in values:
            return values[e]
        if e in memo:
            return memo[e]
        node = self.model.node_of(e)
        if node is not None:
            pos = position(e)
            try:
                body = node.body_at(pos)
            except PositionError as exc:
                raise Undefined(str(exc)) from None
            inner: dict = {}
            self._hold(node.conditions_at(pos), values, inner, ctx)
            u = self._eval(body, values, inner, ctx)
            if node.kind.domain:
                _require(u, node.kind.domain, body)
            out = node.kind.value(ctx, u)
            values[e] = out
            return out
        if e.is_Add:
            terms = [self._eval(a, values, memo, ctx) for a in e.args]
            out = mpmath.fsum(terms) if ctx is mpmath.mp else sum(terms[1:], terms[0])
        elif e.is_Mul:
            out = ctx.mpf(1)
            for a in e.args:
                out *= self._eval(a, values, memo, ctx)
        elif e.is_Pow and e.exp.is_Rational and e.exp.q in (1, 2):
            base = self._eval(e.base, values, memo, ctx)
            if e.exp < 0:
                _require(base, "nonzero", e.base)
            if e.exp.q == 2:
                _require(base, "nonnegative", e.base)
                out = ctx.sqrt(base) ** int(e.exp.p)
            else:
                out = base ** int(e.exp)
        elif e.is_Rational:
            out = ctx.mpf(e.p) / e.q
        elif e is sp.E:
            out = ctx.e
        elif isinstance(e, sp.exp):
            out = ctx.exp(self._eval(e.args[0], values, memo, ctx))
        elif isinstance(e, sp.log) and len(e.args) == 1:
            u = self._eval(e.args[0], values, memo, ctx)
            _require(u, "positive", e.args[0])
            out = ctx.log(u)
        elif isinstance(e, sp.Abs):
            out = abs(self._eval(e.args[0], values, memo, ctx))
        else:
            raise Undefined(f"cannot evaluate {e} numerically")
        memo[e] = out
        return out

    @staticmethod
    def agree(a, b) -> bool:
        return abs(a - b) <= SPOT_RTOL * (1 + abs(a) + abs(b))

    def _certify(self, lhs, rhs, point, conditions, a, b):
        """True: the sides certainly differ by more than the tolerance at the
        point; False: they certainly agree to it; None: the enclosures cannot
        tell, even at CERTIFY_MAX_DPS.  a, b are the spot values."""
        tol = _exact(SPOT_RTOL * (1 + abs(a) + abs(b)))
        dps = CONFIRM_DPS
        while dps <= CERTIFY_MAX_DPS:
            try:
                x, y = (_bounds(self.enclose(t, point, dps, conditions)) for t in (lhs, rhs))
            except Undefined:
                return None
            # exact rational comparisons: no rounding of its own in the verdict
            if x[0] - y[1] > tol or y[0] - x[1] > tol:
                return True
            if max(x[1], y[1]) - min(x[0], y[0]) <= tol:
                return False
            dps *= 2
        return None

    def separates(self, lhs, rhs, point, conditions=()) -> tuple | None:
        """(lhs value, rhs value) if the sides differ at the point, certified
        in interval arithmetic at twice the precision (or more); else None,
        None too where a side is undefined or not certainly defined."""
        try:
            a, b = (self.evaluate(t, point, conditions=conditions) for t in (lhs, rhs))
        except Undefined:
            return None
        if self.agree(a, b):
            return None
        return (a, b) if self._certify(lhs, rhs, point, conditions, a, b) else None

    def agree_at(self, lhs, rhs, point, conditions=()) -> bool:
        """The sides agree at the point: at the spot precision, or, where that
        differs, certainly in intervals (cancellation among large exponentials)."""
        a, b = (self.evaluate(t, point, conditions=conditions) for t in (lhs, rhs))
        return self.agree(a, b) or self._certify(lhs, rhs, point, conditions, a, b) is False

    def counterexample(self, lhs, rhs, indices: dict, rng: random.Random, conditions=()):
        """A point where the sides differ, described by the inputs they use, or None."""
        used = set()
        shown = []
        for side in (lhs, rhs):
            for a in side.free_symbols | side.atoms(sp.Indexed):
                if isinstance(a, sp.Indexed) or not a.is_integer:
                    used |= self.model.inputs_of(a)
                    if self.model.node_of(a) is not None and not isinstance(a, sp.Indexed):
                        shown.append(a)
        for c in self.model.constraints:  # so that a reader can check the point meets them
            atoms = {a for a in c.free_symbols | c.atoms(sp.Indexed) if not a.is_integer}
            if atoms & used:
                used |= atoms
        best = None
        for _ in range(POINT_TRIES):
            point = self.random_point(rng)
            hit = self.separates(lhs, rhs, point, conditions)
            if hit is None:
                continue
            a, b = hit
            gap = abs(a - b) / (1 + abs(a) + abs(b))
            if best is None or gap > best[0]:
                best = (gap, point, a, b)
            if gap > CLEAR_GAP:
                break
        if best is None:
            return None
        _, point, a, b = best
        with mpmath.workdps(SPOT_DPS):
            nodes = tuple(
                (atom_name(s), show(self.evaluate(s, point))) for s in sorted(set(shown), key=str)
            )
            digits = next(
                (d for d in range(SHOWN_DIGITS, SPOT_DPS) if show(a, d) != show(b, d)), SPOT_DPS
            )
            return Counterexample(
                n=self.model.n,
                indices=tuple(sorted((k, int(v)) for k, v in indices.items())),
                point=tuple((atom_name(v), str(q)) for v, q in point.items() if v in used),
                nodes=nodes,
                lhs=show(a, digits),
                rhs=show(b, digits),
            )
