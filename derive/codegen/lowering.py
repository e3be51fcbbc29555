"""Steps 3 and 4: a verified side lowered for arrays (reductions, centred x, the
inverse root) and split into per-statistic coefficients and per-element products."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..claims import Document
from ..emits import EmitSpec, FormulaSpec
from ..language import CASES, N_SYMBOL, index_symbol, parse
from ..model import Model
from .common import CodegenError

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
