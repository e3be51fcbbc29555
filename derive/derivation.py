"""Deriving the closed form from the direct derivative, not only checking it.

The Jacobian ∂x̂_j/∂x_i is differentiated directly (x̂ as a function of x
alone).  Batch norm is invariant under shifting x and scales as 1/λ under
x → λx, so σ·J can only be a function of x̂; we look for it in the span of
{δ_ij, 1, x̂_i x̂_j}:

    σ ∂x̂_j/∂x_i = α δ_ij + β + γ x̂_i x̂_j ,   α, β, γ rational numbers

(in the code; a report names them c_δ, c_1, c_x̂ by what they multiply, so
that they cannot be taken for the layer's γ and β).

Clearing σ and reducing modulo σ² = var + ε leaves a polynomial identity in x
that is linear in α, β, γ; solving it *finds* the coefficients (and fails
loudly if the span were wrong).  Solving at several n and interpolating
gives the coefficients as functions of n.  The vector–Jacobian product is then

    ∂L/∂x_i = Σ_j g_j ∂x̂_j/∂x_i = (α g_i + β Σ_j g_j + γ x̂_i Σ_j x̂_j g_j)/σ ,

which is handed back to the verifier, as a chain between the direct
derivative, the derived form and the document's (F), at every n and for all n.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.polys.polyfuncs import rational_interpolate

from .checking import Checker, check_claim, prove_claim_all_n
from .claims import Case, Claim, Document
from .claimtex import statement_latex
from .exact import Field
from .language import N_SYMBOL
from .results import ClaimResult

UNKNOWNS = ALPHA, BETA, GAMMA_ = sp.symbols("alpha beta gamma_c")
# How a report names each coefficient and what it multiplies: named by their
# basis element, never α, β, γ (γ is the layer's scale).
COEFFICIENT_TEX = {
    "alpha": (r"c_{\delta}", r"\delta_{ij}"),
    "beta": (r"c_{1}", "1"),
    "gamma": (r"c_{\hat{x}}", r"\hat{x}_i \hat{x}_j"),
}
# From n = 3: at n = 2, x̂_1 x̂_2 = −1 is constant, so the basis is degenerate there.
DERIVATION_NS = tuple(range(3, 8))


class DerivationError(RuntimeError):
    pass


# Stand-ins used only to print the derived form.
_SIGMA_SHOWN = sp.Symbol("sigma", positive=True)
_XHAT_I = sp.Symbol(r"\hat{x}_i")
_UP_XHAT = {
    "i": sp.Symbol("g_i"),
    "sum": sp.Symbol(r"{\textstyle\sum_j} g_j"),
    "xsum": sp.Symbol(r"{\textstyle\sum_j} \hat{x}_j g_j"),
}
_UP_LAYER = {
    "i": sp.Symbol(r"\gamma\, dy_i"),
    "sum": sp.Symbol(r"\gamma {\textstyle\sum_j} dy_j"),
    "xsum": sp.Symbol(r"\gamma {\textstyle\sum_j} \hat{x}_j dy_j"),
}


@dataclass(frozen=True)
class Derivation:
    coefficients: dict  # "alpha" | "beta" | "gamma" -> expression in n
    per_n: dict  # n -> (alpha, beta, gamma) found at that n
    text: str  # the derived form in the claim language
    claim: Claim  # direct derivative = derived form = the document's (F)
    result: ClaimResult
    document_latex: str  # the target claim as the document writes it (or its sides printed)
    model: str  # the document's model kind: "xhat" (upstream g) or "layer" (gamma*dy)

    @property
    def holds(self) -> bool:
        return self.result.holds and self.result.proved_all_n

    # -- what the report shows -------------------------------------------
    @property
    def claim_id(self) -> str:
        return self.claim.uses[0]

    @property
    def latex_derived(self) -> str:
        """The derived form, with the sums as the reader writes them."""
        up = _UP_LAYER if self.model == "layer" else _UP_XHAT
        a, b, c = (self.coefficients[k] for k in ("alpha", "beta", "gamma"))
        # over a common denominator, in the document's term order
        common = sp.lcm_list([sp.denom(a), sp.denom(b), sp.denom(c)])
        parts = ((a, (up["i"],)), (b, (up["sum"],)), (c, (_XHAT_I, up["xsum"])))
        terms = [_term(sp.expand(k * common), factors) for k, factors in parts]
        numerator = sp.latex(sp.Add(*terms, evaluate=False), order="none")
        expr_latex = rf"\frac{{{numerator}}}{{{sp.latex(common * _SIGMA_SHOWN)}}}"
        return r"\frac{\partial L}{\partial x_i} = " + expr_latex

    @property
    def latex_document(self) -> str:
        return self.document_latex

    @property
    def coefficients_latex(self) -> dict:
        return {k: sp.latex(v) for k, v in self.coefficients.items()}


def _term(coefficient, factors):
    """coefficient * factors, kept in the written order for printing."""
    if coefficient == 1:
        return sp.Mul(*factors, evaluate=False)
    if coefficient == -1:
        return sp.Mul(-1, *factors, evaluate=False)
    return sp.Mul(coefficient, *factors, evaluate=False)


def solve_coefficients(document: Document, n: int) -> tuple:
    """α, β, γ at one n, from the directly differentiated Jacobian."""
    if n < 2:
        raise DerivationError(f"n = {n}: the derivation needs n ≥ 2 (σ > 0)")
    model = document.model_for(n)
    try:
        x, xhat = model.families["x"], model.families["xhat"]
        mu, sigma = model.scalars["mu"], model.scalars["sigma"]
    except KeyError as exc:
        raise DerivationError(f"the derivation needs the batch-norm node {exc}") from None
    field = Field(model)
    equations = []
    for j in (1, 2):  # the diagonal and one off-diagonal entry stand for all (symmetry)
        jac = model.adjoint(xhat[j], x[1])
        delta = 1 if j == 1 else 0
        # σ²·(σJ − αδ − β − γ x̂_1 x̂_j): polynomial in σ and x, linear in α, β, γ.
        residual = (
            sigma**3 * jac - (ALPHA * delta + BETA) * sigma**2 - GAMMA_ * (x[1] - mu) * (x[j] - mu)
        )
        residual = sp.expand(residual)
        parts = {u: residual.coeff(u) for u in UNKNOWNS}
        parts[1] = residual.subs({u: 0 for u in UNKNOWNS})
        polys = {u: field.polynomial(e) for u, e in parts.items()}
        monomials = sorted({m for p in polys.values() for m in p.keys()})
        for m in monomials:
            equations.append(sum(u * polys[u].get(m, 0) for u in UNKNOWNS) + polys[1].get(m, 0))
    solution = sp.solve(equations, UNKNOWNS, dict=True)
    if len(solution) != 1 or set(solution[0]) != set(UNKNOWNS):
        raise DerivationError(
            f"n = {n}: the Jacobian is not in the span of δ_ij, 1, x̂_i x̂_j (solutions: {solution})"
        )
    return tuple(solution[0][u] for u in UNKNOWNS)


def interpolate_in_n(values: dict) -> sp.Expr:
    """A low-degree rational function of n through (n, value) for every n given."""
    points = sorted(values.items())
    for degnum in range(0, 3):
        try:
            f = rational_interpolate(points, degnum, X=N_SYMBOL)
        except (ZeroDivisionError, ValueError):
            continue
        if all(sp.simplify(f.subs(N_SYMBOL, n) - v) == 0 for n, v in points):
            return sp.factor(f)
    raise DerivationError(f"no low-degree rational function of n fits {points}")


def derive_closed_form(document: Document, target: str | None = None, ns=None) -> Derivation:
    """Find the closed form from the direct derivative and verify it against the
    claim `target` (default: the document's `closed_form`)."""
    target = target or document.closed_form
    if not target:
        raise DerivationError(f"{document.path}: no closed_form claim to derive")
    ns = tuple(ns or DERIVATION_NS)
    per_n = {n: solve_coefficients(document, n) for n in ns}
    names = ("alpha", "beta", "gamma")
    coefficients = {
        name: interpolate_in_n({n: per_n[n][k] for n in ns}) for k, name in enumerate(names)
    }
    up = "g[{0}]" if document.model == "xhat" else "gamma*dy[{0}]"
    terms = (
        (coefficients["alpha"], up.format("i")),
        (coefficients["beta"], f"sum({up.format('j')}, j)"),
        (coefficients["gamma"], f"xhat[i]*sum(xhat[j]*{up.format('j')}, j)"),
    )
    text = "(" + " + ".join(f"({sp.sstr(k)})*{t}" if k != 1 else t for k, t in terms) + ")/sigma"
    target_claim = document.claim(target)
    (case,) = target_claim.cases
    claim = Claim(
        id="derived-closed-form",
        title="The closed form derived from the direct derivative",
        latex="",
        kind="chain",
        cases=(Case("all i", ("D(L, x[i])", text, case.sides[-1])),),
        uses=(target,),
        note=f"Coefficients found by solving at n = {', '.join(map(str, ns))}.",
    )
    verdicts = [check_claim(claim, Checker(document.model_for(n))) for n in ns]
    result = ClaimResult(claim, tuple(verdicts), prove_claim_all_n(claim, document))
    statement = statement_latex(target_claim, document.size)
    return Derivation(coefficients, per_n, text, claim, result, statement, document.model)
