"""Emit the verified batch-norm formulas as a vectorized NumPy module.

The pipeline, for each formula the module needs:

1. the claim is verified (``verify.verify_document`` at small n, together with
   every claim it ``uses``); nothing is written if one fails;
2. the claim's last side is read with ``language.parse`` on a model with a
   symbolic n, so its sums stay ``Sum`` objects;
3. ``lower`` rewrites it for arrays: x is split into μ + xc (xc = x − μ, the
   centred input), every ``Sum`` over the batch becomes a per-channel
   reduction symbol (``sum_dy``, ``sum_dy_xc``, ...), σ becomes 1/``invstd``;
4. the result, affine in the per-element symbols, is collected into
   ``a*u + b*xc + c`` with per-channel coefficients a, b, c, which are printed
   with SymPy's NumPy printer and re-spaced to the layout ``ruff format``
   writes.

The template ``templates/module.py.j2`` holds the array plumbing (shape
checks, one pass per reduction, the fused in-place elementwise update); the
arithmetic in it comes only from the printed coefficients.
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

from .claims import Claim, Document, load
from .files import write_if_changed
from .language import CASES, N_SYMBOL, index_symbol, parse
from .model import Model
from .verify import verify_document

PACKAGE = Path(__file__).parent
DOCUMENTS = PACKAGE / "documents"
TEMPLATES = PACKAGE / "templates"
LAYER_DOCUMENT = DOCUMENTS / "batchnorm_layer.toml"
SEED_DOCUMENT = DOCUMENTS / "bn_backward.toml"
MODULE_NAME = "batchnorm.py"

# n checked before emitting: n = 1 (σ = sqrt(ε) for the layer) and the first
# sizes where every index case (i = j, i ≠ j, a third position) occurs.
VERIFY_NS = (1, 2, 3, 4)


class CodegenError(RuntimeError):
    """A claim cannot be emitted: it fails, or it is not in a form with a kernel."""


# -- symbols of the emitted code ------------------------------------------------
# Per element (arrays shaped like x): the upstream gradient and the centred input.
XC = sp.IndexedBase("xc", real=True)
# Per channel (shape (C,)) and scalars.
INVSTD = sp.Symbol("invstd", positive=True)
N_VALUES = sp.Symbol("n", integer=True, positive=True)


@dataclass(frozen=True)
class Emit:
    """One formula of the module: which claim it comes from, which function uses it."""

    name: str  # the private helper's name in the generated module
    document: str  # "layer" or "seed"
    claim: str  # claim id; its last side is emitted
    upstream: str  # "dy" or "g": the per-element upstream symbol
    # ("value",): a per-channel value; ("b", "c"): b*xc + c; ("a", "b", "c"): a*u + b*xc + c;
    # ("a", "k", "m"): a*(u + k*xc + m), the same with a factored out (one multiply fewer)
    outputs: tuple[str, ...]
    doc: str  # one line: what the helper returns


EMITS = (
    Emit("_sigma_squared", "layer", "variance", "dy", ("value",), "σ² = var + ε per channel"),
    Emit("_y_coefficients", "layer", "forward", "dy", ("b", "c"), "y = b*xc + c per channel"),
    Emit("_dgamma", "layer", "dgamma", "dy", ("value",), "∂L/∂γ per channel"),
    Emit("_dbeta", "layer", "dbeta", "dy", ("value",), "∂L/∂β per channel"),
    Emit(
        "_dx_coefficients",
        "layer",
        "dx-kernel",
        "dy",
        ("a", "k", "m"),
        "dx = a*(dy + k*xc + m) per channel",
    ),
    Emit(
        "_xhat_dx_coefficients",
        "seed",
        "closed-form",
        "g",
        ("a", "k", "m"),
        "dx = a*(g + k*xc + m) per channel",
    ),
)


# -- lowering: a claim side to per-channel reductions ---------------------------------
def reduction_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _reduction_name(factor: sp.Expr, k: sp.Symbol, upstream: sp.IndexedBase) -> str | None:
    """The reduction a summand stands for: Σ_k dy_k -> "sum_dy", Σ_k dy_k xc_k -> ..."""
    u, c = upstream[k], XC[k]
    table = {
        sp.S.One: "n",
        u: f"sum_{upstream.name}",
        c: "sum_xc",
        u * c: f"sum_{upstream.name}_xc",
        c**2: "sum_xc_sq",
        u**2: f"sum_{upstream.name}_sq",
    }
    for pattern, name in table.items():
        if sp.expand(factor - pattern) == 0:
            return name
    return None


def _lower_sum(s: sp.Sum, upstream: sp.IndexedBase) -> sp.Expr:
    (k, lo, hi), *more = s.limits
    if more or lo != 1 or hi != N_SYMBOL:
        raise CodegenError(f"only single sums over the batch become reductions, got {s}")
    out = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(s.function)):
        outer, inner = term.as_independent(k, as_Add=False)
        name = _reduction_name(inner, k, upstream)
        if name is None:
            raise CodegenError(f"no reduction kernel for the summand {inner} of {s}")
        out += outer * (N_VALUES if name == "n" else reduction_symbol(name))
    return out


def lower(expr: sp.Expr, model: Model, upstream: sp.IndexedBase) -> sp.Expr:
    """A parsed side as an expression over per-element xc[i], u[i] and per-channel symbols."""
    x, mu, sigma = model.families["x"], model.scalars["mu"], model.scalars["sigma"]
    expr = model.graph_form(expr)
    expr = expr.replace(
        lambda a: isinstance(a, sp.Indexed) and a.base == x,
        lambda a: mu + XC[a.indices[0]],
    )
    expr = expr.replace(lambda a: isinstance(a, sp.Sum), lambda s: _lower_sum(s, upstream))
    if expr.has(mu):
        raise CodegenError(f"the mean survives lowering in {expr}: write the side in x - mu")
    expr = expr.xreplace({sigma: 1 / INVSTD, N_SYMBOL: N_VALUES})
    return sp.expand(expr)


@dataclass(frozen=True)
class Formula:
    emit: Emit
    claim: Claim
    document: Document
    side: str  # the claim text the formula comes from
    lowered: sp.Expr
    parts: tuple[tuple[str, sp.Expr], ...]  # ("a", expr), ... or ("value", expr)

    @property
    def arguments(self) -> tuple[str, ...]:
        names = set()
        for _, e in self.parts:
            names |= {s.name for s in e.free_symbols}
        return tuple(sorted(names))


def element_symbols(upstream: sp.IndexedBase) -> dict[str, sp.Expr]:
    i = index_symbol("i")
    return {"a": upstream[i], "b": XC[i]}


def collect(lowered: sp.Expr, emit: Emit, upstream: sp.IndexedBase) -> tuple:
    """Split a lowered side into per-channel coefficients, exactly."""
    elem = element_symbols(upstream)
    if emit.outputs == ("value",):
        if any(lowered.has(e) for e in elem.values()):
            raise CodegenError(f"claim {emit.claim!r}: expected a per-channel value, got {lowered}")
        return (("value", sp.factor_terms(lowered)),)
    gens = [elem[k] for k in ("a", "b")]
    poly = sp.Poly(lowered, *gens)
    if poly.total_degree() > 1:
        raise CodegenError(f"claim {emit.claim!r}: not affine in {gens}: {lowered}")
    coeffs = {
        "a": poly.coeff_monomial(gens[0]),
        "b": poly.coeff_monomial(gens[1]),
        "c": poly.coeff_monomial(1),
    }
    if emit.outputs == ("a", "k", "m"):
        if coeffs["a"] == 0:
            raise CodegenError(f"claim {emit.claim!r}: no {gens[0]} term to factor out")
        coeffs["k"] = sp.cancel(coeffs["b"] / coeffs["a"])
        coeffs["m"] = sp.cancel(coeffs["c"] / coeffs["a"])
        for key in ("k", "m"):
            # Dividing by a must leave only positive denominators, so that the factored
            # form is the same function everywhere (gamma = 0 included).
            if not sp.denom(coeffs[key]).free_symbols <= {INVSTD, N_VALUES}:
                raise CodegenError(f"claim {emit.claim!r}: {key} = {coeffs[key]} divides by a")
        rebuilt = coeffs["a"] * (gens[0] + coeffs["k"] * gens[1] + coeffs["m"])
    else:
        for key in set(coeffs) - set(emit.outputs):
            if coeffs[key] != 0:
                raise CodegenError(f"claim {emit.claim!r}: unexpected term {key} = {coeffs[key]}")
        rebuilt = sum((coeffs[k] * elem.get(k, 1) for k in emit.outputs), sp.S.Zero)
    if sp.simplify(rebuilt - lowered) != 0:
        raise CodegenError(f"claim {emit.claim!r}: collected form differs from the claim")
    return tuple((key, sp.factor(coeffs[key])) for key in emit.outputs)


def build_formula(emit: Emit, document: Document) -> Formula:
    claim = document.claim(emit.claim)
    if len(claim.cases) != 1:
        raise CodegenError(f"claim {claim.id!r}: a claim with cases has no single formula")
    case = claim.cases[0]
    free, _ = CASES[case.label]
    model = document.model_for(N_SYMBOL)
    side = case.sides[-1]
    expr = parse(side, model, {name: index_symbol(name) for name in free})
    upstream = model.families[emit.upstream]
    lowered = lower(expr, model, upstream)
    return Formula(emit, claim, document, side, lowered, collect(lowered, emit, upstream))


# -- verification before emitting -------------------------------------------------------
def _closure(document: Document, ids) -> list[str]:
    todo, seen = list(ids), set()
    while todo:
        cid = todo.pop()
        if cid not in seen:
            seen.add(cid)
            todo.extend(document.claim(cid).uses)
    return [c.id for c in document.claims if c.id in seen]


def verify_emitted(document: Document, ids, ns=VERIFY_NS) -> tuple[str, ...]:
    """Verify the claims in ids and every claim they use; raise CodegenError on a failure."""
    keep = _closure(document, ids)
    sub = dataclasses.replace(document, claims=tuple(document.claim(c) for c in keep))
    result = verify_document(sub, ns)
    bad = [c.claim.id for c in result.claims if not c.holds]
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


def python_code(expr: sp.Expr) -> str:
    """SymPy's NumPy printing of expr, laid out the way ``ruff format`` writes it."""
    printed = _Printer({"fully_qualified_modules": False}).doprint(expr)
    tree = ast.parse(printed, mode="eval")
    code = _emit(tree.body)
    if ast.dump(ast.parse(code, mode="eval")) != ast.dump(tree):
        raise CodegenError(f"re-spacing changed the printed expression {printed!r}")
    return code


# -- rendering -------------------------------------------------------------------------
def _relpath(path: str) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(PACKAGE.parent).as_posix()
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


def formulas(layer: Document, seed: Document) -> dict[str, Formula]:
    docs = {"layer": layer, "seed": seed}
    return {e.name: build_formula(e, docs[e.document]) for e in EMITS}


def render_module(layer: Document | None = None, seed: Document | None = None) -> str:
    """The generated module's text; verifies every claim it emits from first."""
    layer = layer if layer is not None else load(LAYER_DOCUMENT)
    seed = seed if seed is not None else load(SEED_DOCUMENT)
    docs = {"layer": layer, "seed": seed}
    verified = {
        key: verify_emitted(doc, sorted({e.claim for e in EMITS if e.document == key}))
        for key, doc in docs.items()
    }
    built = formulas(layer, seed)
    helpers = []
    for emit in EMITS:
        f = built[emit.name]
        helpers.append(
            {
                "name": emit.name,
                "doc": emit.doc,
                "document": _relpath(f.document.path),
                "claim": f.claim.id,
                "title": f.claim.title,
                "side": f.side,
                "latex": f.claim.latex,
                "args": f.arguments,
                "parts": [(key, python_code(e)) for key, e in f.parts],
                "pretty": [f"{key} = {sp.sstr(e)}" for key, e in f.parts],
            }
        )
    sources = [
        {
            "path": _relpath(docs[key].path),
            "title": docs[key].title,
            "emitted": sorted({e.claim for e in EMITS if e.document == key}),
            "verified": list(verified[key]),
        }
        for key in ("layer", "seed")
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["wrap"] = wrap
    text = env.get_template("module.py.j2").render(
        sources=sources,
        helpers={h["name"]: h for h in helpers},
        helper_list=helpers,
        verify_ns=", ".join(str(n) for n in VERIFY_NS),
        source_line="generated by derive from "
        + ", ".join(f"{s['path']} ({', '.join(s['emitted'])})" for s in sources)
        + "; do not edit",
    )
    return text


def write_generated(outdir: Path) -> list[Path]:
    """Render and write ``outdir/batchnorm.py`` (and ``__init__.py``); return the paths written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    text = render_module()
    written = []
    init = outdir / "__init__.py"
    init_text = '"""Modules generated by derive from verified claim files; do not edit."""\n'
    for path, content in ((outdir / MODULE_NAME, text), (init, init_text)):
        write_if_changed(path, content)
        written.append(path)
    return written
