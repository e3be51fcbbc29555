"""``diff(e, v)``: the derivative of a concrete-n side, by the chain rule over its tree.

SymPy's ``diff`` builds a ``Derivative`` for every subexpression (each one
checking assumptions), and differentiates a subexpression shared by many
terms (μ, σ inside every x̂_j) once per occurrence.  Here each node of the
tree is differentiated once, memoised, with a rule per kind of node: the
few kinds a side at a concrete n is built from (+, ×, powers, exp, log,
Kronecker deltas, symbols and indexed atoms with integer positions).  Any
other node (a ``Sum``, an atom with a symbolic position) goes to SymPy's
``diff`` unchanged, so the result is always SymPy's derivative, perhaps
written differently; a test checks the two agree exactly.
"""

from __future__ import annotations

import sympy as sp
from sympy import Indexed, KroneckerDelta

_ZERO, _ONE = sp.S.Zero, sp.S.One


def diff(e, v, memo: dict | None = None):
    """de/dv.  ``memo`` may be shared across calls with the same v."""
    return _Diff(v, {} if memo is None else memo)(sp.sympify(e))


class _Diff:
    def __init__(self, v, memo):
        self.v, self.memo = v, memo
        self.indexed = isinstance(v, Indexed)

    def __call__(self, e):
        hit = self.memo.get(e)
        if hit is None:
            hit = self.memo[e] = self._rule(e)
        return hit

    def _rule(self, e):
        v = self.v
        if e == v:
            return _ONE
        if e.is_Number or e.is_NumberSymbol or isinstance(e, KroneckerDelta):
            # A delta's arguments are integer positions: it is constant in v.
            return _ZERO
        if e.is_Symbol:
            return _ZERO
        if isinstance(e, Indexed):
            if not self.indexed or e.base != v.base:
                return _ZERO if not e.has(v) else sp.diff(e, v)
            if all(i.is_Integer for i in (*e.indices, *v.indices)):
                return _ZERO  # another position of the same family
            return sp.diff(e, v)
        if e.is_Add:
            return sp.Add(*[self(a) for a in e.args])
        if e.is_Mul:
            return self._product(e.args)
        if e.is_Pow:
            return self._power(e)
        if isinstance(e, sp.exp):
            du = self(e.args[0])
            return _ZERO if du == 0 else e * du
        if isinstance(e, sp.log) and len(e.args) == 1:
            du = self(e.args[0])
            return _ZERO if du == 0 else du / e.args[0]
        return sp.diff(e, v)

    def _product(self, factors):
        terms = []
        for k, f in enumerate(factors):
            df = self(f)
            if df != 0:
                terms.append(sp.Mul(*factors[:k], df, *factors[k + 1 :]))
        return sp.Add(*terms)

    def _power(self, e):
        # SymPy's own rule, so that the two write the same terms: b**x (x' log b + b' x / b)
        base, exponent = e.args
        db, de = self(base), self(exponent)
        if db == 0 and de == 0:
            return _ZERO
        return e * (de * sp.log(base) + db * exponent / base)
