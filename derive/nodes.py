"""The node kinds: each one's derivative, algebraic relation and numeric value.

Like autograd's table of VJPs, one small entry per kind.  ``body`` is what the
node is computed from: the whole definition for an explicit node, the argument
for a root, an exponential or a logarithm.  Derivatives never introduce a new
transcendental: d sqrt(u) = du / (2 s), d exp(u) = s du, in terms of s itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp


class Undefined(ArithmeticError):
    """A value that does not exist: division by zero, the root of a negative number."""


@dataclass(frozen=True)
class Kind:
    name: str
    chain: Callable  # (node, body, d body) -> d node
    relation: Callable  # (node, body) -> an expression that is 0
    value: Callable  # (mpmath context, value of body) -> value of the node
    function: Callable  # body -> the node's definition as a SymPy expression
    domain: str | None = None  # where the body must lie: "positive", "nonnegative" or anywhere


EXPLICIT = Kind("explicit", lambda s, u, du: du, lambda s, u: s - u, lambda m, u: u, lambda u: u)
ROOT = Kind(
    "sqrt",
    lambda s, u, du: du / (2 * s),
    lambda s, u: s**2 - u,
    lambda m, u: m.sqrt(u),
    sp.sqrt,
    "nonnegative",
)
EXP = Kind(
    "exp", lambda s, u, du: s * du, lambda s, u: s - sp.exp(u), lambda m, u: m.exp(u), sp.exp
)
LOG = Kind(
    "log",
    lambda s, u, du: du / u,
    lambda s, u: sp.exp(s) - u,
    lambda m, u: m.log(u),
    sp.log,
    "positive",
)
KINDS = {k.name: k for k in (EXPLICIT, ROOT, EXP, LOG)}
