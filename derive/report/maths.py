"""Mathematics in a report: SymPy's LaTeX with the document's names, broken into
lines that fit, and the ``TeX`` strings the template prints as they are."""

from __future__ import annotations

import re

import sympy as sp

from ..claimtex import indexed_latex, name_latex
from ..language import N_SYMBOL
from ..mathtext import escape_tex, separate_names
from ..model import size_symbol

# A printed expression longer than this many characters of LaTeX is not
# printed (its length is): about 1,500 characters fill four to five lines.
LONG_LATEX = 1500
# Width budget of one displayed line, in the units of _width (about one math
# italic letter).  The text block is 15 cm wide, about 65 such letters at
# 11pt; the margin leaves room for the "= " prefix and for estimation error.
LINE_UNITS = 52


class TeX(str):
    """A string that is already LaTeX: printed as is by the template."""


# --------------------------------------------------------------------------- escaping


def code(text: str) -> TeX:
    """Claim-language source in typewriter type, breakable after , * / and (."""
    out = escape_tex(text)
    for c in (",", "*", "/"):
        out = out.replace(c, c + r"\allowbreak{}")
    return TeX(rf"\texttt{{{out}}}")


def _finalize(value):
    if isinstance(value, TeX):
        return value
    if value is None:
        return ""
    return escape_tex(str(value))


def label(claim_id: str) -> TeX:
    """The LaTeX label of a claim: ``claim:<id>``, any character unsafe in a
    label key spelt as ``+<hex>``."""
    safe = "".join(
        c if (c.isascii() and c.isalnum()) or c in "-.:" else f"+{ord(c):x}" for c in claim_id
    )
    return TeX(f"claim:{safe}")


# --------------------------------------------------------------------------- mathematics


# Printing order.  SymPy sorts the terms of a sum by its symbols' names, and a
# plain symbol before an indexed one, which prints x_1 - mu as "-mu + x_1".
# For printing only, every symbol is renamed so that the sort follows this
# rank (gamma, inputs, normalised values, upstream gradients, then mu, sigma,
# eps, beta),
# and symbol_names prints each under its own LaTeX.
_RANK_INDEXED = {"x": "a", "xhat": "b", "p": "c", "g": "d", "dy": "e", "y": "f"}
_RANK_SCALAR = {"gamma": "Ag", "mu": "zm", "sigma": "zs", "eps": "zt", "beta": "zu"}
# A name the claim language declares (mu, xhat, dbeta, Phi1); anything else
# (k_0, a sum's own index) keeps SymPy's LaTeX.
_DECLARED = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?\Z")


def _name_tex(symbol) -> str:
    """A symbol's LaTeX: a declared name as the claims print it (claimtex), so
    the setting, the sides and the evidence use one notation."""
    if _DECLARED.match(symbol.name):
        return name_latex(symbol.name)
    return sp.latex(symbol)


def in_size(e, size):
    """e with the symbolic batch size (N_SYMBOL, named n inside derive) under the
    document's own name for it (m in the batch-norm paper); size a model of several
    sizes (Document.latex_size): each size's symbol under its name."""
    if not isinstance(size, str):
        return sp.sympify(e).xreplace({size_symbol(k): sp.Symbol(k) for k in size.sizes})
    return sp.sympify(e).xreplace({N_SYMBOL: sp.Symbol(size, **N_SYMBOL.assumptions0)})


def _renamed(e):
    """e with symbols renamed for printing order, and their LaTeX names."""
    e = sp.sympify(e)
    rep, names = {}, {}
    for a in sorted(e.atoms(sp.Indexed), key=sp.default_sort_key):
        rank = _RANK_INDEXED.get(str(a.base), "h" + str(a.base))
        idx = "_".join(f"{int(i):04d}" if i.is_Integer else str(i) for i in a.indices)
        new = sp.Symbol(f"{rank}{idx}", **a.assumptions0)
        rep[a] = new
        index = ",".join(sp.latex(i) for i in a.indices)
        if _DECLARED.match(str(a.base)):
            names[new] = indexed_latex(str(a.base), index)
        else:
            names[new] = f"{sp.latex(a.base)}_{{{index}}}"
    for old in e.free_symbols:
        if not old.is_Symbol:
            continue
        if old.name not in _RANK_SCALAR:
            names[old] = _name_tex(old)
            continue
        new = sp.Symbol(_RANK_SCALAR[old.name], **old.assumptions0)
        rep[old], names[new] = new, _name_tex(old)
    return e.xreplace(rep), names


def tex(e, names=None) -> str:
    """sympy.latex in the order a person writes (x_1 - mu, not -mu + x_1).
    ``names`` given: e is already renamed by _renamed."""
    if names is None:
        e, names = _renamed(e)
    return separate_names(sp.latex(e, symbol_names=names))


def _width(e) -> float:
    """Rough printed width of an expression, in math-italic letters."""
    if e.is_Add:
        return sum(_width(a) for a in e.args) + 2.2 * (len(e.args) - 1)
    if e.is_Mul:
        num, den = e.as_numer_denom()
        if den != 1:
            return max(_width(num), _width(den)) + 1
        factors = sp.Mul.make_args(num)
        return sum(_width(f) + (2 if f.is_Add else 0) for f in factors) + 0.3 * len(factors)
    if e.is_Pow:
        return _width(e.base) + (2 if e.base.is_Add else 0) + 0.7 * _width(e.exp)
    if isinstance(e, sp.Indexed):
        return 1.6
    if isinstance(e, sp.Sum):
        return 3 + _width(e.function)
    if e.is_Rational:
        return float(len(str(e)))
    if e.is_Symbol:
        return 1.4
    if e.args:
        return 2 + sum(_width(a) for a in e.args)
    return float(len(str(e)))


def _terms(e) -> list[tuple[str, sp.Expr]]:
    """Top-level terms of a sum in sympy's print order, each as (sign, |term|)."""
    out = []
    for t in e.as_ordered_terms():
        if t.could_extract_minus_sign():
            out.append(("-", -t))
        else:
            out.append(("+", t))
    return out


def _lines(terms, budget: float, names: dict, first: float | None = None) -> list[str]:
    """Greedy line filling: LaTeX of the terms, broken into lines of the budget
    (the first line: of ``first``, when something stands in front of it)."""
    lines, current, used = [], [], 0.0
    for k, (sign, t) in enumerate(terms):
        w = _width(t) + 2.2
        if current and used + w > (budget if lines or first is None else first):
            lines.append(" ".join(current))
            current, used = [], 0.0
        text = tex(t, names)
        if t.is_Add:
            text = rf"\left({text}\right)"
        current.append(("- " if sign == "-" else ("" if k == 0 else "+ ")) + text)
        used += w
    if current:
        lines.append(" ".join(current))
    return lines


def math_lines(e, budget: float = LINE_UNITS) -> list[str]:
    """An expression's LaTeX as one or more lines that each fit the budget.

    A sum is broken between its terms; c·(sum) / d is printed as
    (c/d)·( … ) with the sum broken inside; anything else is one line."""
    e, names = _renamed(e)
    if _width(e) <= budget:
        return [tex(e, names)]
    if e.is_Add:
        return _lines(_terms(e), budget, names)
    num, den = e.as_numer_denom()
    inner = [f for f in sp.Mul.make_args(num) if f.is_Add]
    if len(inner) == 1:
        (body,) = inner
        outside = sp.Mul(*[f for f in sp.Mul.make_args(num) if f is not body]) / den
        # the factor in front shares the first line: leave room for it (a wide
        # fraction in front pushed a normal form of bn_paper to 74% size)
        first = budget - 4 - min(_width(outside), budget / 2)
        lines = _lines(_terms(body), budget - 4, names, first)
        head = "" if outside == 1 else ("-" if outside == -1 else tex(outside, names))
        lines[0] = rf"{head}\biggl({lines[0]}"
        lines[-1] = rf"{lines[-1]}\biggr)"
        return lines
    return [tex(e, names)]


def display(lines: list[str], first_prefix: str = "", next_prefix: str = r"\quad ") -> TeX:
    """Displayed math that never runs off the page: several lines are set in
    ``aligned``; anything still wider than the line is scaled to fit."""
    if len(lines) == 1:
        return TeX(rf"\fitmath{{{first_prefix}{lines[0]}}}")
    body = rf" \\ &{next_prefix}".join(lines)
    return TeX(rf"\fitmath{{\begin{{aligned}}&{first_prefix}{body}\end{{aligned}}}}")


def split_top_level(latex: str, sep: str = "=") -> list[str]:
    """Split a LaTeX string at ``sep`` where no brace, \\left…\\right or
    environment is open (so every piece is balanced)."""
    pieces, depth, start, pos = [], 0, 0, 0
    while pos < len(latex):
        c = latex[pos]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[pos:])
            word = m.group(1)
            if word in ("left", "begin"):
                depth += 1
            elif word in ("right", "end"):
                depth -= 1
            pos += len(m.group(0))
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == sep and depth == 0:
            pieces.append(latex[start:pos].strip())
            start = pos + 1
        pos += 1
    pieces.append(latex[start:].strip())
    return pieces


def document_display(latex: str) -> TeX:
    """A document's own statement; a chain gets one line per ``=``.  Two
    equations set side by side (``a = b, \\qquad c = d``) are not a chain:
    each gets its own line (split at every ``=``, c would sit on a's line)."""
    pieces = split_top_level(latex.strip())
    if any(r"\qquad" in p for p in pieces[1:-1]):
        equations = [e.strip() for e in latex.split(r"\qquad") if e.strip()]
        body = r" \\ ".join(equations)
        return TeX(rf"\fitmath{{\begin{{gathered}}{body}\end{{gathered}}}}")
    if len(pieces) <= 2 or any(not p for p in pieces):
        return display([latex.strip()])
    first = f"{pieces[0]} &= {pieces[1]}"
    rest = [f"&= {p}" for p in pieces[2:]]
    body = r" \\ ".join([first, *rest])
    return TeX(rf"\fitmath{{\begin{{aligned}}{body}\end{{aligned}}}}")
