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

Length: one module on purpose. The ring, the radicand normalisation and the normal
form hold one invariant together (equal radicands share one generator, so reduction is
a normal form); split up, that argument would span files.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import QQ
from sympy.ntheory import factorint
from sympy.polys.rings import PolyRing

from .language import PositionError
from .model import Model, position
from .nodes import Undefined
from .sizes import at

# Trial division bound when splitting a constant radicand into primes: only a
# normalisation (a prime left unsplit is still sound), so small is fine.
FACTOR_LIMIT = 10**4


# A logarithm's argument is split into irreducible factors (log|f g| = log|f| +
# log|g|) up to this many terms; a larger one keeps one generator, still sound.
FACTOR_TERMS = 64
_ROOT_KEYS = ("prime", "poly", "pair")
_EXP_KEYS = ("exp", "exppair")


def _named(atom) -> str:
    return atom.base.name if isinstance(atom, sp.Indexed) else atom.name


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
        solved = dict(model.solved)
        if centre and not model.spec.several:  # a mean over one axis of several: not yet
            for node in model.nodes.values():
                if node.index is not None or node.kind.name != "explicit" or node.undefined:
                    continue
                # Only a body in one vector's n positions alone can be its mean: the
                # expansion below is then tried for that vector only (a miss is sound).
                body = node.body
                positions = body.atoms(sp.Indexed)
                named = {a.base.name for a in positions}
                if len(named) != 1 or len(positions) != n:
                    continue
                (v,) = named
                if v not in model.spec.vectors:
                    continue  # an indexed node's family, not an input
                labels = {a.base.label for a in positions}
                if (
                    v in self.centred
                    or v in model.constrained
                    or body.free_symbols - positions - labels
                ):
                    continue
                total = sp.Add(*[model.families[v][c] for c in range(1, n + 1)])
                if sp.expand(body * n - total) == 0:
                    self.centred[v] = node.name
        self._input_gens: list[tuple[sp.Dummy, object]] = []  # (generator, what it is)
        for v in model.spec.indexed_inputs:
            if v in self.centred:
                self._input_gens.append((sp.Dummy(f"m_{v}"), ("mean", v)))
                self._input_gens += [(sp.Dummy(f"d_{v}_{c}"), ("dev", v, c)) for c in range(1, n)]
            else:
                self._input_gens += [
                    (sp.Dummy(f"{v}_{c}"), model.families[v][c])
                    for c in model.positions(v)
                    if model.families[v][c] not in solved
                ]
        for name in model.spec.all_scalars:
            if model.scalars[name] not in solved:
                self._input_gens.append((sp.Dummy(name), model.scalars[name]))
        positive = set(model.spec.positive)
        self._positive_inputs = {
            g
            for g, what in self._input_gens
            if isinstance(what, sp.Basic) and _named(what) in positive
        }
        # Generators: square roots (with relations) and exponentials and logarithms
        # (without: treated as indeterminates, so a zero remainder is an identity).
        self.roots: list[_Root] = []
        self._suffix: dict = {}  # (older ring, ring) -> whether a lift only pads
        self.relations: list = []
        self._build_ring()
        self._node_forms: dict = {}
        # Every subexpression's form, shared by all sides: claims repeat sums and
        # products (x̂_j dy_j, Σ dy).  A form from an older ring is lifted on use.
        self._forms: dict = {}

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
        for atom, value in self.model.solved:  # each in the inputs and the earlier ones
            atoms[atom] = self._to_ring(value, {})
        roots = [r for r in self.roots if r.key[0] in _ROOT_KEYS]
        self.relations = [self._relation(r, gens) for r in roots]
        # For each monic relation s**2 = K: the position of s in a monomial, and K.
        self._squares = []
        for r in roots:
            if r.key[0] != "pair":
                s = gens[r.symbol]
                self._squares.append((self.ring.gens.index(s), s**2 - self._relation(r, gens)))
        self._monic = len(self._squares) == len(roots)
        self._positive = {self.ring.gens.index(gens[g]) for g in self._positive_inputs} | {
            self.ring.gens.index(gens[r.symbol]) for r in self.roots if r.key[0] in _EXP_KEYS
        }

    def _relation(self, root: _Root, gens):
        s = gens[root.symbol]
        if root.key[0] == "prime":
            return s**2 - root.key[1]
        if root.key[0] == "poly":
            return s**2 - self._lift(root.key[1])
        _, num, den = root.key
        return self._lift(den) * s**2 - self._lift(num)

    def lift(self, form):
        num, den = form
        if num.ring is self.ring:
            return form
        return self._lift(num), self._lift(den)

    def _lift(self, p):
        # Generators are only ever prepended (the newest root first), so an older
        # ring's monomials gain leading zeros.  SymPy's set_ring matches the
        # generators by name, and that search dominated large sides.
        ring = self.ring
        if p.ring is ring:
            return p
        k = ring.ngens - p.ring.ngens
        pair = (p.ring, ring)
        if pair not in self._suffix:
            self._suffix[pair] = (
                k >= 0
                and ring.symbols[k:] == p.ring.symbols
                and (ring.domain, ring.order) == (p.ring.domain, p.ring.order)
            )
        if not self._suffix[pair]:
            return p.set_ring(ring)
        pad = (0,) * k
        out = ring.zero
        for monom, coeff in p.items():
            out[pad + monom] = coeff
        return out

    def reduce(self, p):
        """The normal form of p modulo the relations."""
        p = self._lift(p)
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
        return self.lift(self._to_ring(expr, self._forms))

    def equal(self, a, b) -> bool:
        """Two forms agree wherever both are defined (a sufficient test, exact)."""
        (na, da), (nb, db) = self.lift(a), self.lift(b)
        for den in (da, db):
            if len(den) > 1 and self.reduce(den) == 0:
                raise Undefined("a denominator is 0 everywhere")
        fa, fb, _ = _common(da, db)
        return self.reduce(na * fa - nb * fb) == 0

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
                pos = position(atom)
                try:
                    body = self._to_ring(node.body_at(pos), self._forms)
                except PositionError as exc:
                    raise Undefined(str(exc)) from None
                form = _KIND_FORMS.get(node.kind.name)
                hit = body if form is None else form(self, body)
            except Undefined as exc:
                inner = str(exc)
                if " is undefined at " not in inner:  # keep the innermost node's reason
                    inner = f"{atom} is undefined at {at(self.model.n)}: {inner}"
                hit = Undefined(inner)
            self._node_forms[atom] = hit
        if isinstance(hit, Undefined):
            raise hit
        return self.lift(hit)

    def _to_ring(self, e, memo):
        hit = memo.get(e)
        if hit is not None:
            hit = memo[e] = self.lift(hit)
            return hit
        ring = self.ring
        if e in self.atoms:
            out = self.atoms[e]
        elif self.model.node_of(e) is not None:
            out = self._node_form(e)
        elif e.is_Add:
            # Terms over the same denominator are added first: folding them in the
            # order SymPy keeps them would rescale the running sum at every change.
            forms = [self._to_ring(arg, memo) for arg in e.args]
            buckets: dict = {}
            for a, b in (self.lift(f) for f in forms):
                buckets[b] = buckets[b] + a if b in buckets else a
            (den, num), *rest = buckets.items()
            for b, a in rest:
                fa, fb, den = _common(den, b)
                num = num * fa + a * fb
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
        elif isinstance(e, sp.exp) or e is sp.E:
            out = self._exp(self._to_ring(e.args[0] if e.args else sp.S.One, memo))
        elif isinstance(e, sp.log) and len(e.args) == 1:
            out = self._log(self._to_ring(e.args[0], memo))
        elif isinstance(e, sp.Abs):
            num, den = self._to_ring(e.args[0], memo)
            out = self._root((num**2, den**2), sp.S.Half)
        else:
            raise Undecidable(
                f"{e} is not built from +, -, *, /, integer powers, square roots, exp and log"
            )
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
        if self._known_negative(num, den):
            raise Undefined("square root of a value that is negative everywhere")
        factors = []  # root generators whose product is the square root, with a scale
        if den.is_ground:
            c = QQ.to_sympy(num.LC) / QQ.to_sympy(den.LC)
            poly = num.monic()
            sign = 1 if c > 0 else -1
            c = abs(c)
            square, primes = _square_free(c.p * c.q)
            scale = sp.Rational(square, c.q)
            factors = [self._generator(("prime", q), f"sqrt({q})") for q in primes]
            poly, outside = self._positive_square(self._lift(poly))
            if not poly.is_ground:
                factors.append(self._generator(("poly", sign * poly), "sqrt(...)"))
            elif sign < 0:
                raise Undefined("square root of a negative number")
        else:
            scale = sp.S.One
            factors = [self._generator(("pair", num, den), "sqrt(...)")]
            outside = self.ring.one
        ring = self.ring
        value = ring(scale) * self._lift(outside)
        for r in factors:
            value = value * self.root_gens[id(r)]
        if p > 0:
            return value**p, ring.one
        return ring.one, value ** (-p)

    def _positive_square(self, poly):
        """(rest, m) with poly = m**2 * rest and m known > 0: a monomial in the
        exponentials and positive inputs, times repeated irreducible factors that
        are known > 0 ((exp(z) + 1)**2).  sqrt(m**2 rest) = m sqrt(rest) only there:
        sqrt(x**2) stays a root for a real x."""
        ring = self.ring
        if not self._positive:  # batch norm: nothing is known > 0, nothing comes out
            return poly, ring.one
        least = [0] * ring.ngens
        for k in self._positive:
            least[k] = min(monom[k] for monom in poly.keys()) // 2
        m = ring.from_dict({tuple(least): 1}) if any(least) else ring.one
        if any(least):
            poly = poly.quo(m**2)
        # Factoring costs: only radicands in a positive variable, where squares such
        # as (exp(z) + 1)**2 arise, are factored; others keep their root (sound).
        has_positive = any(any(m[k] for k in self._positive) for m in poly.keys())
        if has_positive and 1 < len(poly) <= FACTOR_TERMS:
            _, factors = poly.factor_list()
            for f, e in factors:
                f = f.monic()  # so that poly stays monic
                if e >= 2 and self._known_positive(f):
                    q = f ** (e // 2)
                    poly, m = poly.quo(q**2), m * q
        return poly, m

    def _exp(self, arg):
        """exp of a form: exp(a + b) = exp(a) exp(b), exp(k a) = exp(a)**k, per term
        of the argument; exp(k log f) = f**k for f known > 0."""
        num, den = self.lift(arg)
        num = self.reduce(num)
        if not den.is_ground:
            g = self._generator(("exppair", num, den), "exp(...)")
            return self.root_gens[id(g)], self.ring.one
        ring0 = num.ring
        top, bottom = self.ring.one, self.ring.one
        for monom, coeff in num.terms():
            r = QQ.to_sympy(coeff) / QQ.to_sympy(den.LC)
            mono = ring0.from_dict({monom: ring0.domain.one})
            factor = self._exp_log(mono, r)
            if factor is None:
                g, k = self._exp_generator(mono, r)
                power = self.root_gens[id(g)] ** abs(k)
                factor = (power, self.ring.one) if k > 0 else (self.ring.one, power)
            a, b = (self._lift(f) for f in factor)
            top, bottom = self._lift(top) * a, self._lift(bottom) * b
        return top, bottom

    def _exp_generator(self, mono, r):
        """(g, k) with exp(r * mono) = g**k: an existing generator exp(r0 * mono)
        where r / r0 is an integer, else a new one exp(|r| * mono).  (Keying by
        the denominator alone would write exp(0.044715 z) as exp(z/200000)**8943.)"""
        for g in self.roots:
            if g.key[0] == "exp" and self._lift(g.key[1]) == self._lift(mono):
                k = r / g.key[2]
                if k.is_Integer:
                    return g, int(k)
        return self._generator(("exp", mono, abs(r)), "exp(...)"), 1 if r > 0 else -1

    def _exp_log(self, mono, r):
        """exp(r * mono) where mono is one logarithm generator and r an integer:
        the argument of the log to the power r, if it is known > 0; else None."""
        if not r.is_Integer or len(mono) != 1:
            return None
        (monom,) = mono.keys()
        if sum(monom) != 1:
            return None
        symbol = mono.ring.symbols[monom.index(1)]
        g = next((g for g in self.roots if g.symbol == symbol), None)
        if g is None or g.key[0] not in ("log", "logprime"):
            return None
        if g.key[0] == "logprime":
            f = self.ring(g.key[1])
        else:
            f = self._lift(g.key[1])
            if not self._known_positive(f):
                return None
        k = abs(int(r))
        return (f**k, self.ring.one) if r > 0 else (self.ring.one, f**k)

    def _known_negative(self, num, den) -> bool:
        """num/den < 0 wherever defined, by the signs of its terms."""
        return (self._known_positive(num, -1) and self._known_positive(den)) or (
            self._known_positive(num) and self._known_positive(den, -1)
        )

    def _known_positive(self, f, sign: int = 1) -> bool:
        """sign * f > 0 by the signs of its terms: every coefficient > 0, every variable
        known > 0 (exponentials, positive inputs) or raised to an even power, and
        some term positive for certain (no square in it, which may be 0)."""
        f = self._lift(f)
        if not f or not all(sign * c > 0 for c in f.values()):
            return False
        pos = self._positive
        if not all(all(e % 2 == 0 or k in pos for k, e in enumerate(m)) for m in f.keys()):
            return False
        return any(all(e == 0 or k in pos for k, e in enumerate(m)) for m in f.keys())

    def _exp_argument(self, g):
        """The argument of an exponential generator, as a form."""
        if g.key[0] == "exppair":
            return self.lift((g.key[1], g.key[2]))
        num = self._lift(g.key[1]) * self.ring(g.key[2])
        return num, self.ring.one

    def _log(self, arg):
        """log of a form, where it is > 0: log u = log|c| + Σ e log|f| over its
        rational content c and irreducible factors f (sound wherever u > 0);
        log exp(a) = a."""
        num, den = self.lift(arg)
        num = self.reduce(num)
        if num == 0:
            raise Undefined("logarithm of 0")
        if num.is_ground and den.is_ground:
            c = QQ.to_sympy(num.LC) / QQ.to_sympy(den.LC)
            if c <= 0:
                raise Undefined(f"logarithm of {c}")
        if self._known_negative(num, den):
            raise Undefined("logarithm of a value that is negative everywhere")
        total = (self.ring.zero, self.ring.one)
        for part, sign in ((num, 1), (den, -1)):
            for piece, mult in self._log_terms(self._lift(part)):
                a, b = self.lift(piece)
                t_num, t_den = self.lift(total)
                total = (t_num * b + sign * mult * a * t_den, t_den * b)
        return total

    def _log_terms(self, part):
        """[(form, multiplicity)] whose sum is log|part|."""
        ring = self.ring
        out = []
        c = QQ.to_sympy(part.LC)
        poly = part.monic()
        # Exponentials in the monomial content: log exp(a)**e = e a.
        exps = {
            ring.gens.index(self.root_gens[id(g)]): g for g in self.roots if g.key[0] in _EXP_KEYS
        }
        least = [min(monom[k] for monom in poly.keys()) for k in range(ring.ngens)]
        content = tuple(e if k in exps else 0 for k, e in enumerate(least))
        if any(content):
            poly = poly.quo(ring.from_dict({content: 1}))
            for k, e in enumerate(content):
                if e:
                    out.append((self._exp_argument(exps[k]), e))
        if not poly.is_ground:
            factors = [(poly, 1)]
            if len(poly) <= FACTOR_TERMS:
                lead, factors = poly.factor_list()
                c *= QQ.to_sympy(lead)
            for f, e in factors:
                lc = QQ.to_sympy(f.LC)
                c *= lc**e
                g = self._generator(("log", f.monic()), "log(...)")
                out.append(((self.root_gens[id(g)], self.ring.one), e))
        c = abs(c)
        for q, e in sorted(factorint(c.p, limit=FACTOR_LIMIT).items()):
            g = self._generator(("logprime", q), f"log({q})")
            out.append(((self.root_gens[id(g)], self.ring.one), e))
        for q, e in sorted(factorint(c.q, limit=FACTOR_LIMIT).items()):
            g = self._generator(("logprime", q), f"log({q})")
            out.append(((self.root_gens[id(g)], self.ring.one), -e))
        return out

    def _generator(self, key, label) -> _Root:
        for r in self.roots:
            if _same_key(r.key, key, self._lift):
                return r
        root = _Root(sp.Dummy(f"r{len(self.roots) + 1}"), key, label)
        self.roots.append(root)
        self._build_ring()
        return root


# The form of a node of each kind from its body's (an explicit node's is the body).
_KIND_FORMS = {
    "sqrt": lambda field, body: field._root(body, sp.S.Half),
    "exp": lambda field, body: field._exp(body),
    "log": lambda field, body: field._log(body),
}


def _same_key(a, b, lift) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] in ("prime", "logprime"):
        return a[1] == b[1]
    if a[0] in ("poly", "log"):
        return lift(a[1]) == lift(b[1])
    if a[0] == "exp":
        return a[2] == b[2] and lift(a[1]) == lift(b[1])
    an, ad = (lift(p) for p in a[1:])
    bn, bd = (lift(p) for p in b[1:])
    return an * bd == bn * ad


def _square_free(value: int) -> tuple[int, list[int]]:
    """value = square**2 * product(primes), primes distinct (unsplit cofactors kept whole)."""
    square, primes = 1, []
    for q, e in sorted(factorint(value, limit=FACTOR_LIMIT).items()):
        square *= q ** (e // 2)
        if e % 2:
            primes.append(q)
    return square, primes


def _common(da, db):
    """(fa, fb, d) with d = da·fa = db·fb, a common denominator of a/da and b/db.

    Where one denominator divides the other exactly (softmax sides: one is the
    other times more powers of the row sums), d is the larger one, not the product:
    cross-multiplying such sides cost seconds per check at T = 3.  Exact division
    is an identity in the ring, so this is the same fraction, only smaller."""
    ring = da.ring
    if da == db:
        return ring.one, ring.one, da
    if len(da) == 1 and len(db) == 1:
        lcm = ring.from_terms([(_monomial_lcm(da.LM, db.LM), da.LC * db.LC)])
        return lcm.quo(da), lcm.quo(db), lcm
    big, small, swap = (da, db, False) if len(da) >= len(db) else (db, da, True)
    if len(small) > 1:
        q, r = big.div(small)
        if not r:
            return (q, ring.one, big) if swap else (ring.one, q, big)
    return db, da, da * db


def _monomial_lcm(a, b):
    return tuple(max(p, q) for p, q in zip(a, b, strict=True))
