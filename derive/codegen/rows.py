"""Emit the row-wise (softmax family) and elementwise (activations) modules.

The layouts "rows" and "elementwise" of ``emits.LAYOUTS``.  For each declared formula:

1. the claim is verified with every claim it uses (``verification.verify_emitted``);
2. its last side is parsed at a symbolic n; every node is expanded except those the
   ``[emit] names`` table names, which the code holds by name;
3. every ``Sum`` becomes a reduction over the row, ``sum_<term>``, with a helper that
   computes its term per element; a term that is not a product of elements (exp(x -
   shift)) is read by name where it recurs in the formula, so that a kernel that
   stored it computes it once;
4. a named node that the function is not given is computed per element inside the
   helper: from its definition, or by a stable primitive (``PRIMITIVES``) once its
   definition is checked to be that function;
5. everything is printed with ``printing.python_code`` (SymPy's NumPy printer), so the
   same helper runs on arrays (NumPy path) and, compiled by numba, on scalars.

Length: the two layouts share their node steps, stable primitives and the templates'
argument contract; they are one unit of the code generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..claims import Document
from ..emits import FormulaSpec
from ..language import CASES, N_SYMBOL, index_symbol, parse
from ..model import Model
from .common import VERIFY_NS, CodegenError
from .printing import _Printer, python_code
from .rendering import _environment, _relpath, claim_context, functions_of
from .verification import verify_emitted

_a = sp.Wild("a")
# name: the function of its argument a that a node must define to be computed by the
# template's primitive of that name (_sigmoid, _tanh: stable, never exp of a large
# positive number; codegen checks the definition).
PRIMITIVES = {
    "sigmoid": 1 / (1 + sp.exp(-_a)),
    "tanh": (sp.exp(_a) - sp.exp(-_a)) / (sp.exp(_a) + sp.exp(-_a)),
}

# The helpers each template calls, with the arguments it passes them: its contract. A
# document set that leaves one out, or whose code names give one other arguments (a model
# name mapped to a name the template uses for something else), cannot be rendered.
REQUIRED = {
    "rows": {
        "_softmax_y": ("exp_x_shift", "sum_exp_x_shift"),
        "_softmax_dx": ("dy", "y", "sum_dy_y"),
        "_log_softmax_y": ("x", "shift", "sum_exp_x_shift"),
        "_log_softmax_dx": ("dy", "y", "sum_dy"),
        "_cross_entropy_loss": ("sum_exp_x_shift", "sum_s", "sum_s_shift_x"),
        "_cross_entropy_dx": ("t", "w", "eps", "n", "exp_x_shift", "sum_exp_x_shift", "sum_s"),
    },
    "elementwise": {
        "_sigmoid_grad": ("s",),
        "_tanh_grad": ("th",),
        "_silu_y": ("x",),
        "_silu_grad": ("x",),
        "_gelu_y": ("x",),
        "_gelu_grad": ("x",),
    },
}
# The row reductions the kernels compute, with the arguments of their term helpers.
REDUCTIONS = {
    "rows": {
        "sum_exp_x_shift": ("x", "shift"),
        "sum_s": ("t", "w", "eps", "n"),
        "sum_s_shift_x": ("x", "t", "w", "shift", "eps", "n"),
        "sum_dy": ("dy",),
        "sum_dy_y": ("dy", "y"),
    },
    "elementwise": {},
}
# What the templates pass under each code name: an input vector of the model, a scalar
# input, what the document's forward formula returns, or a node that is σ or tanh of the
# input x; "template": the template's own argument (the incoming gradient of the
# elementwise backwards), which no model quantity may take. Checked per document
# (_check_roles): verified formulas over a quantity bound to another's name would be
# wrong code.
ROLES = {
    "rows": {
        "x": "vector",
        "dy": "vector",
        "t": "vector",
        "w": "vector",
        "shift": "scalar",
        "eps": "scalar",
        "y": "output",
    },
    "elementwise": {"dy": "template", "x": "vector", "s": "sigmoid", "th": "tanh"},
}
FORWARDS = ("_softmax_y", "_log_softmax_y")  # the formulas whose value backwards get as y

# What each public function takes, by model name, where a node is given rather than
# computed (sigmoid_backward gets y = σ(x), not x).
GIVEN = {"_sigmoid_grad": ("s",), "_tanh_grad": ("th",)}
N_CODE = sp.Symbol("n", real=True)


# Transcendentals print as the module's own names: np.exp and friends on the NumPy path,
# a vectorisable exp where numba compiles the helpers (see _common.py.j2, vector_math).
VECTOR_MATH = {"numpy.exp": "_exp", "numpy.log": "_log", "numpy.tanh": "_tanh"}


class _DecimalPrinter(_Printer):
    """NumPy functions as np.exp, np.log; rationals whose denominator divides a power of
    ten as the decimal the claim wrote (0.044715): the float is the same, the correctly
    rounded quotient."""

    def _module_format(self, fqn, register=True):
        if fqn in VECTOR_MATH:
            return VECTOR_MATH[fqn]
        if fqn.startswith("numpy."):
            return "np." + fqn[len("numpy.") :]
        return super()._module_format(fqn, register)

    def _print_Rational(self, expr):
        q = expr.q
        twos = fives = 0
        while q % 2 == 0:
            q, twos = q // 2, twos + 1
        while q % 5 == 0:
            q, fives = q // 5, fives + 1
        if q != 1 or expr.q == 1:
            return super()._print_Rational(expr)
        digits = max(twos, fives)
        scaled = abs(expr.p) * 10**digits // expr.q
        text = f"{scaled // 10**digits}.{scaled % 10**digits:0{digits}d}"
        return ("-" if expr.p < 0 else "") + text


def code(expr) -> str:
    return python_code(expr, printer=_DecimalPrinter)


def constant_name(name: str) -> str:
    return f"_{name.upper()}"


@dataclass(frozen=True)
class Step:
    name: str  # the code name it assigns
    lines: tuple[str, ...]
    reads: tuple[str, ...]


@dataclass(frozen=True)
class RowFormula:
    spec: FormulaSpec
    document: Document
    side: str
    value: sp.Expr  # over code symbols, reductions and terms
    args: tuple[str, ...]  # what the helper takes, in order
    steps: tuple[Step, ...]  # node values computed inside, in order
    reductions: tuple[tuple[str, sp.Expr], ...]  # (sum name, its term over code symbols)

    @property
    def claim(self):
        return self.document.claim(self.spec.claim)


def _is_reduction(a) -> bool:
    return isinstance(a, sp.Symbol) and a.name.startswith("sum_")


def _base_name(term: sp.Expr) -> str:
    """A reduction's name from its term: dy*y -> dy_y, exp(x - shift) -> exp_x_shift."""
    parts: list[str] = []
    for a in sp.preorder_traversal(term):
        if isinstance(a, sp.Function):
            parts.append(type(a).__name__.lower())
        elif isinstance(a, sp.Symbol) and a.name not in parts:
            parts.append(a.name)
    if term.is_Mul or term.is_Symbol:
        parts = sorted(parts)
    return "_".join(p.lstrip("_").lower() for p in parts) or "one"


class _Lowering:
    def __init__(self, model: Model, document: Document):
        self.model, self.document = model, document
        emit = document.emit
        self.names = dict(emit.names)
        self.constants = dict(emit.constants)
        self.kept = frozenset(k for k in self.names if k in model.nodes)

    def symbol_for(self, atom, index) -> sp.Symbol:
        m = self.model
        if isinstance(atom, sp.Indexed):
            name = atom.base.name
            if atom.indices != (index,) or name not in self.names:
                raise CodegenError(f"{atom} has no per-element value in the generated code")
            return sp.Symbol(self.names[name], real=True)
        if atom == N_SYMBOL:
            return N_CODE
        if atom.name in self.constants:
            return sp.Symbol(constant_name(atom.name), real=True)
        if atom.name in self.names and (atom.name in m.scalars):
            return sp.Symbol(self.names[atom.name], real=True)
        raise CodegenError(f"{atom} has no value in the generated code: name it in [emit] names")

    def to_code(self, expr, index):
        out = expr.xreplace({a: self.symbol_for(a, index) for a in expr.atoms(sp.Indexed)})
        names = set(self.names.values()) | {constant_name(c) for c in self.constants}
        rest = {
            a
            for a in out.free_symbols
            if a != index and a.name not in names and a != N_CODE and not _is_reduction(a)
        }
        out = out.xreplace({a: self.symbol_for(a, index) for a in rest})
        if index in out.free_symbols:
            raise CodegenError(f"the index {index} survives lowering in {out}")
        return out

    def lower(self, expr, i):
        """(value over code symbols and reductions, {sum name: term})."""
        expr = self.model.expand(expr, keep=self.kept)
        reductions: dict[str, sp.Expr] = {}

        def lower_sum(s: sp.Sum):
            (k, lo, hi), *more = s.limits
            if more or lo != 1 or hi != N_SYMBOL:
                raise CodegenError(f"only single sums over a whole row become reductions: {s}")
            term = self.to_code(s.function, k)
            name = "sum_" + _base_name(term)
            if reductions.get(name, term) != term:
                raise CodegenError(f"two reductions would be named {name}")
            reductions[name] = term
            return sp.Symbol(name, real=True)

        expr = expr.replace(lambda a: isinstance(a, sp.Sum), lower_sum)
        value = self.to_code(expr, i)
        # a term that is not a product of elements is read by name where it recurs
        for name, term in reductions.items():
            if term.has(sp.exp, sp.log):
                value = value.xreplace({term: sp.Symbol(name[4:], real=True)})
        return value, reductions

    def steps(self, reads: set[str], given: tuple[str, ...]) -> tuple[Step, ...]:
        """The named nodes among reads (code names) computed per element, with those they
        need, in model order; given nodes (model names) are arguments instead."""
        m = self.model
        by_code = {v: k for k, v in self.names.items()}
        need: list[str] = []
        todo = [by_code[r] for r in reads if r in by_code and by_code[r] in self.kept]
        defs = {}
        while todo:
            node = todo.pop()
            if node in need or node in given:
                continue
            spec = m.nodes[node]
            if spec.index is None:
                raise CodegenError(f"node {node} is one value per row: give it, do not name it")
            i = index_symbol("i")
            body = m.expand(m.definition(m.families[node][i]), keep=self.kept)
            if body.has(sp.Sum):
                continue  # a row statistic's per-element node (p, out): the function gets it
            defs[node] = body
            need.append(node)
            todo += [a.base.name for a in body.atoms(sp.Indexed) if a.base.name in self.kept]
        order = [n for n in m.nodes if n in need]
        out = []
        i = index_symbol("i")
        for node in order:
            body = defs[node]
            target = self.names[node]
            lines = None
            for prim, form in PRIMITIVES.items():
                match = body.match(form)
                if match and _a in match:
                    arg = match[_a]
                    if sp.simplify(body - form.xreplace({_a: arg})) != 0:
                        continue
                    lines = [f"{target} = _{prim}({code(self.to_code(arg, i))})"]
                    how = prim
                    break
            if lines is None:
                value = self.to_code(body, i)
                if value.has(sp.exp, sp.log):
                    raise CodegenError(
                        f"node {node}: {body} is neither a primitive ({', '.join(PRIMITIVES)})"
                        " nor free of exp and log"
                    )
                lines = [f"{target} = {code(value)}"]
                how = "definition"
            reads_ = sorted({s.name for s in self.to_code(body, i).free_symbols} - {target})
            out.append(Step(target, (f"# node {node}: {how}", *lines), tuple(reads_)))
        return tuple(out)


def _order(lowering: _Lowering) -> list[str]:
    """The canonical order of helper arguments: elements, then scalars, then n."""
    m = lowering.model
    names = lowering.names
    order = [names[v] for v in (*m.spec.vectors, *m.nodes) if v in names]
    order += [names[v] for v in m.spec.all_scalars if v in names]
    return [*order, "n"]


def _args(exprs, steps, lowering) -> tuple[str, ...]:
    used = {s.name for e in exprs for s in e.free_symbols}
    for st in steps:
        used |= set(st.reads)
    used -= {st.name for st in steps}
    used -= {constant_name(c) for c in lowering.constants}
    order = _order(lowering)
    terms = sorted(u for u in used if u not in order and not u.startswith("sum_"))
    sums = sorted(u for u in used if u.startswith("sum_"))
    return (*[o for o in order if o in used], *terms, *sums)


def build(spec: FormulaSpec, document: Document) -> RowFormula:
    claim = document.claim(spec.claim)
    if len(claim.cases) != 1:
        raise CodegenError(f"claim {claim.id!r}: a claim with cases has no single formula")
    case = claim.cases[0]
    free, _ = CASES[case.label]
    if len(free) > 1:
        raise CodegenError(f"claim {claim.id!r}: expected at most one free index")
    model = document.model_for(N_SYMBOL)
    i = index_symbol("i")
    side = case.sides[-1]
    expr = parse(side, model, {name: i for name in free})
    lowering = _Lowering(model, document)
    value, reductions = lowering.lower(expr, i)
    where = f"{spec.field} (claim {spec.claim!r})"
    per_element = value.free_symbols & {sp.Symbol(o, real=True) for o in _order(lowering)[:-1]}
    names = lowering.names
    scalars = {sp.Symbol(names[v], real=True) for v in model.spec.all_scalars if v in names}
    if spec.form == "value" and per_element - scalars:
        raise CodegenError(f"{where}: expected one value per row, got {value}")
    given = GIVEN.get(spec.name, ())
    reads = {s.name for s in value.free_symbols}
    steps = lowering.steps(reads, given)
    args = _args([value], steps, lowering)
    return RowFormula(spec, document, side, value, args, steps, tuple(sorted(reductions.items())))


def term_helper(name: str, term: sp.Expr, document: Document) -> dict:
    lowering = _Lowering(document.model_for(N_SYMBOL), document)
    steps = lowering.steps({s.name for s in term.free_symbols}, ())
    return {
        "name": f"_{name}_term",
        "reduction": name,
        "args": _args([term], steps, lowering),
        "steps": steps,
        "value": code(term),
        "document": _relpath(document.path),
    }


def helper_context(f: RowFormula) -> dict:
    return {
        **claim_context(f),
        "args": f.args,
        "steps": f.steps,
        "value": code(f.value),
        "reductions": [name for name, _ in f.reductions],
        "pretty": f"{sp.sstr(f.value)}",
    }


TANH_TERMS = 12  # odd terms u, u^3, ..., u^23: below 2**-57 relative for |u| < 1/4


def tanh_series() -> list[str]:
    """The Taylor coefficients of tanh(u)/u in u^2, exact, printed as quotients."""
    u = sp.Symbol("u")
    series = sp.series(sp.tanh(u), u, 0, 2 * TANH_TERMS + 1).removeO()
    coeffs = [series.coeff(u, 2 * k + 1) for k in range(TANH_TERMS)]
    return [f"{c.p} / {c.q}" if c.q != 1 else f"{c.p}.0" for c in coeffs]


def _check_roles(document: Document) -> None:
    """Refuse a code name the template passes bound to a model quantity of another kind."""
    layout = document.emit.layout
    model = document.model_for(N_SYMBOL)
    spec = model.spec
    i = index_symbol("i")
    by_code = {code_name: name for name, code_name in document.emit.names}
    for code_name, role in ROLES[layout].items():
        name = by_code.get(code_name)
        if name is None:
            continue
        where = f"{_relpath(document.path)}, field 'emit.names.{name}'"
        if role == "template":
            raise CodegenError(f"{where}: {code_name} is the template's own argument")
        if role == "vector" and name not in spec.vectors:
            raise CodegenError(f"{where}: the template passes {code_name} as an input vector")
        if role == "scalar" and name not in spec.all_scalars:
            raise CodegenError(f"{where}: the template passes {code_name} as a scalar input")
        if role == "output":
            outputs = set()
            for f in document.emit.formulas:
                if f.name in FORWARDS:
                    (case,) = document.claim(f.claim).cases
                    free, _ = CASES[case.label]
                    lhs = parse(case.sides[0], model, {v: i for v in free})
                    if isinstance(lhs, sp.Indexed):
                        outputs.add(lhs.base.name)
            if name not in outputs:
                raise CodegenError(
                    f"{where}: the template passes {code_name} as what the document's forward"
                    f" returns ({', '.join(sorted(outputs)) or 'no forward emitted here'})"
                )
        if role in PRIMITIVES:
            x = by_code.get("x")
            node = model.nodes.get(name)
            ok = x is not None and node is not None and node.index is not None
            if ok:
                body = model.expand(model.definition(model.families[name][i]))
                want = PRIMITIVES[role].xreplace({_a: model.families[x][i]})
                ok = sp.simplify(body - want) == 0
            if not ok:
                raise CodegenError(
                    f"{where}: the template passes {code_name} as {role} of the input x, per"
                    " element; define it so"
                )


def _check_contract(module, layout, helpers, terms) -> None:
    """Refuse a module without every helper and reduction its template calls, or one
    whose arguments are not those the template passes them."""
    for kind, table, entries in (
        ("formula", REQUIRED[layout], helpers),
        ("reduction", REDUCTIONS[layout], terms),
    ):
        missing = [name for name in table if name not in entries]
        if missing:
            raise CodegenError(f"module {module}: layout {layout!r} needs {', '.join(missing)}")
        for name, e in entries.items():
            want = table.get(name)
            if want is None:
                raise CodegenError(f"{e['document']}: the {layout!r} template has no {kind} {name}")
            if tuple(e["args"]) != want:
                raise CodegenError(
                    f"{e['document']}: {kind} {name} takes ({', '.join(e['args'])}); the"
                    f" {layout!r} template passes ({', '.join(want)}): check emit.names"
                )


def render_module(documents: list[Document], results=None) -> str:
    """One rows or elementwise module's text from the documents that emit into it
    (``results`` as in codegen.render_modules)."""
    results = results or {}
    layouts = {d.emit.layout for d in documents}
    if len(layouts) != 1:
        raise CodegenError(f"one module, several layouts {sorted(layouts)}")
    (layout,) = layouts
    module = documents[0].emit.module
    helpers: dict[str, dict] = {}
    terms: dict[str, dict] = {}
    constants: dict[str, float] = {}
    sources = []
    for doc in documents:
        emitted = sorted({f.claim for f in doc.emit.formulas})
        verified = verify_emitted(doc, emitted, result=results.get(doc.path))
        _check_roles(doc)
        for spec in doc.emit.formulas:
            if spec.name in helpers:
                raise CodegenError(f"{doc.path}: formula {spec.name} is declared twice")
            f = build(spec, doc)
            helpers[spec.name] = helper_context(f)
            for name, term in f.reductions:
                t = term_helper(name, term, doc)
                same = {k: v for k, v in t.items() if k != "document"}
                if name in terms and same != {
                    k: v for k, v in terms[name].items() if k != "document"
                }:
                    raise CodegenError(f"{doc.path}: reduction {name} differs between documents")
                terms[name] = t
        for name, value in doc.emit.constants:
            if constants.get(constant_name(name), value) != value:
                raise CodegenError(f"{doc.path}: constant {name} differs between documents")
            constants[constant_name(name)] = value
        sources.append({"path": _relpath(doc.path), "emitted": emitted, "verified": list(verified)})
    _check_contract(module, layout, helpers, terms)
    functions = functions_of(helpers)
    return (
        _environment()
        .get_template(documents[0].emit.template)
        .render(
            module=module,
            sources=sources,
            helpers=helpers,
            terms=terms,
            constants=sorted(constants.items()),
            functions=functions,
            tanh_series=tanh_series(),
            verify_ns=", ".join(str(n) for n in VERIFY_NS),
            source_line="generated by derive from "
            + ", ".join(f"{s['path']} ({', '.join(s['emitted'])})" for s in sources)
            + "; do not edit",
        )
    )
