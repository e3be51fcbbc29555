"""Emit verified formulas as NumPy (and fused numba) modules, as the documents declare.

Which claims become code, and as which helper of which public function, is
declared in each document's ``[emit]`` table (``emits.py``).  For each declared
formula:

1. the claim is verified (``verify.verify_document`` at small n, together with
   every claim it ``uses``); nothing is written if one fails;
2. the claim's last side is read with ``language.parse`` on the document's model
   at a symbolic n, so its sums stay ``Sum`` objects;
3. ``lower`` rewrites it for arrays: every node but the mean and root is expanded,
   x becomes mean + xc where the emit table names a mean, every ``Sum`` becomes a
   reduction over the axes the layout names (``sum_dy``, ``sum_dy_gamma_xc``: one
   product of per-element values each), and the root statistic becomes
   1/inverse (``invstd``);
4. ``collect`` splits the result into per-statistic coefficients times products of
   per-element values (or one value per statistic), exactly, and checks the split;
5. coefficients and the per-element expression are printed with SymPy's NumPy
   printer, re-spaced to the layout ``ruff format`` writes.

A module is one template of array plumbing per layout (``emits.LAYOUTS``) plus
these printed helpers.  The templates write two paths from the same helpers: NumPy
over blocks that stay in cache, and numba kernels that call the helpers compiled
by numba (one pass per channel or group, float64 accumulation).
"""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .checking import verify_document
from .claims import Document, load
from .claimtex import statement_latex
from .emits import EmitSpec, FormulaSpec
from .files import write_if_changed
from .language import CASES, N_SYMBOL, index_symbol, parse
from .model import Model
from .paths import DOCUMENTS, ROOT, TEMPLATES

LAYER_DOCUMENT = DOCUMENTS / "batchnorm_layer.toml"
SEED_DOCUMENT = DOCUMENTS / "bn_backward.toml"

# n checked before emitting: n = 1 (σ = sqrt(ε) for the layer) and the first
# sizes where every index case (i = j, i ≠ j, a third position) occurs.
VERIFY_NS = (1, 2, 3, 4)

# The helpers each template calls, by layout: a document set that leaves one out
# cannot be rendered (CodegenError), rather than failing when the module is imported.
REQUIRED = {
    "channels": ("_root_squared", "_y", "_dgamma", "_dbeta", "_dx", "_xhat_dx"),
    "trailing": ("_root_squared", "_y", "_dgamma", "_dx"),
    "groups": ("_root_squared", "_y", "_dgamma", "_dbeta", "_dx"),
}

# Formulas a template prints a further public function from when a document declares them:
# all of a group or none (batchnorm_double_backward needs its three outputs).
TOGETHER = {
    "channels": (
        ("_dx2", "_dgamma2", "_ddy"),
        ("_eval_y", "_eval_dgamma", "_eval_dbeta", "_eval_dx"),
    ),
    "trailing": (),
    "groups": (),
}


class CodegenError(RuntimeError):
    """A claim cannot be emitted: it fails, or it is not in a form with a kernel."""


# -- symbols of the emitted code ------------------------------------------------
N_VALUES = sp.Symbol("n", integer=True, positive=True)  # values per statistic


def inverse_symbol(emit: EmitSpec) -> sp.Symbol:
    return sp.Symbol(emit.inverse, positive=True)


def reduction_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def element_names(model: Model, emit: EmitSpec) -> tuple[str, ...]:
    """The per-element arrays, in the order reduction names list them: the model's
    vectors, with x last and written xc where x is centred."""
    rest = tuple(v for v in model.spec.vectors if v != "x")
    return (*rest, "xc" if emit.mean else "x")


def _element_of(atom, model: Model, emit: EmitSpec, xc: sp.IndexedBase) -> str | None:
    if not isinstance(atom, sp.Indexed):
        return None
    if atom.base == xc:
        return "xc"
    name = atom.base.name
    return name if name in model.spec.vectors and name in element_names(model, emit) else None


def _monomial_name(powers: dict[str, int], order) -> str:
    parts = []
    for name in order:
        p = powers.get(name, 0)
        if p:
            parts.append(name + ("" if p == 1 else "_sq" if p == 2 else f"_pow{p}"))
    return "_".join(parts)


def _monomial_code(powers: dict[str, int], order) -> str:
    factors = []
    for name in order:
        factors += [name] * powers.get(name, 0)
    return " * ".join(factors) if factors else "1.0"


@dataclass(frozen=True)
class Lowered:
    expr: sp.Expr  # over per-element symbols (plain Symbols named as elements) and reductions
    reductions: tuple[tuple[str, str], ...]  # (name, per-element product code), sorted


def lower(expr: sp.Expr, model: Model, emit: EmitSpec) -> Lowered:
    """A parsed side as an expression over per-element and per-statistic symbols."""
    order = element_names(model, emit)
    xc = sp.IndexedBase("xc", real=True)
    # every node but the mean and the root is expanded: other statistics (a sum the
    # claim names, r = 1/sigma) become reductions and powers of the inverse below
    expr = model.expand(expr, keep=frozenset(s for s in (emit.mean, emit.root) if s))
    x = model.families["x"]
    if emit.mean:
        mu = model.scalars[emit.mean]
        expr = expr.replace(
            lambda a: isinstance(a, sp.Indexed) and a.base == x,
            lambda a: mu + xc[a.indices[0]],
        )
    reductions: dict[str, str] = {}

    def lower_sum(s: sp.Sum) -> sp.Expr:
        (k, lo, hi), *more = s.limits
        if more or lo != 1 or hi != N_SYMBOL:
            raise CodegenError(f"only single sums over all n values become reductions, got {s}")
        out = sp.S.Zero
        for term in sp.Add.make_args(sp.expand(s.function)):
            outer, inner = term.as_independent(k, as_Add=False)
            powers: dict[str, int] = {}
            for base, p in inner.as_powers_dict().items():
                name = _element_of(base, model, emit, xc)
                if base == 1:
                    continue
                if name is None or base.indices != (k,) or not (p.is_Integer and p > 0):
                    raise CodegenError(f"no reduction kernel for the summand {inner} of {s}")
                powers[name] = powers.get(name, 0) + int(p)
            if not powers:
                out += outer * N_VALUES
                continue
            name = "sum_" + _monomial_name(powers, order)
            reductions[name] = _monomial_code(powers, order)
            out += outer * reduction_symbol(name)
        return out

    expr = expr.replace(lambda a: isinstance(a, sp.Sum), lower_sum)
    if emit.mean and expr.has(model.scalars[emit.mean]):
        raise CodegenError(f"the mean survives lowering in {expr}: write the side in x - mu")
    expr = expr.xreplace({model.scalars[emit.root]: 1 / inverse_symbol(emit), N_SYMBOL: N_VALUES})
    left = {s.name for s in expr.free_symbols} & set(model.nodes)
    if left:
        raise CodegenError(f"node(s) {', '.join(sorted(left))} survive lowering in {expr}")
    # per-element atoms at the claim's free index become plain symbols named as elements
    atoms = {}
    for a in expr.atoms(sp.Indexed):
        name = _element_of(a, model, emit, xc)
        if name is None or len(a.indices) != 1 or not a.indices[0].is_Symbol:
            raise CodegenError(f"{a} has no per-element array in the generated code")
        atoms[a] = sp.Symbol(name, real=True)
    expr = sp.expand(expr.xreplace(atoms))
    return Lowered(expr, tuple(sorted(reductions.items())))


@dataclass(frozen=True)
class Formula:
    spec: FormulaSpec
    document: Document
    side: str  # the claim text the formula comes from
    lowered: Lowered
    value: sp.Expr | None  # form "value": the per-statistic value
    coefficients: tuple[tuple[str, sp.Expr], ...]  # forms "terms", "factored"
    element: sp.Expr | None  # the per-element expression over coefficients and elements
    elements: tuple[str, ...]  # the element symbols the element expression reads

    @property
    def claim(self):
        return self.document.claim(self.spec.claim)

    @property
    def coefficient_args(self) -> tuple[str, ...]:
        exprs = [self.value] if self.value is not None else [e for _, e in self.coefficients]
        return tuple(sorted({s.name for e in exprs for s in e.free_symbols}))

    @property
    def element_args(self) -> tuple[str, ...]:
        return (*(name for name, _ in self.coefficients), *self.elements)


def collect(lowered: Lowered, spec: FormulaSpec, order) -> tuple:
    """Split a lowered side into per-statistic coefficients times per-element products,
    exactly: (value, coefficients, element expression, elements read)."""
    expr = lowered.expr
    elems = [sp.Symbol(name, real=True) for name in order]
    used = [e for e in elems if expr.has(e)]
    where = f"{spec.field} (claim {spec.claim!r})"
    if spec.form == "value":
        if used:
            raise CodegenError(f"{where}: expected one value per statistic, got {expr}")
        return sp.factor_terms(expr), (), None, ()
    if not used:
        raise CodegenError(f"{where}: no per-element term in {expr}; use form 'value'")
    poly = sp.Poly(expr, *used)
    # most factors first, then in element order: the upstream gradient leads
    terms = sorted(poly.terms(), key=lambda t: (-sum(t[0]), tuple(-p for p in t[0])))
    monomials = [sp.Mul(*(e**p for e, p in zip(used, m, strict=True))) for m, _ in terms]
    coeffs = [sp.factor(c) for _, c in terms]
    names = list(spec.coefficients)
    named: list[tuple[str, sp.Expr]] = []
    pieces = []
    if spec.form == "factored":
        lead = coeffs[0]
        if lead == 0:
            raise CodegenError(f"{where}: no leading term to factor out")
        coeffs = [sp.factor(sp.cancel(c / lead)) for c in coeffs]
        inverse_and_n = {s for s in expr.free_symbols if s.is_positive}
        for c in coeffs[1:]:
            # Dividing by the lead must leave only positive denominators, so that the
            # factored form is the same function everywhere (gamma = 0 included).
            if not sp.denom(c).free_symbols <= inverse_and_n:
                raise CodegenError(f"{where}: {c} divides by the factored-out {lead}")
        if not names:
            raise CodegenError(f"{where}: no name for the factored-out coefficient")
        named.append((names.pop(0), lead))
    for c, m in zip(coeffs, monomials, strict=True):
        if c.is_Number:
            pieces.append(c * m)
            continue
        if not names:
            raise CodegenError(f"{where}: more per-statistic coefficients than names ({c})")
        name = names.pop(0)
        named.append((name, c))
        pieces.append(sp.Symbol(name, real=True) * m)
    if names:
        raise CodegenError(f"{where}: unused coefficient name(s) {', '.join(names)}")
    body = sp.Add(*pieces, evaluate=False) if len(pieces) > 1 else pieces[0]
    element = body
    if spec.form == "factored":
        element = sp.Mul(sp.Symbol(named[0][0], real=True), body, evaluate=False)
    rebuilt = element.xreplace({sp.Symbol(k, real=True): v for k, v in named})
    if sp.simplify(rebuilt - expr) != 0:
        raise CodegenError(f"{where}: collected form differs from the claim")
    read = tuple(name for name in order if element.has(sp.Symbol(name, real=True)))
    return None, tuple(named), element, read


def build_formula(spec: FormulaSpec, document: Document) -> Formula:
    claim = document.claim(spec.claim)
    if len(claim.cases) != 1:
        raise CodegenError(f"claim {claim.id!r}: a claim with cases has no single formula")
    case = claim.cases[0]
    free, _ = CASES[case.label]
    model = document.model_for(N_SYMBOL)
    side = case.sides[-1]
    expr = parse(side, model, {name: index_symbol(name) for name in free})
    lowered = lower(expr, model, document.emit)
    value, coefficients, element, read = collect(lowered, spec, element_names(model, document.emit))
    return Formula(spec, document, side, lowered, value, coefficients, element, read)


def formulas(document: Document) -> dict[str, Formula]:
    """The document's declared formulas, by helper name (not verified: see render)."""
    if document.emit is None:
        raise CodegenError(f"{document.path}: no [emit] table")
    return {f.name: build_formula(f, document) for f in document.emit.formulas}


# -- verification before emitting -------------------------------------------------------
def _closure(document: Document, ids) -> list[str]:
    todo, seen = list(ids), set()
    while todo:
        cid = todo.pop()
        if cid not in seen:
            seen.add(cid)
            todo.extend(document.claim(cid).uses)
    return [c.id for c in document.claims if c.id in seen]


def verify_emitted(document: Document, ids, ns=VERIFY_NS, result=None) -> tuple[str, ...]:
    """Check that the claims in ids and every claim they use hold; raise CodegenError
    on a failure.  ``result``: the document's results.DocumentResult, when the
    verifier already ran on it at every n in ns; read instead of verifying again."""
    keep = _closure(document, ids)
    if result is not None and result.document == document and set(ns) <= set(result.ns):
        by_id = {c.claim.id: c for c in result.claims}
        claims = [by_id[c] for c in keep if c in by_id]
    else:
        sub = dataclasses.replace(document, claims=tuple(document.claim(c) for c in keep))
        claims = verify_document(sub, ns).claims
    checked = {c.claim.id for c in claims}
    bad = [c.claim.id for c in claims if not c.holds] + [c for c in keep if c not in checked]
    if bad:
        raise CodegenError(
            f"{document.path}: refusing to emit code, claim(s) {', '.join(bad)} do not hold"
        )
    return tuple(keep)


# -- printing ------------------------------------------------------------------------
class _Printer(NumPyPrinter):
    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _print_Mul(self, expr):
        """A power times other factors, b**k*rest, as b*(b**(k-1)*rest): one factor
        of b at a time, so that b**k alone (invstd**2 is 1e40 for a float32
        channel with sigma = 1e-20) never has to fit when the product does."""
        sign, body = ("-", -expr) if expr.could_extract_minus_sign() else ("", expr)
        factors = body.args if body.is_Mul else (body,)
        power = next((f for f in factors if f.is_Pow and f.exp.is_Integer and f.exp > 1), None)
        if power is None or body == power:
            return super()._print_Mul(expr)
        inner = f"{self._print(power.base)}*({self._print(body / power.base)})"
        return f"{sign}({inner})" if sign else inner


_PREC = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.Pow: 4}
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = 3


def _prec(node) -> int:
    if isinstance(node, ast.BinOp):
        return _PREC[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return _UNARY
    return 10


def _simple(node) -> bool:
    """ruff format's "simple" power operand: a name, number or attribute chain."""
    if isinstance(node, ast.UnaryOp):
        return _simple(node.operand)
    if isinstance(node, ast.Attribute):
        return _simple(node.value)
    return isinstance(node, ast.Name) or (
        isinstance(node, ast.Constant) and isinstance(node.value, int | float)
    )


def _emit(node) -> str:
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op not in _PREC:
            raise CodegenError(f"unexpected operator {op.__name__} in printed code")
        p = _PREC[op]
        left, right = _emit(node.left), _emit(node.right)
        left_parens = _prec(node.left) < p or (op is ast.Pow and _prec(node.left) <= p)
        right_parens = _prec(node.right) < p or (op is not ast.Pow and _prec(node.right) == p)
        left = f"({left})" if left_parens else left
        right = f"({right})" if right_parens else right
        hug = not (left_parens or right_parens) and _simple(node.left) and _simple(node.right)
        if op is ast.Pow and hug:
            return f"{left}**{right}"
        return f"{left} {_OPS[op]} {right}"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _emit(node.operand)
        # ruff format parenthesises a power under a unary minus: -(a**2)
        parens = _prec(node.operand) < _UNARY or isinstance(node.operand, ast.BinOp)
        return f"-({inner})" if parens else f"-{inner}"
    if isinstance(node, ast.Call):
        args = ", ".join(_emit(a) for a in node.args)
        return f"{_emit(node.func)}({args})"
    if isinstance(node, ast.Attribute):
        return f"{_emit(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return repr(node.value)
    raise CodegenError(f"unexpected {type(node).__name__} in printed code")


def python_code(expr: sp.Expr, printer=None) -> str:
    """SymPy's NumPy printing of expr, laid out the way ``ruff format`` writes it."""
    printed = (printer or _Printer)({"fully_qualified_modules": False}).doprint(expr)
    tree = ast.parse(printed, mode="eval")
    code = _emit(tree.body)
    if ast.dump(ast.parse(code, mode="eval")) != ast.dump(tree):
        raise CodegenError(f"re-spacing changed the printed expression {printed!r}")
    return code


RUFF_WIDTH = 100  # ruff's line length: the generated modules must pass ruff format --check


def call(head: str, args, tail: str = "", indent: int = 0) -> str:
    """head(args)tail laid out as ruff format writes it at this indent: on one line, or the
    arguments on one line of their own, or one argument a line with a trailing comma."""
    args = list(args)
    joined = ", ".join(args)
    if indent + len(f"{head}({joined}){tail}") <= RUFF_WIDTH:
        return f"{head}({joined}){tail}"
    pad, inner = " " * indent, " " * (indent + 4)
    if indent + 4 + len(joined) <= RUFF_WIDTH:
        return f"{head}(\n{inner}{joined}\n{pad}){tail}"
    return f"{head}(\n" + "".join(f"{inner}{a},\n" for a in args) + f"{pad}){tail}"


def statements(target: str, expr: sp.Expr, indent: int) -> tuple[list[str], str]:
    """The lines before ``target = code`` and code: one line where it fits under ruff's
    width, else the longest sum inside expr is accumulated one term a line into
    ``target_terms`` first (the same expression, evaluated in the printed term order)."""
    code = python_code(expr)
    if indent + len(f"{target} = {code}") <= RUFF_WIDTH:
        return [], code
    sums = [a for a in sp.preorder_traversal(expr) if a.is_Add]
    if not sums:
        raise CodegenError(f"{target} = {code} is too long for one line and has no sum")
    total = max(sums, key=lambda a: len(python_code(a)))
    name = f"{target}_terms"
    symbol = sp.Symbol(name, real=True)
    outer = python_code(expr.xreplace({total: symbol}))
    terms = _Printer({"fully_qualified_modules": False})._as_ordered_terms(total)
    lines = [f"{name} = {python_code(terms[0])}"]
    for term in terms[1:]:
        sign, body = ("-", -term) if term.could_extract_minus_sign() else ("+", term)
        lines.append(f"{name} = {name} {sign} {_operand(body)}")
    if sp.expand(expr.xreplace({total: sp.Add(*terms)}) - expr) != 0:
        raise CodegenError(f"splitting {target} changed it")
    for line in [*lines, f"{target} = {outer}"]:
        if indent + len(line) > RUFF_WIDTH:
            raise CodegenError(f"{line!r} is too long for one line")
    return lines, outer


def _operand(term: sp.Expr) -> str:
    """term printed as the right operand of + or -: parenthesised if it is itself a sum."""
    code = python_code(term)
    return f"({code})" if term.is_Add else code


# -- rendering -------------------------------------------------------------------------
def _relpath(path: str) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return p.name


LINE_WIDTH = 96  # under ruff's 100, so wrapped text never trips E501


def wrap(text: str, indent: int = 0, prefix: str = "") -> str:
    """text wrapped to LINE_WIDTH; continuation lines get indent spaces and prefix."""
    lines = []
    for para in text.strip().splitlines():
        lines += textwrap.wrap(
            para,
            width=LINE_WIDTH - indent - len(prefix),
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
    return ("\n" + " " * indent + prefix).join(lines)


def shipped_emitters() -> list[Document]:
    """The shipped documents with an [emit] table, in file-name order."""
    docs = [load(p) for p in sorted(DOCUMENTS.glob("*.toml"))]
    return [d for d in docs if d.emit is not None]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["wrap"] = wrap
    env.globals["call"] = call
    return env


def _helper_context(f: Formula) -> dict:
    # the helpers' bodies are indented by 4; a long value or coefficient becomes lines
    value = statements("value", f.value, 4) if f.value is not None else ([], "")
    coefficients = {k: statements(k, e, 4) for k, e in f.coefficients}
    return {
        "name": f.spec.name,
        "doc": f.spec.doc,
        "form": f.spec.form,
        "function": f.spec.function,
        "document": _relpath(f.document.path),
        "claim": f.claim.id,
        "title": f.claim.title,
        "side": f.side,
        "latex": statement_latex(f.claim, f.document.size),
        "inverse": f.document.emit.inverse,
        "centred": bool(f.document.emit.mean),
        "args": f.coefficient_args,
        "value": value[1],
        "coefficients": [(k, code) for k, (_, code) in coefficients.items()],
        "prelude": {"value": value[0], **{k: lines for k, (lines, _) in coefficients.items()}},
        "element_args": f.element_args,
        "elements": f.elements,
        "element": python_code(f.element) if f.element is not None else "",
        "reductions": [
            {"name": name, "code": code}
            for name, code in f.lowered.reductions
            if name in f.coefficient_args
        ],
        "pretty": (
            [f"value = {sp.sstr(f.value)}"]
            if f.value is not None
            else [f"{k} = {sp.sstr(e)}" for k, e in f.coefficients]
            + [f"element = {sp.sstr(f.element)}"]
        ),
    }


def _function_reductions(helpers: dict[str, dict]) -> dict[str, list[dict]]:
    """Per public function, the reductions its helpers read (one pass computes them all)."""
    out: dict[str, dict[str, dict]] = {}
    for h in helpers.values():
        for r in h["reductions"]:
            out.setdefault(h["function"], {})[r["name"]] = r
    return {f: [rs[k] for k in sorted(rs)] for f, rs in out.items()}


def _function_params(helpers: dict[str, dict]) -> dict[str, list[str]]:
    """Per public function, the per-statistic inputs its helpers take (gamma, invstd, ...):
    the arguments that are neither a reduction nor the count n."""
    out: dict[str, set[str]] = {}
    for h in helpers.values():
        sums = {r["name"] for r in h["reductions"]}
        out.setdefault(h["function"], set()).update(
            a for a in h["args"] if a not in sums and a != N_VALUES.name
        )
    return {f: sorted(names) for f, names in out.items()}


def _function_elements(helpers: dict[str, dict]) -> dict[str, list[str]]:
    """Per public function, the per-element values its helpers read, x (or xc) last."""
    out: dict[str, list[str]] = {}
    for h in helpers.values():
        names = out.setdefault(h["function"], [])
        names += [e for e in h["elements"] if e not in names]
    return {f: sorted(names, key=lambda e: e in ("x", "xc")) for f, names in out.items()}


def render_modules(documents: list[Document] | None = None, results=None) -> dict[str, str]:
    """The generated modules' text by module name; every emitted claim is verified
    first, or read from ``results`` (document path -> results.DocumentResult) where
    the verifier has already checked it (verify_emitted)."""
    results = results or {}
    documents = documents if documents is not None else shipped_emitters()
    by_module: dict[str, list[Document]] = {}
    for doc in documents:
        if doc.emit is None:
            raise CodegenError(f"{doc.path}: no [emit] table")
        by_module.setdefault(doc.emit.module, []).append(doc)
    from . import codegen_rows  # it builds on this module's printer and verification

    return {
        name: (
            render_module(docs, results)
            if docs[0].emit.layout in REQUIRED
            else codegen_rows.render_module(docs, results)
        )
        for name, docs in sorted(by_module.items())
    }


def render_module(documents: list[Document], results=None) -> str:
    """One module's text from the documents that emit into it (``results`` as in
    render_modules)."""
    results = results or {}
    layouts = {d.emit.layout for d in documents}
    if len(layouts) != 1:
        paths = ", ".join(d.path for d in documents)
        raise CodegenError(f"{paths}: one module, several layouts {sorted(layouts)}")
    (layout,) = layouts
    module = documents[0].emit.module
    helpers: dict[str, dict] = {}
    sources = []
    for doc in documents:
        emitted = sorted({f.claim for f in doc.emit.formulas})
        verified = verify_emitted(doc, emitted, result=results.get(doc.path))
        for name, f in formulas(doc).items():
            if name in helpers:
                raise CodegenError(
                    f"{doc.path}: formula {name} is also declared by another document"
                )
            helpers[name] = _helper_context(f)
        sources.append({"path": _relpath(doc.path), "emitted": emitted, "verified": list(verified)})
    missing = [name for name in REQUIRED[layout] if name not in helpers]
    if missing:
        raise CodegenError(
            f"module {module}: layout {layout!r} needs formula(s) {', '.join(missing)}"
        )
    for group in TOGETHER[layout]:
        present = [name for name in group if name in helpers]
        if present and len(present) != len(group):
            absent = [name for name in group if name not in helpers]
            raise CodegenError(
                f"module {module}: formula(s) {', '.join(present)} need {', '.join(absent)}"
            )
    functions: dict[str, list[str]] = {}
    for h in helpers.values():
        functions.setdefault(h["function"], [])
        if h["claim"] not in functions[h["function"]]:
            functions[h["function"]].append(h["claim"])
    primary = documents[0].emit
    return (
        _environment()
        .get_template(primary.template)
        .render(
            module=module,
            layout=layout,
            centred=bool(primary.mean),
            inverse=primary.inverse,
            sources=sources,
            helpers=helpers,
            helper_list=list(helpers.values()),
            functions=functions,
            function_reductions=_function_reductions(helpers),
            function_params=_function_params(helpers),
            function_elements=_function_elements(helpers),
            verify_ns=", ".join(str(n) for n in VERIFY_NS),
            source_line="generated by derive from "
            + ", ".join(f"{s['path']} ({', '.join(s['emitted'])})" for s in sources)
            + "; do not edit",
        )
    )


def write_generated(outdir: Path, texts: dict[str, str] | None = None) -> list[Path]:
    """Write ``outdir/<module>.py`` for every module the shipped documents emit (and
    ``__init__.py``), rendered unless ``texts`` gives them; return the paths written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    texts = render_modules() if texts is None else texts
    init_text = '"""Modules generated by derive from verified claim files; do not edit."""\n'
    written = []
    for path, content in [
        *((outdir / f"{name}.py", text) for name, text in texts.items()),
        (outdir / "__init__.py", init_text),
    ]:
        write_if_changed(path, content)
        written.append(path)
    return written
