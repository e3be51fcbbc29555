"""The batch-norm model: named steps mean -> var -> sigma -> xhat -> affine -> loss.

One model serves both views the post uses:

* the *graph view*: ``mu``, ``sigma``, ``xhat[j]`` ... are nodes with one-level
  definitions in terms of their direct inputs.  ``partial(e, v)`` differentiates
  with those inputs held fixed, which is what the post means by
  ``∂x̂/∂σ`` or ``∂σ/∂μ``;
* the *expanded view* (the post's "fool's way"): ``total(e, v)`` differentiates
  x̂ as a function of x alone.

Square roots never appear in derivatives.  A node defined by ``node**2 == W``
(sigma, and sigma_p of route C) is differentiated implicitly,
``d node = dW / (2 node)``, so every result is a rational function of the
variables and ``sigma``; the verifier then decides equality modulo
``sigma**2 == var + eps``.

The same code runs for a concrete ``n`` (sums become ``Add``) and a symbolic
``n`` (sums stay ``Sum`` for the general-n prover).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy import Indexed, IndexedBase, KroneckerDelta, Sum, Symbol

# Variables: the inputs and upstream gradients a claim may mention.
x = IndexedBase("x", real=True)
g = IndexedBase("g", real=True)
dy = IndexedBase("dy", real=True)
p = IndexedBase("p", real=True)
gamma = Symbol("gamma", real=True)
beta = Symbol("beta", real=True)
eps = Symbol("epsilon", nonnegative=True)

# Nodes of the graph.
mu = Symbol("mu", real=True)
sigma = Symbol("sigma", positive=True)
sigma_p = Symbol("sigma_p", positive=True)
L = Symbol("L", real=True)
Lp = Symbol("L_p", real=True)
xhat = IndexedBase("xhat", real=True)
y = IndexedBase("y", real=True)

N_SYMBOL = Symbol("n", integer=True, positive=True)
FREE_INDICES = ("i", "j")
BOUND_INDICES = ("k", "m", "l", "q", "r")
INDEX = {name: Symbol(name, integer=True) for name in FREE_INDICES + BOUND_INDICES}
# The bound index of node definitions; no claim can name it, so a claim's own
# index (d(mu, x[k]) inside a sum over k) is never captured by a definition.
DEF_INDEX = Symbol("kappa", integer=True)

KINDS = ("xhat", "layer")


class ModelError(ValueError):
    """A claim asks the model for something it does not have."""


@dataclass(frozen=True)
class Model:
    """Batch norm over one feature of ``n`` values (``n`` an int or ``N_SYMBOL``).

    ``kind`` is ``"xhat"`` (the post: L = Σ g_j x̂_j, g_j = ∂L/∂x̂_j) or
    ``"layer"`` (y = γ x̂ + β, L = Σ dy_j y_j, dy_j = ∂L/∂y_j).
    """

    n: int | Symbol
    kind: str = "xhat"
    with_eps: bool = False
    _defs: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ModelError(f"unknown model kind {self.kind!r}; expected one of {KINDS}")
        if isinstance(self.n, int) and self.n < 1:
            raise ModelError(f"n must be a positive integer, got {self.n}")
        k = DEF_INDEX
        e = eps if self.with_eps else sp.S.Zero
        upstream = g if self.kind == "xhat" else dy
        defs = {
            mu: self.sum(x[k], k) / self.n,
            # sigma and sigma_p are defined by their squares (see module doc).
            sigma: self.sum((x[k] - mu) ** 2, k) / self.n + e,
            sigma_p: self.sum(p[k] ** 2, k) / self.n + e,
        }
        if self.kind == "xhat":
            defs[L] = self.sum(g[k] * xhat[k], k)
        else:
            defs[L] = self.sum(dy[k] * y[k], k)
        defs[Lp] = self.sum(upstream[k] * p[k], k) / sigma_p
        object.__setattr__(self, "_defs", defs)

    # -- names -----------------------------------------------------------
    @property
    def symbolic(self) -> bool:
        return not isinstance(self.n, int)

    @property
    def families(self) -> dict[str, IndexedBase]:
        fams = {"x": x, "xhat": xhat, "p": p}
        if self.kind == "xhat":
            fams["g"] = g
        else:
            fams.update(dy=dy, y=y)
        return fams

    @property
    def scalars(self) -> dict[str, sp.Expr]:
        names = {"mu": mu, "sigma": sigma, "L": L, "L_p": Lp, "sigma_p": sigma_p}
        if self.with_eps:
            names["eps"] = eps
        if self.kind == "layer":
            names.update(gamma=gamma, beta=beta)
        return names

    # -- sums ------------------------------------------------------------
    def sum(self, f, k: Symbol, ne=None):
        """Σ_k f over k = 1..n, skipping k == ne when given."""
        if self.symbolic:
            if ne is not None:
                f = f * (1 - KroneckerDelta(ne, k))
            return Sum(f, (k, 1, self.n))
        return sp.Add(*[f.xreplace({k: sp.Integer(v)}) for v in range(1, self.n + 1) if v != ne])

    # -- graph view: one-level definitions ---------------------------------
    def _explicit(self, a):
        """One-level definition of an indexed or loss node, or None."""
        if isinstance(a, Indexed):
            (idx,) = a.indices
            if a.base == xhat:
                return (x[idx] - mu) / sigma
            if a.base == y:
                return gamma * xhat[idx] + beta
            return None
        if a in (L, Lp):
            return self._defs[a]
        return None

    def expand_once(self, e, keep=()):
        """Replace explicit nodes by their one-level definitions (not those in keep)."""
        return e.replace(_explicit_node(keep), self._explicit)

    def expand_full(self, e, keep=()):
        """Expand explicit nodes until only variables, mu, sigma, sigma_p (and keep) remain."""
        is_node = _explicit_node(keep)
        return e.replace(is_node, lambda a: self.expand_full(self._explicit(a), keep))

    # -- derivatives -------------------------------------------------------
    def _implicit_local(self, node, v):
        """d node / d v holding the node's own inputs fixed."""
        d = sp.diff(self._defs[node], v)
        return d if node == mu else d / (2 * node)

    def partial(self, e, v):
        """Graph-view partial: every node in e is replaced by its one-level
        definition, its inputs held fixed (so ∂x̂_j/∂x_i holds μ and σ fixed)."""
        _check_variable(v)
        markers = {}
        for node in (mu, sigma, sigma_p):
            if node != v and e.has(node):
                markers[node] = sp.Dummy(node.name, **node.assumptions0)
        e = e.xreplace(markers)
        e = self.expand_once(e, keep=_keep_for(v))
        out = sp.diff(e, v)
        for node, mark in markers.items():
            out += sp.diff(e, mark) * self._implicit_local(node, v)
        return out.xreplace({m: nd for nd, m in markers.items()})

    def total(self, e, v):
        """Expanded-view derivative: e as a function of the variables alone
        (through mu and sigma by the chain rule on their definitions)."""
        _check_variable(v)
        e = self.expand_full(e, keep=_keep_for(v))
        d_mu = sp.S.One if v == mu else sp.diff(self._defs[mu], v)
        d_sigma = (
            sp.S.One
            if v == sigma
            else (sp.diff(self._defs[sigma], v) + sp.diff(self._defs[sigma], mu) * d_mu)
            / (2 * sigma)
        )
        d_sigma_p = sp.S.One if v == sigma_p else sp.diff(self._defs[sigma_p], v) / (2 * sigma_p)
        out = sp.diff(e, v)
        for node, dn in ((mu, d_mu), (sigma, d_sigma), (sigma_p, d_sigma_p)):
            if node != v:
                out += sp.diff(e, node) * dn
        return out

    # -- evaluation --------------------------------------------------------
    def to_graph(self, e):
        """Everything in terms of x, upstream, mu and sigma (route C's p = x − μ),
        in one pass over the expression."""
        is_node = _explicit_node(())

        def is_target(a):
            return is_node(a) or a is sigma_p or (isinstance(a, Indexed) and a.base == p)

        def graph(a):
            if a == sigma_p:
                return sigma
            if isinstance(a, Indexed) and a.base == p:
                return x[a.indices[0]] - mu
            return self.to_graph(self._explicit(a))

        return e.replace(is_target, graph)

    def to_x(self, e):
        """Concrete n only: mu replaced by the mean; sigma stays, with
        sigma**2 == self.sigma_squared."""
        return self.to_graph(e).xreplace({mu: self.mean})

    @property
    def mean(self):
        return self._defs[mu]

    @property
    def sigma_squared(self):
        """var + eps as a function of x alone."""
        return self._defs[sigma].xreplace({mu: self.mean})


def _explicit_node(keep):
    """A cheap test for the nodes expand_* replaces (xhat[j], y[j], L, L_p)."""

    def is_node(a):
        if a.is_Symbol:  # identity: Symbols are interned, and == is slow on big trees
            return (a is L or a is Lp) and a not in keep
        return isinstance(a, Indexed) and a.base in (xhat, y) and a not in keep

    return is_node


def _check_variable(v):
    ok = isinstance(v, Symbol) or (isinstance(v, Indexed) and v.base in (x, p, xhat, y))
    if not ok:
        raise ModelError(f"cannot differentiate with respect to {v}")


def _keep_for(v):
    """Nodes an expansion must stop at because v is one of them."""
    if isinstance(v, Indexed) and v.base in (xhat, y):
        return _KeepBase(v.base)
    return (v,)


class _KeepBase(tuple):
    """Membership test that keeps every element of one indexed node family."""

    def __new__(cls, base):
        obj = super().__new__(cls, ())
        obj.base = base
        return obj

    def __contains__(self, a):
        return isinstance(a, Indexed) and a.base == self.base
