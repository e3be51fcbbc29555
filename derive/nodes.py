"""The node kinds: each one's derivative, algebraic relation and numeric value.

Like autograd's table of VJPs, one small entry per kind.  ``body`` is what the
node is computed from: the whole definition for an explicit node, the radicand
for a root.  Derivatives never introduce a square root: a root s = sqrt(u) has
ds = du / (2 s), in terms of s itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mpmath


class Undefined(ArithmeticError):
    """A value that does not exist: division by zero, the root of a negative number."""


@dataclass(frozen=True)
class Kind:
    name: str
    chain: Callable  # (node, d body) -> d node
    relation: Callable  # (node, body) -> an expression that is 0
    value: Callable  # (mp value of body) -> mp value of the node


def _root_value(u):
    if u < 0:
        raise Undefined("square root of a negative number")
    return mpmath.sqrt(u)


EXPLICIT = Kind("explicit", lambda s, db: db, lambda s, body: s - body, lambda u: u)
ROOT = Kind("sqrt", lambda s, db: db / (2 * s), lambda s, body: s**2 - body, _root_value)
KINDS = {k.name: k for k in (EXPLICIT, ROOT)}
