"""The numeric second opinion: random rational points, 50-digit values, counterexamples.

A plain recursive evaluation of the expression tree in the inputs, with every
node computed from its definition at the point.  It shares nothing with the
exact engine, so the two check each other; and it is what finds the point
that separates the two sides of a false claim.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy as sp

from .language import PositionError
from .model import Model
from .nodes import Undefined

# Working precision of the spot check; agreement is required to SPOT_RTOL.
# 50 digits leave 20 digits of margin over SPOT_RTOL for cancellation in
# sums of n terms, while a true mismatch is of order one.
SPOT_DPS = 50
SPOT_RTOL = mpmath.mpf(10) ** -30
# A counterexample is re-evaluated at twice the precision and must still
# separate the sides: rounding cannot fake a failure.
CONFIRM_DPS = 2 * SPOT_DPS
# Random points tried for a separating point, or for one where every side is
# defined; a false claim is separated at the first point almost surely.
POINT_TRIES = 25


@dataclass(frozen=True)
class Counterexample:
    n: int
    indices: tuple[tuple[str, int], ...]  # the free indices, e.g. (("i", 1), ("j", 2))
    point: tuple[tuple[str, str], ...]  # each input the claim uses, with its exact value
    nodes: tuple[tuple[str, str], ...]  # scalar nodes the sides name (σ, ...), rounded
    lhs: str
    rhs: str

    def describe(self) -> str:
        idx = ", ".join(f"{k} = {v}" for k, v in self.indices)
        pt = ", ".join(f"{k} = {v}" for k, v in self.point) or "any point"
        head = f"n = {self.n}" + (f", {idx}" if idx else "")
        shown = ", ".join(f"{k} = {v}" for k, v in self.nodes)
        where = f"at {pt}" + (f" ({shown})" if shown else "")
        return f"{head}; {where}: lhs = {self.lhs}, rhs = {self.rhs}"


def atom_name(v) -> str:
    return f"{v.base}_{v.indices[0]}" if isinstance(v, sp.Indexed) else str(v)


def show(value) -> str:
    """A value for a person: 12 digits, and 0 printed as 0 (not 5e-101)."""
    if abs(value) <= SPOT_RTOL:
        return "0"
    return mpmath.nstr(value, 12)


class Numeric:
    """Random points and values for one concrete model."""

    def __init__(self, model: Model):
        self.model = model
        n = model.n
        spec = model.spec
        self.inputs = [model.families[v][c] for v in spec.vectors for c in range(1, n + 1)]
        self.inputs += [model.scalars[s] for s in spec.scalars]
        self.nonnegative = [model.scalars[s] for s in spec.nonnegative]
        self._values: dict = {}

    def random_point(self, rng: random.Random) -> dict:
        point = {v: Fraction(rng.randint(-30, 30), rng.randint(1, 6)) for v in self.inputs}
        point.update({v: Fraction(rng.randint(1, 20), 100) for v in self.nonnegative})
        return point

    def evaluate(self, expr, point: dict, dps: int = SPOT_DPS):
        """expr at a point; raises Undefined where it has no value there."""
        with mpmath.workdps(dps):
            key = (dps, tuple(point.values()))
            values = self._values.get(key)
            if values is None:
                values = {v: mpmath.mpf(q.numerator) / q.denominator for v, q in point.items()}
                self._values = {key: values}  # one point at a time is all a check needs
            return self._eval(expr, values, {})

    def _eval(self, e, values, memo):
        if e in values:
            return values[e]
        if e in memo:
            return memo[e]
        node = self.model.node_of(e)
        if node is not None:
            pos = e.indices[0] if isinstance(e, sp.Indexed) else None
            try:
                body = node.body_at(pos)
            except PositionError as exc:
                raise Undefined(str(exc)) from None
            out = node.kind.value(self._eval(body, values, {}))
            values[e] = out
            return out
        if e.is_Add:
            out = mpmath.fsum(self._eval(a, values, memo) for a in e.args)
        elif e.is_Mul:
            out = mpmath.mpf(1)
            for a in e.args:
                out *= self._eval(a, values, memo)
        elif e.is_Pow and e.exp.is_Rational and e.exp.q in (1, 2):
            base = self._eval(e.base, values, memo)
            if e.exp < 0 and base == 0:
                raise Undefined(f"division by zero in {e}")
            if e.exp.q == 2:
                if base < 0:
                    raise Undefined(f"square root of a negative number in {e}")
                out = mpmath.sqrt(base) ** int(e.exp.p)
            else:
                out = base ** int(e.exp)
        elif e.is_Rational:
            out = mpmath.mpf(e.p) / e.q
        else:
            raise Undefined(f"cannot evaluate {e} numerically")
        memo[e] = out
        return out

    @staticmethod
    def agree(a, b) -> bool:
        return abs(a - b) <= SPOT_RTOL * (1 + abs(a) + abs(b))

    def separates(self, lhs, rhs, point) -> tuple | None:
        """(lhs value, rhs value) if the sides differ at the point (confirmed at
        twice the precision), else None; None too where a side is undefined."""
        try:
            a, b = self.evaluate(lhs, point), self.evaluate(rhs, point)
            if self.agree(a, b):
                return None
            with mpmath.workdps(CONFIRM_DPS):
                a2, b2 = (
                    self.evaluate(lhs, point, CONFIRM_DPS),
                    self.evaluate(rhs, point, CONFIRM_DPS),
                )
                if self.agree(a2, b2):
                    return None
        except Undefined:
            return None
        return a, b

    def counterexample(self, lhs, rhs, indices: dict, rng: random.Random):
        """A point where the sides differ, described by the inputs they use, or None."""
        used = set()
        shown = []
        for side in (lhs, rhs):
            for a in side.free_symbols | side.atoms(sp.Indexed):
                if isinstance(a, sp.Indexed) or not a.is_integer:
                    used |= self.model.inputs_of(a)
                    if self.model.node_of(a) is not None and not isinstance(a, sp.Indexed):
                        shown.append(a)
        for _ in range(POINT_TRIES):
            point = self.random_point(rng)
            hit = self.separates(lhs, rhs, point)
            if hit is None:
                continue
            a, b = hit
            with mpmath.workdps(SPOT_DPS):
                nodes = tuple(
                    (atom_name(s), show(self.evaluate(s, point)))
                    for s in sorted(set(shown), key=str)
                )
                return Counterexample(
                    n=self.model.n,
                    indices=tuple(sorted((k, int(v)) for k, v in indices.items())),
                    point=tuple((atom_name(v), str(q)) for v, q in point.items() if v in used),
                    nodes=nodes,
                    lhs=show(a),
                    rhs=show(b),
                )
        return None
