"""Exact equality for a concrete n: a polynomial ring with one generator per root.

Every side becomes numerator/denominator in Q[roots, inputs].  Each square
root met (a root node such as σ, or a ``sqrt`` written in a side) is a
generator s with the relation s² = K, where the radicand K is normalised so
that equal radicands share one generator:

    u = c·P,  P monic,  c = ±(b/q)²·w  (w a product of primes)
    sqrt(u) = (b/q) · Π_{p | w} sqrt(p) · sqrt(±P)

New generators come first in a lexicographic order, so the relations
s_j² − K_j (K_j in older generators and the inputs) have pairwise coprime
leading monomials s_j²: they are a Gröbner basis, and reduction modulo them is
a normal form.  A difference whose numerator reduces to 0 is therefore 0
wherever both sides are defined: "holds" is exact.  A nonzero remainder is
not yet a failure (two radicands may be dependent, or a perfect square, as σ
is at n = 2): the verifier then asks the numeric side for a separating point,
and says "undecided" when there is none.

When the model has a mean node (a scalar node equal to Σ_k v_k / n for a
vector v), v is written in centred coordinates v_c = m + d_c (c < n),
v_n = m − Σ d_c: an invertible linear change of variables, so an identity in
v is an identity in (m, d).  The mean is then exactly m, and products of
deviations stay O(n) terms instead of O(n²).  It is an optimisation, never an
assumption: ``centre=False`` turns it off, and a test shows both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import QQ
from sympy.ntheory import factorint
from sympy.polys.rings import PolyRing

from .language import PositionError
from .model import Model
from .nodes import ROOT, Undefined

# Trial division bound when splitting a constant radicand into primes: only a
# normalisation (a prime left unsplit is still sound), so small is fine.
FACTOR_LIMIT = 10**4


class Undecidable(ValueError):
    """The exact engine cannot represent an expression (e.g. x**x)."""


@dataclass
class _Root:
    symbol: sp.Dummy
    key: tuple  # what identifies the radicand: ("prime", p) | ("poly", K) | ("pair", num, den)
    label: str  # for messages


class Field:
    """Exact arithmetic for one concrete model."""

    def __init__(self, model: Model, centre: bool = True):
        if model.symbolic:
            raise ValueError("Field needs a concrete n")
        self.model = model
        n = model.n
        self.centred: dict[str, str] = {}  # vector -> its mean node
        if centre:
            for node in model.nodes.values():
                if node.index is not None or node.kind is ROOT or node.undefined:
                    continue
                for v in model.spec.vectors:
                    if v in self.centred:
                        continue
                    total = sp.Add(*[model.families[v][c] for c in range(1, n + 1)])
                    if sp.expand(node.body * n - total) == 0:
                        self.centred[v] = node.name
        self._input_gens: list[tuple[sp.Dummy, object]] = []  # (generator, what it is)
        for v in model.spec.vectors:
            if v in self.centred:
                self._input_gens.append((sp.Dummy(f"m_{v}"), ("mean", v)))
                self._input_gens += [(sp.Dummy(f"d_{v}_{c}"), ("dev", v, c)) for c in range(1, n)]
            else:
                self._input_gens += [
                    (sp.Dummy(f"{v}_{c}"), model.families[v][c]) for c in range(1, n + 1)
                ]
        for name in (*model.spec.scalars, *model.spec.nonnegative):
            self._input_gens.append((sp.Dummy(name), model.scalars[name]))
        self.roots: list[_Root] = []
        self.relations: list = []
        self._build_ring()
        self._node_forms: dict = {}

    # -- the ring ------------------------------------------------------------
    def _build_ring(self):
        symbols = [r.symbol for r in reversed(self.roots)] + [g for g, _ in self._input_gens]
        self.ring = PolyRing(symbols, QQ, "lex")
        gens = dict(zip(symbols, self.ring.gens, strict=True))
        self.root_gens = {id(r): gens[r.symbol] for r in self.roots}
        atoms: dict = {}
        one = self.ring.one
        for v, mean in self.centred.items():
            m = gens[next(g for g, what in self._input_gens if what == ("mean", v))]
            ds = [
                gens[g]
                for g, what in self._input_gens
                if isinstance(what, tuple) and what[:2] == ("dev", v)
            ]
            fam = self.model.families[v]
            for c, dc in enumerate(ds, 1):
                atoms[fam[c]] = (m + dc, one)
            atoms[fam[self.model.n]] = (m - sum(ds, self.ring.zero), one)
            atoms[self.model.scalars[mean]] = (m, one)
        for g, what in self._input_gens:
            if isinstance(what, sp.Basic):
                atoms[what] = (gens[g], one)
        self.atoms = atoms
        self.relations = [self._relation(r, gens) for r in self.roots]
        # For each monic relation s**2 = K: the position of s in a monomial, and K.
        self._squares = []
        for r in self.roots:
            if r.key[0] != "pair":
                s = gens[r.symbol]
                self._squares.append((self.ring.gens.index(s), s**2 - self._relation(r, gens)))
        self._monic = len(self._squares) == len(self.roots)

    def _relation(self, root: _Root, gens):
        s = gens[root.symbol]
        if root.key[0] == "prime":
            return s**2 - root.key[1]
        if root.key[0] == "poly":
            return s**2 - root.key[1].set_ring(self.ring)
        _, num, den = root.key
        return den.set_ring(self.ring) * s**2 - num.set_ring(self.ring)

    def lift(self, form):
        num, den = form
        if num.ring is self.ring:
            return form
        return num.set_ring(self.ring), den.set_ring(self.ring)

    def reduce(self, p):
        """The normal form of p modulo the relations."""
        p = p.set_ring(self.ring) if p.ring is not self.ring else p
        if not self.relations:
            return p
        if not self._monic:
            return p.rem(self.relations)
        # The relations s**2 - K have pure-power leading terms, newest root first:
        # substituting s**e = s**(e mod 2) * K**(e div 2), newest to oldest, is the
        # division algorithm without its search for divisible terms.
        ring = self.ring
        for pos, k in self._squares[::-1]:
            parts: dict[int, dict] = {}
            for monom, coeff in p.items():
                e = monom[pos]
                key = monom if e < 2 else monom[:pos] + (e % 2,) + monom[pos + 1 :]
                parts.setdefault(e // 2, {})[key] = coeff
            if not parts or (len(parts) == 1 and 0 in parts):
                continue
            out = ring.zero
            power = ring.one
            for q in range(max(parts) + 1):
                if q in parts:
                    out += ring.from_dict(parts[q]) * power
                power = power * k
            p = out
        return p

    # -- deciding --------------------------------------------------------------
    def form(self, expr):
        """(numerator, denominator) of expr; raises Undefined or Undecidable."""
        return self.lift(self._to_ring(expr, {}))

    def equal(self, a, b) -> bool:
        """Two forms agree wherever both are defined (a sufficient test, exact)."""
        (na, da), (nb, db) = self.lift(a), self.lift(b)
        for den in (da, db):
            if len(den) > 1 and self.reduce(den) == 0:
                raise Undefined("a denominator is 0 everywhere")
        num = na - nb if da == db else na * db - nb * da
        return self.reduce(num) == 0

    def polynomial(self, expr) -> dict:
        """A polynomial expr reduced modulo the relations: {monomial: coefficient}."""
        num, den = self.form(expr)
        if not den.is_ground:
            raise Undecidable(f"expected a polynomial in the roots and the inputs, got {expr}")
        reduced = self.reduce(num)
        return {m: QQ.to_sympy(c) / QQ.to_sympy(den.LC) for m, c in reduced.terms()}

    def is_zero(self, a) -> bool:
        num, _ = self.lift(a)
        return self.reduce(num) == 0

    # -- conversion -------------------------------------------------------------
    def _node_form(self, atom):
        hit = self._node_forms.get(atom)
        if hit is None:
            try:
                node = self.model.node_of(atom)
                pos = atom.indices[0] if isinstance(atom, sp.Indexed) else None
                try:
                    body = self._to_ring(node.body_at(pos), {})
                except PositionError as exc:
                    raise Undefined(str(exc)) from None
                hit = self._root(body, sp.S.Half) if node.kind is ROOT else body
            except Undefined as exc:
                inner = str(exc)
                if " is undefined at n = " not in inner:  # keep the innermost node's reason
                    inner = f"{atom} is undefined at n = {self.model.n}: {inner}"
                hit = Undefined(inner)
            self._node_forms[atom] = hit
        if isinstance(hit, Undefined):
            raise hit
        return self.lift(hit)

    def _to_ring(self, e, memo):
        if e in memo:
            return self.lift(memo[e])
        ring = self.ring
        if e in self.atoms:
            out = self.atoms[e]
        elif self.model.node_of(e) is not None:
            out = self._node_form(e)
        elif e.is_Add:
            # Terms over the same denominator are added first: folding them in the
            # order SymPy keeps them would rescale the running sum at every change.
            forms = [self._to_ring(arg, memo) for arg in e.args]
            ring = self.ring
            buckets: dict = {}
            for a, b in (self.lift(f) for f in forms):
                buckets[b] = buckets[b] + a if b in buckets else a
            (den, num), *rest = buckets.items()
            for b, a in rest:
                if len(b) == 1 and len(den) == 1:
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
                num, den = self.lift((num, den))
                num, den = num * a, den * b
            out = num, den
        elif e.is_Pow and e.exp.is_Integer:
            a, b = self._to_ring(e.base, memo)
            k = int(e.exp)
            if k < 0 and a == 0:
                raise Undefined(f"division by zero in {e}")
            out = (a**k, b**k) if k >= 0 else (b ** (-k), a ** (-k))
        elif e.is_Pow and e.exp.is_Rational and e.exp.q == 2:
            out = self._root(self._to_ring(e.base, memo), e.exp)
        elif e.is_Rational:
            out = ring(e), ring.one
        else:
            raise Undecidable(f"{e} is not built from +, -, *, /, integer powers and square roots")
        memo[e] = out
        return self.lift(out)

    def _root(self, base, exponent):
        """base**exponent for a half-integer exponent, as a form."""
        num, den = self.lift(base)
        num = self.reduce(num)
        p = int(2 * exponent)
        if num == 0:
            if p < 0:
                raise Undefined("division by zero: a square root is 0")
            return self.ring.zero, self.ring.one
        factors = []  # root generators whose product is the square root, with a scale
        if den.is_ground:
            c = QQ.to_sympy(num.LC) / QQ.to_sympy(den.LC)
            poly = num.monic()
            sign = 1 if c > 0 else -1
            c = abs(c)
            square, primes = _square_free(c.p * c.q)
            scale = sp.Rational(square, c.q)
            factors = [self._generator(("prime", q), f"sqrt({q})") for q in primes]
            if not poly.is_ground:
                factors.append(self._generator(("poly", sign * poly), "sqrt(...)"))
            elif sign < 0:
                raise Undefined("square root of a negative number")
        else:
            scale = sp.S.One
            factors = [self._generator(("pair", num, den), "sqrt(...)")]
        ring = self.ring
        value = ring(scale)
        for r in factors:
            value = value * self.root_gens[id(r)]
        if p > 0:
            return value**p, ring.one
        return ring.one, value ** (-p)

    def _generator(self, key, label) -> _Root:
        for r in self.roots:
            if _same_key(r.key, key, self.ring):
                return r
        root = _Root(sp.Dummy(f"r{len(self.roots) + 1}"), key, label)
        self.roots.append(root)
        self._build_ring()
        return root


def _same_key(a, b, ring) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "prime":
        return a[1] == b[1]
    if a[0] == "poly":
        return a[1].set_ring(ring) == b[1].set_ring(ring)
    an, ad = (p.set_ring(ring) for p in a[1:])
    bn, bd = (p.set_ring(ring) for p in b[1:])
    return an * bd == bn * ad


def _square_free(value: int) -> tuple[int, list[int]]:
    """value = square**2 * product(primes), primes distinct (unsplit cofactors kept whole)."""
    square, primes = 1, []
    for q, e in sorted(factorint(value, limit=FACTOR_LIMIT).items()):
        square *= q ** (e // 2)
        if e % 2:
            primes.append(q)
    return square, primes


def _monomial_lcm(a, b):
    return tuple(max(p, q) for p, q in zip(a, b, strict=True))
