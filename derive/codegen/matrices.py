"""Emit the modules of models with several sizes: the layout "matrices" (attention).

For each declared formula:

1. the claim is verified with every claim it uses, on the document's grid of sizes
   (``verification.verify_emitted``);
2. its last side is parsed at symbolic sizes, so sums stay ``Sum`` objects and nodes
   stay atoms (P[i, j], S[i, k]);
3. the values of formulas declared before it are read by name where they occur
   (``reuse``: dS = P ∘ (dP − D) reads the arrays dp and drow rather than recomputing
   them), an exact rewrite, since each name holds that formula's value;
4. the side is lowered to array code by the rules of ``ArrayLowering``: an array of
   indices (x, y) is a (..., X, Y) array, the sum over k of factors in (x, k) times
   factors in (k, y) a matrix product (BLAS), any other sum a reduction over its last
   axis, and everything else elementwise with broadcasting; SymPy's NumPy printer
   prints the elementwise parts.

The template (``emits.LAYOUTS``) calls the helpers on blocks of keys or queries, each
with the arguments of its contract (``REQUIRED``).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import Counter
from dataclasses import dataclass

import sympy as sp

from ..claims import Document
from ..emits import FormulaSpec
from ..language import CASES, N_SYMBOL, index_symbol, parse
from .common import CodegenError
from .rendering import _environment, _relpath, claim_context, functions_of
from .rows import code as printed
from .verification import verify_emitted

# The helpers the attention template calls, with the arguments it passes them.
REQUIRED = {
    "matrices": {
        "_scores": ("q", "k", "scale"),
        "_lse": ("s", "mask", "shift"),
        "_probs": ("s", "lse", "mask"),
        "_output": ("p", "v"),
        "_dv": ("p", "do"),
        "_dp": ("do", "v"),
        "_drow": ("do", "o"),
        "_ds": ("p", "dp", "drow"),
        "_dq": ("ds", "k", "scale"),
        "_dk": ("ds", "q", "scale"),
    }
}
_HOLDER = re.compile(r"\b_h(\d+)\b")


def _primary(code: str) -> bool:
    """code is a name, call, subscript or attribute: it needs no parentheses."""
    node = ast.parse(code, mode="eval").body
    return isinstance(node, ast.Name | ast.Call | ast.Subscript | ast.Attribute)


def _paren(code: str) -> str:
    return code if _primary(code) else f"({code})"


def _align(code: str, have: tuple, want: tuple) -> str:
    """An array over the indices have, as one over want (broadcastable): a transpose
    or new axes, batch axes (...) first."""
    if have == want:
        return code
    if len(have) == 2 and have == want[::-1]:
        return f"_mT({code})"
    if len(have) == 1 and len(want) == 2:
        return _paren(code) + ("[..., :, None]" if want[0] == have[0] else "[..., None, :]")
    if not have:
        return code
    raise CodegenError(f"cannot lay out an array over {have} as one over {want}")


def _replace(expr, pattern, new):
    """expr with every occurrence of pattern replaced by new, also as factors of a
    larger product (P*(dP - D)*K holds P*(dP - D))."""
    if expr == pattern:
        return new
    if not expr.args:
        return expr
    if expr.is_Mul and pattern.is_Mul:
        have, want = Counter(expr.args), Counter(pattern.args)
        if all(have[a] >= c for a, c in want.items()):
            rest = have - want
            return _replace(sp.Mul(new, *rest.elements()), pattern, new)
    if isinstance(expr, sp.Sum):
        return sp.Sum(_replace(expr.function, pattern, new), *expr.limits)
    return expr.func(*(_replace(a, pattern, new) for a in expr.args))


class ArrayLowering:
    """A side over indexed arrays and sums, as NumPy code over (..., size, size) arrays."""

    def __init__(self, model, names: dict[str, str]):
        self.names = names
        self.sizes = {model.size_of(n) for n in model.spec.size_names}

    def indices(self, e) -> set:
        return {s for s in e.free_symbols if s.is_integer and s not in self.sizes}

    def _name(self, name: str) -> str:
        if name not in self.names:
            raise CodegenError(f"{name} has no name in the generated code (emit.names)")
        return self.names[name]

    def lower(self, e, want: tuple) -> str:
        """e as an array over the indices want (a subset of them may be broadcast)."""
        if not self.indices(e) <= set(want):
            raise CodegenError(f"{e} has indices outside {want}")
        if isinstance(e, sp.Indexed):
            if len(set(e.indices)) != len(e.indices) or not all(
                i in self.indices(e) for i in e.indices
            ):
                raise CodegenError(f"{e}: an array is lowered over distinct free indices")
            return _align(self._name(e.base.name), tuple(e.indices), tuple(want))
        if isinstance(e, sp.Sum):
            code, axes = self._sum(e, want)
            return _align(code, axes, tuple(w for w in want if w in axes))
        return self._elementwise(e, want)

    def _elementwise(self, e, want) -> str:
        held: dict[str, str] = {}

        def hold(a):
            if isinstance(a, sp.Indexed | sp.Sum):
                own = tuple(w for w in want if w in self.indices(a))
                code = _align(self.lower(a, own), own, tuple(want)) if own else self.lower(a, ())
                symbol = sp.Symbol(f"_h{len(held)}", real=True)
                held[symbol.name] = code
                return symbol
            if isinstance(a, sp.Symbol) and not a.is_integer:
                return sp.Symbol(self._name(a.name), real=True)
            if not a.args:
                return a
            return a.func(*(hold(b) for b in a.args))

        text = printed(hold(e))
        return _HOLDER.sub(lambda m: _paren(held[m.group(0)]), text)

    def _sum(self, e, want) -> tuple[str, tuple]:
        """(code, its indices) of a sum: a matrix product where the summand splits into
        factors over (x, k) and over (k, y), else a reduction over the last axis."""
        if len(e.limits) > 1:
            inner = sp.Sum(e.function, *e.limits[:-1])
            e = sp.Sum(inner, e.limits[-1])
        ((k, lo, hi),) = e.limits
        if lo != 1 or hi not in self.sizes:
            raise CodegenError(f"{e}: a sum runs over 1..size")
        factors = sp.Mul.make_args(e.function)
        outside = [f for f in factors if k not in f.free_symbols]
        inside = [f for f in factors if k in f.free_symbols]
        own = self.indices(sp.Mul(*inside)) - {k}
        axes = tuple(w for w in want if w in own)
        if len(axes) == 2:
            x, y = axes
            left = [f for f in inside if self.indices(f) <= {x, k}]
            right = [f for f in inside if f not in left]
            if not left or not right or not all(self.indices(f) <= {y, k} for f in right):
                raise CodegenError(f"{e}: not a matrix product")
            a = self.lower(sp.Mul(*left), (x, k))
            b = self.lower(sp.Mul(*right), (k, y))
            code = f"{_paren(a)} @ {_paren(b)}"
        elif len(axes) < 2:
            code = _paren(self.lower(sp.Mul(*inside), (*axes, k))) + ".sum(-1)"
        else:
            raise CodegenError(f"{e}: a sum over more than two free indices")
        if not outside:
            return code, axes
        every = tuple(w for w in want if w in self.indices(e))
        symbol = sp.Symbol("_inner", real=True)
        names = {**self.names, "_inner": _paren(_align(code, axes, every))}
        rest = ArrayLowering.__new__(ArrayLowering)
        rest.names, rest.sizes = names, self.sizes
        return rest._elementwise(sp.Mul(*outside) * symbol, every), every


@dataclass(frozen=True)
class MatrixFormula:
    spec: FormulaSpec
    document: Document
    side: str
    value: sp.Expr  # the side after reuse, over model names
    free: tuple  # the claim's free indices, in order: the axes of the result
    args: tuple[str, ...]
    code: str

    @property
    def claim(self):
        return self.document.claim(self.spec.claim)


def parsed_side(spec: FormulaSpec, document: Document):
    """(side text, its expression at symbolic sizes, the free indices in order)."""
    claim = document.claim(spec.claim)
    if len(claim.cases) != 1:
        raise CodegenError(f"claim {claim.id!r}: a claim with cases has no single formula")
    (case,) = claim.cases
    free, relation = CASES[case.label]
    if relation is not None:
        raise CodegenError(f"claim {claim.id!r}: expected 'all i' or 'all i, j'")
    model = document.model_for(N_SYMBOL)
    indices = tuple(index_symbol(v) for v in free)
    side = case.sides[-1]
    return side, parse(side, model, dict(zip(free, indices, strict=True))), indices


def build(spec: FormulaSpec, document: Document, before: dict[str, MatrixFormula]):
    side, expr, free = parsed_side(spec, document)
    names = dict(document.emit.names)
    # the largest first, so that dS is read before the dP inside it
    for f in sorted(before.values(), key=lambda f: -sp.count_ops(f.value)):
        expr = _reuse(expr, f, names)
    model = document.model_for(N_SYMBOL)
    code = ArrayLowering(model, names).lower(expr, free)
    args = tuple(dict.fromkeys(re.findall(r"\b[A-Za-z_]\w*\b(?!\()", code)))
    args = tuple(a for a in args if a in set(names.values()) | {n.lstrip("_") for n in before})
    return MatrixFormula(spec, document, side, expr, free, args, code)


def _reuse(expr, f: MatrixFormula, names: dict) -> sp.Expr:
    """expr with f's value replaced by f's array wherever it occurs, at any indices."""
    base = sp.IndexedBase(f.spec.name.lstrip("_"))
    names[base.name] = base.name
    present = sorted(
        {i for a in expr.atoms(sp.Indexed) for i in a.indices if isinstance(i, sp.Symbol)},
        key=str,
    )
    for combo in itertools.permutations(present, len(f.free)):
        at = dict(zip(f.free, combo, strict=True))
        pattern = f.value.xreplace(at)
        if pattern.free_symbols & set(combo) != set(combo):
            continue
        expr = _replace(expr, pattern, base[combo] if combo else base)
    return expr


def helper_context(f: MatrixFormula) -> dict:
    return {
        **claim_context(f),
        "args": f.args,
        "code": f.code,
        "pretty": sp.sstr(f.value),
        "axes": ", ".join(str(i) for i in f.free),
    }


def _check_contract(document: Document, layout: str, helpers: dict[str, MatrixFormula]):
    """Refuse a module without every helper its template calls, or whose helpers read
    other arrays than the template passes them."""
    table = REQUIRED[layout]
    where = _relpath(document.path)
    missing = [name for name in table if name not in helpers]
    if missing:
        raise CodegenError(f"{where}: layout {layout!r} needs formula(s) {', '.join(missing)}")
    for name, f in helpers.items():
        want = table.get(name)
        if want is None:
            raise CodegenError(f"{where}: the {layout!r} template has no formula {name}")
        if set(f.args) != set(want):
            raise CodegenError(
                f"{where}: formula {name} reads ({', '.join(f.args)}); the {layout!r}"
                f" template passes ({', '.join(want)}): check emit.names"
            )


def render_module(documents: list[Document], results=None) -> str:
    """The module of one document of layout "matrices" (``results`` as in
    codegen.render_modules)."""
    results = results or {}
    if len(documents) != 1:
        raise CodegenError("a module of layout 'matrices' is emitted from one document")
    (doc,) = documents
    layout = doc.emit.layout
    emitted = sorted({f.claim for f in doc.emit.formulas})
    points = doc.points()
    verified = verify_emitted(doc, emitted, ns=points, result=results.get(doc.path))
    built: dict[str, MatrixFormula] = {}
    for spec in doc.emit.formulas:
        if spec.name in built:
            raise CodegenError(f"{doc.path}: formula {spec.name} is declared twice")
        built[spec.name] = build(spec, doc, built)
    _check_contract(doc, layout, built)
    helpers = {}
    for name, f in built.items():
        h = helper_context(f)
        h["args"] = REQUIRED[layout][name]
        helpers[name] = h
    functions = functions_of(helpers)
    source = {"path": _relpath(doc.path), "emitted": emitted, "verified": list(verified)}
    sizes = ", ".join(doc.size_names)
    values = sorted({v for p in points for _, v in p.values})
    return (
        _environment()
        .get_template(doc.emit.template)
        .render(
            module=doc.emit.module,
            source=source,
            helpers=helpers,
            functions=functions,
            grid=f"{sizes} = {min(values)}..{max(values)} each",
            source_line=f"generated by derive from {source['path']}"
            f" ({', '.join(emitted)}); do not edit",
        )
    )
