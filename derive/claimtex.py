"""The claim language printed as mathematics: a side as the reader would write it.

A side such as ``d(xhat[j], sigma)*d(sigma, x[i])`` is shown in a report as
∂x̂_j/∂σ · ∂σ/∂x_i, not as code and not evaluated: what is printed is what
was checked, term by term, in the order the file wrote it, with the file's
own index names (i, j, k, m).  The side's syntax tree is the one
``language.read`` checked; each node becomes an unevaluated SymPy expression
(symbols, indexed names, ``Sum``, ``KroneckerDelta``, powers) or one of the
small display nodes below, and ``ClaimPrinter`` — SymPy's LaTeX printer with
those nodes added — prints it.  Nothing is simplified: 2·(1/(2nσ)) stays as
written.

Notation (one for every report): ``d(f, v)``, the graph-view partial (v's
direct inputs held fixed), is ∂f/∂v; ``D(f, v)``, the total derivative, is
df/dv with an upright d; ``sum(f, k)`` is Σ_{k=1}^{n} f and ``sum(f, k,
ne=i)`` is Σ_{k≠i} f; ``delta(i, j)`` is δ_ij.  A model's names print as
their mathematical letters: ``mu`` μ, ``sigma`` σ, ``eps`` ε, ``xhat`` x̂
(any name ending in ``hat``), ``gamma_c`` γ_c; other names of several letters
print in italic (``dy``).
"""

from __future__ import annotations

import ast
import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .language import index_sizes, read
from .mathtext import GREEK, UPRIGHT, separate_names
from .sizes import slots

_GREEK_NAMES = {
    "alpha",
    "beta",
    "gamma",
    "delta",
    "zeta",
    "eta",
    "theta",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "pi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "chi",
    "psi",
    "omega",
}
_CAPITAL_GREEK = {"Gamma", "Delta", "Lambda", "Pi", "Phi", "Omega"}
assert {rf"\{g}" for g in _GREEK_NAMES | _CAPITAL_GREEK} <= set(GREEK.values())  # one list


def name_latex(name: str) -> str:
    """The mathematical letter of a declared name: mu -> \\mu, xhat -> \\hat{x},
    gamma_c -> \\gamma_{c}, dy -> \\mathit{dy}, Phi1 -> \\Phi_{1} (trailing digits are a
    subscript, as SymPy prints them)."""
    base, _, sub = name.partition("_")
    digits = re.search(r"(?<=[A-Za-z])[0-9]+\Z", base)
    if digits and not sub:
        base, sub = base[: digits.start()], digits.group(0)
    hat = base.endswith("hat") and len(base) > 3
    if hat:
        base = base[:-3]
    if base == "eps":
        out = r"\varepsilon"
    elif base in _GREEK_NAMES or base in _CAPITAL_GREEK:
        out = "\\" + base
    elif len(base) == 1:
        out = base
    elif base in UPRIGHT:
        out = rf"\mathrm{{{base}}}"
    else:
        out = rf"\mathit{{{base}}}"
    if hat:
        out = rf"\hat{{{out}}}"
    if sub:
        out += f"_{{{sub if sub.isdigit() else name_latex(sub)}}}"
    return out


def indexed_latex(name: str, index: str) -> str:
    """name[index]: y[i] -> y_{i}; a name with a subscript of its own takes the
    index beside it (y1[i] -> y_{1,i}), since y_{1}_{i} is a double subscript."""
    base = name_latex(name)
    if base.endswith("}") and "_{" in base:
        head, _, sub = base.rpartition("_{")
        if "{" not in sub:
            return f"{head}_{{{sub[:-1]},{index}}}"
    return f"{base}_{{{index}}}"


class _Display(sp.Expr):
    """A node that is only ever printed (never simplified or evaluated)."""

    is_commutative = True


class Frac(_Display):
    """a / b as written."""


class Neg(_Display):
    """−a as written."""


class Partial(_Display):
    """d(f, v): the graph-view partial derivative."""


class Total(_Display):
    """D(f, v): the total derivative."""


class SumExcept(_Display):
    """sum(f, k, ne=i): f summed over k = 1..n, k ≠ i."""


class Product(_Display):
    """a * b as written (SymPy's Mul would reorder and merge factors)."""


class Plus(_Display):
    """a + b as written."""


def to_display(text: str, size="n") -> sp.Basic:
    """The side's syntax tree as an unevaluated expression for ClaimPrinter.

    size: the size's name, or a model of several sizes (spec.ModelSpec): each sum's
    upper limit is then the size inferred for its index (sizes.infer)."""
    tree = read(text)
    if not isinstance(size, str):
        found = index_sizes(size, (text,))
        size = {k: found.get(k, "?") for k in found} | {"": size.size}
    return _convert(tree, size)


def _convert(node: ast.AST, size) -> sp.Basic:
    def go(child):
        return _convert(child, size)

    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int):
            return sp.Integer(value)
        return sp.Float(value) if not float(value).is_integer() else sp.Integer(int(value))
    if isinstance(node, ast.Name):
        return sp.Symbol(node.id)
    if isinstance(node, ast.UnaryOp):
        inner = go(node.operand)
        return Neg(inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        a, b = go(node.left), go(node.right)
        if isinstance(node.op, ast.Add):
            return Plus(a, b)
        if isinstance(node.op, ast.Sub):
            return Plus(a, Neg(b))
        if isinstance(node.op, ast.Mult):
            return Product(a, b)
        if isinstance(node.op, ast.Div):
            if isinstance(a, Neg):  # -(a)/b reads better as -(a/b)
                return Neg(Frac(a.args[0], b))
            return Frac(a, b)
        return sp.Pow(a, b, evaluate=False)
    if isinstance(node, ast.Subscript):
        return sp.Indexed(sp.IndexedBase(node.value.id), *(go(a) for a in slots(node)))
    if isinstance(node, ast.Call):
        name = node.func.id
        args = [go(a) for a in node.args]
        if name == "sum":
            f, k = args
            n = sp.Symbol(size if isinstance(size, str) else size.get(str(k), size[""]))
            if node.keywords:
                return SumExcept(f, k, go(node.keywords[0].value))
            return sp.Sum(f, (k, sp.Integer(1), n))
        if name == "d":
            return Partial(*args)
        if name == "D":
            return Total(*args)
        if name == "delta":
            return sp.KroneckerDelta(*args, evaluate=False)
        if name == "sqrt":
            return sp.Pow(args[0], sp.Rational(1, 2), evaluate=False)
        if name == "exp":
            return sp.exp(args[0], evaluate=False)
        if name == "log":
            return sp.log(args[0], evaluate=False)
    raise ValueError(f"not a checked side: {ast.dump(node)}")  # read() admits nothing else


# Binding strength, for brackets: a sum binds weakest, an atom strongest.
_ADD, _NEG, _MUL, _POW, _ATOM = 10, 20, 30, 40, 50


def _strength(e) -> int:
    if isinstance(e, Plus):
        return _ADD
    if isinstance(e, Neg):
        return _NEG
    if isinstance(e, Product | sp.Sum | SumExcept):
        return _MUL
    if isinstance(e, sp.Pow):
        return _POW
    if isinstance(e, sp.Rational) and not e.is_Integer:
        return _MUL
    if isinstance(e, sp.Number) and e < 0:
        return _NEG
    return _ATOM


class ClaimPrinter(LatexPrinter):
    """SymPy's LaTeX printer, with the display nodes and the model's letters."""

    def __init__(self, **settings):
        super().__init__({"order": "none"})

    def _wrap(self, e, level: int) -> str:
        text = self._print(e)
        if _strength(e) <= level:
            return rf"\left({text}\right)"
        return text

    def _print_Symbol(self, e, style="plain"):
        return name_latex(e.name)

    def _print_Indexed(self, e):
        return indexed_latex(str(e.base), ",".join(self._print(i) for i in e.indices))

    def _print_KroneckerDelta(self, e, exp=None):
        a, b = (self._print(i) for i in e.args)
        return rf"\delta_{{{a}{b}}}"

    def _print_Plus(self, e):
        a, b = e.args
        left = self._print(a)
        if isinstance(b, Neg):
            return f"{left} - {self._wrap(b.args[0], _ADD)}"
        return f"{left} + {self._wrap(b, _NEG)}"

    def _print_Neg(self, e):
        return f"-{self._wrap(e.args[0], _NEG)}"

    def _print_Product(self, e):
        a, b = e.args
        left, right = self._wrap(a, _ADD if not isinstance(a, Neg) else _NEG), self._wrap(b, _NEG)
        if isinstance(b, sp.Number) or (left[-1:].isdigit() and right[:1].isdigit()):
            return rf"{left} \cdot {right}"
        return f"{left} {right}"

    def _print_Frac(self, e):
        a, b = e.args
        return rf"\frac{{{self._print(a)}}}{{{self._print(b)}}}"

    def _print_Pow(self, e, exp=None):
        base, power = e.args
        if power == sp.Rational(1, 2):
            return rf"\sqrt{{{self._print(base)}}}"
        inner = self._print(base)
        # e^{u} is a power already: (e^{u})^{2}, never e^{u}^{2}
        if _strength(base) < _ATOM or isinstance(base, Frac | Partial | Total | sp.exp):
            inner = rf"\left({inner}\right)"
        return f"{inner}^{{{self._print(power)}}}"

    def _derivative(self, e, d: str) -> str:
        f, v = e.args
        var = self._print(v)
        if isinstance(f, sp.Symbol | sp.Indexed):
            return rf"\frac{{{d} {self._print(f)}}}{{{d} {var}}}"
        return rf"\frac{{{d}}}{{{d} {var}}}\left({self._print(f)}\right)"

    def _print_Partial(self, e):
        return self._derivative(e, r"\partial")

    def _print_Total(self, e):
        return self._derivative(e, r"\mathrm{d}")

    def _print_Sum(self, e):
        f, (k, lo, hi) = e.function, e.limits[0]
        return rf"\sum_{{{self._print(k)}={self._print(lo)}}}^{{{self._print(hi)}}} " + (
            self._wrap(f, _ADD)
        )

    def _print_SumExcept(self, e):
        f, k, i = e.args
        return rf"\sum_{{{self._print(k)} \ne {self._print(i)}}} " + self._wrap(f, _ADD)


def side_latex(text: str, size: str = "n") -> str:
    """One side of a claim as LaTeX, as written."""
    return separate_names(ClaimPrinter().doprint(to_display(text, size)))


# A case's condition, as text (with its mathematics in $...$).
CASE_TEX = {
    "all": "",
    "all i": r"for every $i$",
    "all i, j": r"for every $i, j$",
    "i = j": r"for $i = j$",
    "i != j": r"for $i \ne j$",
}


def statement_latex(claim, size: str = "n") -> str:
    """A claim's statement: the ``latex`` its file writes, or else its sides
    printed with "=" between them.  The cases of a claim with cases stand side
    by side (``\\qquad``), each followed by its condition, which is how
    report.document_display sets equations one per line."""
    return claim.latex or sides_latex(claim, size)


def sides_latex(claim, size: str = "n") -> str:
    """A claim's sides as derive's printer writes them from their parse, "=" between
    them: what was checked, never the file's own LaTeX."""
    shown = []
    for case in claim.cases:
        text = " = ".join(side_latex(s, size) for s in case.sides)
        condition = CASE_TEX[case.label] if claim.kind == "cases" else ""
        shown.append(text + (rf" \quad \text{{{condition}}}" if condition else ""))
    return r", \qquad ".join(shown)


# A term longer than this many characters of LaTeX (about a line) that is a
# factor times a bracketed sum is broken inside its bracket too: unbroken, a
# side of gI-derived was scaled to half size.
LONG_TERM = 160


def terms(text: str, size: str = "n") -> list[str]:
    """A side's top-level terms as LaTeX, each with its sign ("x", "- y", "+ z"),
    for breaking a long side between terms; a long term c·(a + b) is broken
    between the terms of its bracket."""
    return [separate_names(t) for t in _term_lines(to_display(text, size), ClaimPrinter())]


def _term_lines(e, printer: ClaimPrinter) -> list[str]:
    parts = []
    while isinstance(e, Plus):
        parts.append(e.args[1])
        e = e.args[0]
    parts.append(e)
    out = []
    for k, t in enumerate(reversed(parts)):
        sign, body = ("- ", t.args[0]) if isinstance(t, Neg) else ("" if k == 0 else "+ ", t)
        printed = printer._wrap(body, _ADD if sign == "- " else _NEG) if sign else printer._print(t)
        if (
            len(printed) > LONG_TERM
            and isinstance(body, Product)
            and isinstance(body.args[1], Plus)
        ):
            head = printer._wrap(body.args[0], _ADD)
            inner = _term_lines(body.args[1], printer)
            inner[0] = rf"{sign}{head} \biggl({inner[0]}"
            inner[-1] = rf"{inner[-1]}\biggr)"
            out += inner
        else:
            out.append(sign + printed)
    return out
