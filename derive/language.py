"""The claim expression language.

A side of a claim is a Python-syntax expression over a restricted namespace:

    x[i], g[j], dy[j], p[k], xhat[j], y[j]   indexed families (1-based)
    mu, sigma, L, L_p, gamma, beta, eps, n   scalars (only those the model has)
    sum(f, k)            Σ_{k=1..n} f           sum(f, k, ne=i)   Σ_{k≠i} f
    d(f, v)              graph-view partial ∂f/∂v (a node's inputs held fixed)
    D(f, v)              total derivative of f as a function of the variables
    delta(a, b)          Kronecker delta        sqrt(f)

Free indices (i, j) are fixed by the claim's case (``for``); every other index
name (k, m, l, q, r, and j in an "all i" claim) must be bound by a sum.
Text is parsed by SymPy's parser with no builtins and no automatic symbols,
so an unknown name is an error, never a fresh symbol.
"""

from __future__ import annotations

import ast
import re
from tokenize import TokenError

import sympy as sp
from sympy.parsing.sympy_parser import auto_number, parse_expr

from .model import BOUND_INDICES, FREE_INDICES, INDEX, N_SYMBOL, Model, ModelError

CASES = {
    # case label: (free indices, relation between them)
    "all": ((), None),
    "all i": (("i",), None),
    "all i, j": (("i", "j"), None),
    "i = j": (("i", "j"), "eq"),
    "i != j": (("i", "j"), "ne"),
}

_GLOBALS = {
    "Integer": sp.Integer,
    "Rational": sp.Rational,
    "Float": sp.Float,
    "__builtins__": {},
}


class LanguageError(ValueError):
    """A side that cannot be read: unknown name, bad index, bad call."""


def namespace(model: Model, assignment: dict[str, int | sp.Symbol]) -> dict:
    """Names a claim may use, with free indices bound per ``assignment``."""
    ns: dict = {}
    ns.update(model.families)
    ns.update(model.scalars)
    ns["n"] = sp.Integer(model.n) if not model.symbolic else N_SYMBOL
    for name in FREE_INDICES + BOUND_INDICES:
        ns[name] = INDEX[name]  # a free index not bound by the case may still be summed over
    for name, value in assignment.items():
        ns[name] = sp.Integer(value) if isinstance(value, int) else value

    def _sum(f, k, ne=None):
        if not (isinstance(k, sp.Symbol) and k in INDEX.values()):
            raise LanguageError(f"sum index must be an index name not fixed by the case, got {k}")
        fixed = set(assignment.values())
        if ne is not None and sp.sympify(ne) not in {sp.sympify(v) for v in fixed}:
            raise LanguageError(f"sum(..., ne=...) must name a free index of the case, got {ne}")
        return model.sum(sp.sympify(f), k, ne=ne)

    def _d(f, v):
        return _derivative(model.partial, f, v)

    def _D(f, v):
        return _derivative(model.total, f, v)

    ns.update(
        sum=_sum,
        d=_d,
        D=_D,
        delta=sp.KroneckerDelta,
        sqrt=sp.sqrt,
    )
    return ns


def _derivative(how, f, v):
    try:
        return how(sp.sympify(f), v)
    except ModelError as exc:
        raise LanguageError(str(exc)) from None


_NAME = re.compile(r"name '(\w+)' is not defined")


def parse(text: str, model: Model, assignment: dict[str, int | sp.Symbol]) -> sp.Expr:
    """Evaluate one side of a claim for one assignment of its free indices."""
    if not isinstance(text, str) or not text.strip():
        raise LanguageError("expected a non-empty expression string")
    try:
        expr = parse_expr(
            text,
            local_dict=namespace(model, assignment),
            global_dict=dict(_GLOBALS),
            transformations=(auto_number,),
        )
    except NameError as exc:
        m = _NAME.search(str(exc))
        name = m.group(1) if m else str(exc)
        raise LanguageError(f"unknown symbol {name!r} in {text!r}") from None
    except LanguageError:
        raise
    except (SyntaxError, TokenError) as exc:
        raise LanguageError(f"cannot parse {text!r}: {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise LanguageError(f"cannot evaluate {text!r}: {exc}") from None
    expr = sp.sympify(expr)
    _check_closed(expr, text, model)
    return expr


def _check_closed(expr, text, model):
    """No index may be left unbound once the side is evaluated."""
    if model.symbolic:
        allowed = {N_SYMBOL} | {INDEX[n] for n in FREE_INDICES}
        bound = set()
        for s in expr.atoms(sp.Sum):
            bound |= {lim[0] for lim in s.limits}
        allowed |= bound
    else:
        allowed = set()
    for a in expr.atoms(sp.Indexed):
        for idx in a.indices:
            if not idx.is_Integer and idx not in allowed:
                raise LanguageError(f"index {idx} in {a} is not bound by a sum in {text!r}")
            if idx.is_Integer and not model.symbolic and not 1 <= int(idx) <= model.n:
                raise LanguageError(f"index {idx} in {a} is outside 1..{model.n} in {text!r}")
    stray = {s for s in expr.free_symbols if s in INDEX.values() and s not in allowed}
    if stray and not model.symbolic:
        name = sorted(s.name for s in stray)[0]
        raise LanguageError(f"index {name} is used outside a sum in {text!r}")


def uses_literal_index(text: str) -> bool:
    """True when a side names a concrete position (x[1], delta(i, 2)).

    The permutation-symmetry shortcut is sound only for sides that refer to
    positions through free and bound indices alone.
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Name):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "delta"
            and not all(isinstance(a, ast.Name) for a in node.args)
        ):
            return True
    return False
