"""The view model of a report: what the template shows of each claim, case,
step and proof, read from the verifier's results."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from ..claims import Claim, Document
from ..claimtex import CASE_TEX, name_latex, side_latex, statement_latex
from ..claimtex import terms as side_terms
from ..derivation import COEFFICIENT_TEX
from ..findings import STATUS_WORDS, by_position, claim_status, findings
from ..language import N_SYMBOL, index_symbol
from ..mathtext import escape_tex, prose
from ..paths import DOCUMENTS
from ..results import (
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    PHRASES,
    UNDECIDED,
    ClaimResult,
    DocumentResult,
    format_ns,
)
from ..sizes import at
from .maths import LONG_LATEX, TeX, display, document_display, in_size, label, math_lines, tex

# --------------------------------------------------------------------------- view model

# Where a claim's statement comes from, as the claim's section labels it.
ORIGIN_LABELS = {
    "document": "The document writes",
    "restored": "Restored reading (the source lost or elided it)",
    "corrected": "Corrected",
    "added": "Added by the claim file (not in the document)",
}
# Bound indices of a proof are renamed by depth (k_0, k_1, ...); they are shown
# under the names a reader expects for a bound index.
BOUND_NAMES = ("k", "m", "l", "q", "r")
# A normal form longer than this many characters of LaTeX (names counted as
# their letters) is not printed (its length is): it would fill more than half
# a page.
LONG_NORMAL_FORM = 1200


@dataclass(frozen=True)
class StepView:
    number: int  # the step within its case, from 1
    summary: TeX  # "holds for $n = 2..8$", under the document's name for n
    holds: bool
    counterexample: object  # numeric.Counterexample or None
    vacuous: bool
    all_n: str  # "proved", "not proved" or ""


@dataclass(frozen=True)
class LineView:
    prefix: TeX  # "a =" on the first line (the first side), "=" after
    one_line: TeX
    broken: TeX  # the same side broken between its terms (or one_line)
    tag: TeX  # the step's number, for the evidence list


@dataclass(frozen=True)
class CaseView:
    label: str
    condition: TeX
    heading: TeX  # "Case 2, for every $i$"
    latex: TeX  # the case's own LaTeX (may be empty)
    lines: tuple[LineView, ...]
    steps: tuple[StepView, ...]
    normal_form: TeX  # what every side reduces to for every n, or empty
    normal_remark: str  # why no normal form is shown

    @property
    def uniform(self) -> bool:
        """Every step has the same verdict: one sentence says it for all."""
        first = self.steps[0]
        return all(
            (s.summary, s.holds, s.all_n, s.vacuous)
            == (first.summary, first.holds, first.all_n, first.vacuous)
            for s in self.steps
        )


def verdict_text(status: str, ns, size) -> TeX:
    """'holds for n = 1..8' with the document's name for n."""
    if not isinstance(size, str):  # several sizes: format_ns names each
        return TeX(rf"{escape_tex(PHRASES[status])} for ${escape_tex(format_ns(ns))}$")
    return TeX(rf"{escape_tex(PHRASES[status])} for ${name_latex(size)} = {format_ns(ns)}$")


def _step_views(result: ClaimResult, position: int, size: str) -> tuple[StepView, ...]:
    claim = result.claim
    case = claim.cases[position]
    proofs = {p.step: p for p in by_position(claim, result.proofs)[position]}
    out = []
    for k in range(1, case.steps + 1):
        by_status: dict[str, list[int]] = {HOLDS: [], FAILS: [], UNDECIDED: []}
        cx, vacuous = None, True
        for v in result.verdicts:
            for s in by_position(claim, v.steps)[position]:
                if s.step == k:
                    by_status[s.status].append(v.n)
                    vacuous = vacuous and s.vacuous
                    if s.status == FAILS and cx is None:
                        cx = s.counterexample
        parts = [verdict_text(status, ns, size) for status, ns in by_status.items() if ns]
        holds = not by_status[FAILS] and not by_status[UNDECIDED]
        proof = proofs.get(k)
        all_n = "" if proof is None else ("proved" if proof.proved else "not proved")
        vacuous = vacuous and holds and bool(by_status[HOLDS])
        out.append(StepView(k, TeX("; ".join(parts) or "not checked"), holds, cx, vacuous, all_n))
    return tuple(out)


def case_heading(claim: Claim, position: int) -> TeX:
    """'Case 2, for every $i$': cases are numbered, since two may share a label."""
    condition = CASE_TEX[claim.cases[position].label]
    return TeX(f"Case {position + 1}" + (f", {condition}" if condition else ""))


def _side_lines(case, size: str) -> tuple[LineView, ...]:
    """The sides as numbered lines: "a = b (1)", then "= c (2)", ..."""
    shown = []
    for text in case.sides:
        one = side_latex(text, size)
        parts = side_terms(text, size)
        broken = one
        if len(parts) > 1:
            body = r" \\ &\quad ".join(parts)
            broken = rf"\begin{{aligned}}[t]&{body}\end{{aligned}}"
        shown.append((one, broken))
    (first, _), rest = shown[0], shown[1:]
    out = []
    for k, (one, broken) in enumerate(rest, 1):
        prefix = f"{first} =" if k == 1 else "="
        out.append(LineView(TeX(prefix), TeX(one), TeX(broken), TeX(f"({k})")))
    return tuple(out)


def _shown_indices(e):
    """A proof's canonical bound indices (k_0, ...) under a reader's names."""
    taken = {s.name for s in e.free_symbols}
    names = [n for n in BOUND_NAMES if n not in taken]
    rep = {}
    for s in sorted(e.atoms(sp.Symbol), key=lambda s: s.name):
        m = re.fullmatch(r"k_(\d+)", s.name)
        if m and int(m.group(1)) < len(names):
            rep[s] = sp.Symbol(names[int(m.group(1))], integer=True)
    return e.xreplace(rep)


def _normal_form(document: Document, result: ClaimResult, position: int) -> tuple[TeX, str]:
    """What every side of a case reduces to, for a symbolic n, as the verifier found
    it (one expression when the sides agree in the prover's normal form, which is
    what makes agreement visible; nothing when they do not, as for a claim that
    fails, or when the verifier was not asked for them)."""
    forms = result.normal_forms[position] if result.normal_forms else None
    if forms is None:
        return TeX(""), ""
    if isinstance(forms, str):
        return TeX(""), forms
    if any(f is None for f in forms):
        return TeX(""), "no normal form for a symbolic n"
    if any(f != forms[0] for f in forms[1:]):
        return TeX(""), "the sides reduce to different expressions"
    shown = _shown_indices(in_size(forms[0], document.latex_size))
    # measured as printed: without the thin spaces between names and the
    # \mathit{} around them, which take no room to speak of on the page
    length = len(re.sub(r"\\mathit\{(\w+)\}", r"\1", tex(shown)).replace(r"\, ", ""))
    if length > LONG_NORMAL_FORM:
        return TeX(""), f"the common normal form is long ({length} characters of LaTeX)"
    return display(math_lines(shown)), ""


@dataclass(frozen=True)
class ProofView:
    heading: TeX
    proved: bool
    rules: str  # the rules applied, in order, repeats counted: "definitions, kronecker_sum ×2"
    residual: TeX


def _rule_summary(steps) -> str:
    names = [str(s.rule) for s in steps if str(s.rule) not in ("statement", "given")]
    out: list[list] = []
    for name in names:
        if out and out[-1][0] == name:
            out[-1][1] += 1
        else:
            out.append([name, 1])
    return ", ".join(n.replace("_", " ") + (f" ×{c}" if c > 1 else "") for n, c in out)


def _expr_display(e, size: str = "n") -> TeX:
    try:
        e = in_size(e, size) if isinstance(e, sp.Basic) else e
        text = tex(e)
    except Exception as exc:  # a foreign object: say so rather than fail the report
        return TeX(r"\text{" + escape_tex(f"(cannot print: {exc})") + "}")
    if len(text) > LONG_LATEX:
        return TeX(r"\text{" + escape_tex(f"(long: {len(text)} characters of LaTeX)") + "}")
    if isinstance(e, sp.Expr):
        return display(math_lines(_shown_indices(e)))
    return display([text])


def _proof_views(claim: Claim, proofs, size: str = "n") -> tuple[ProofView, ...]:
    headings = []
    for position, case in enumerate(claim.cases):
        for k in range(1, case.steps + 1):
            parts = []
            if claim.kind == "cases":
                parts.append(case_heading(claim, position))
            if case.steps > 1:
                parts.append(f"step ({k})" if parts else f"Step ({k})")
            headings.append(TeX(", ".join(parts) or "The equation"))
    out = []
    for no, proof in enumerate(proofs):
        heading = headings[no] if len(proofs) == len(headings) else f"Proof {no + 1}"
        inner = getattr(proof, "proof", proof)  # results.AllNStep wraps an alln.Proof
        steps = tuple(getattr(inner, "steps", ()) or ())
        proved = bool(getattr(proof, "proved", False))
        residual = getattr(inner, "residual", None)
        reason = getattr(proof, "reason", "")
        # proved with no rule: the two sides were the same expression already
        rules = _rule_summary(steps) or reason or ("" if proved else "no rule applies")
        out.append(
            ProofView(
                heading=heading,
                proved=proved,
                rules=rules,
                residual=TeX("") if proved or residual is None else _expr_display(residual, size),
            )
        )
    return tuple(out)


def _all_n(proofs) -> str:
    if not proofs:
        return "—"
    return "proved" if all(getattr(p, "proved", False) for p in proofs) else "not proved"


@dataclass(frozen=True)
class ClaimView:
    id: str
    label: TeX
    title: TeX
    status: str  # findings.STATUSES
    status_word: str
    origin: str
    origin_label: str
    corrects: tuple[tuple[str, TeX], ...]  # the claim as printed, for a corrected one
    kind: str
    statement: TeX
    statement_printed: bool  # no latex in the file: the statement is printed from the sides
    verdict_summary: TeX  # "holds for $n = 2..8$; n/a for $n = 1$"
    checked: str  # the n actually decided, as ranges
    all_n: str
    cases: tuple[CaseView, ...]
    uses: tuple[tuple[str, TeX], ...]
    used_by: tuple[tuple[str, TeX], ...]
    note: TeX
    failure: str  # where it first fails, or ""
    proofs: tuple[ProofView, ...]
    finding: bool  # expect = "fails": wrong on purpose


def _claim_view(document: Document, result: ClaimResult, used_by, all_n, links) -> ClaimView:
    claim = result.claim
    size = document.latex_size
    names = prose_names(document)
    cases = []
    for position, case in enumerate(claim.cases):
        steps = _step_views(result, position, size)
        normal, remark = _normal_form(document, result, position)
        cases.append(
            CaseView(
                label=case.label,
                condition=TeX(CASE_TEX[case.label]),
                heading=case_heading(claim, position),
                latex=document_display(case.latex) if case.latex.strip() else TeX(""),
                lines=_side_lines(case, size),
                steps=steps,
                normal_form=normal,
                normal_remark=remark,
            )
        )
    failure = ""
    bad = result.first_failure
    if bad is not None and bad.first_failure is not None:
        step = bad.first_failure
        position = next(p for p, steps in enumerate(by_position(claim, bad.steps)) if step in steps)
        where = f"case {position + 1}, " if claim.kind == "cases" else ""
        where += f"step ({step.step})" if claim.cases[0].steps > 1 else "the equation"
        failure = f"first failure at {at(bad.n)}: {where}"
    checked = [v.n for v in result.verdicts if v.status != NOT_APPLICABLE]
    status = claim_status(result, all_n)
    return ClaimView(
        id=claim.id,
        label=label(claim.id),
        title=TeX(prose(claim.title, names=names)),
        status=status,
        status_word=STATUS_WORDS[status],
        origin=claim.origin,
        origin_label=ORIGIN_LABELS[claim.origin],
        corrects=((claim.corrects, label(claim.corrects)),) if claim.corrects else (),
        kind=claim.kind,
        statement=document_display(statement_latex(claim, size)),
        statement_printed=not claim.latex,
        verdict_summary=TeX(
            "; ".join(
                verdict_text(status, [v.n for v in result.verdicts if v.status == status], size)
                for status in (HOLDS, FAILS, UNDECIDED, NOT_APPLICABLE)
                if any(v.status == status for v in result.verdicts)
            )
        ),
        checked=format_ns(checked),
        all_n=_all_n(result.proofs),
        cases=tuple(cases),
        uses=tuple((u, label(u)) for u in claim.uses),
        used_by=tuple((u, label(u)) for u in used_by),
        note=TeX(prose(claim.note, links, names)),
        failure=failure,
        proofs=_proof_views(claim, result.proofs, size),
        finding=claim.finding,
    )


def prose_names(document: Document) -> dict[str, str]:
    """The names the document's model declares (its size, inputs and nodes),
    each with the LaTeX the formulas print it as: in titles and notes, too,
    gamma is γ and dbeta is the formulas' dbeta, one notation throughout."""
    spec = document.model_for(1).spec
    words = [*spec.size_names, *spec.indexed_inputs, *spec.all_scalars]
    words += [node.name for node in spec.nodes]
    return {w: name_latex(w) for w in words}


def _setting(document: Document) -> list[tuple[TeX, TeX]]:
    """The declared model's nodes, each with its definition, printed by sympy.latex."""
    model = document.model_for(N_SYMBOL)
    rows = []
    for node in model.nodes.values():
        js = tuple(index_symbol(i) for i in node.spec.indices) or (index_symbol("j"),)
        definition = node.definition_at(js if len(js) > 1 else js[0])
        # Print a definition's own sum indices under the names the file wrote.
        plain = {s: index_symbol(s.name.split("_{")[0]) for s in definition.atoms(sp.Symbol)}
        plain = {a: b for a, b in plain.items() if a.name.endswith("}")}
        atom = node.atom[js] if node.index is not None else node.atom
        kind = "a square root" if node.kind.name == "sqrt" else "a node"
        rows.append(
            (
                TeX(rf"\texttt{{{escape_tex(node.name)}}}, {kind}"),
                sp.Eq(atom, definition.xreplace(plain), evaluate=False),
            )
        )
    return [(text, TeX(tex(in_size(expr, document.latex_size)))) for text, expr in rows]


def _source_name(document: Document) -> str:
    """The claim file, named the same on every machine."""
    path = Path(document.path)
    shipped = DOCUMENTS
    if path.resolve().parent == shipped.resolve():
        return f"derive/documents/{path.name}"
    return path.name


def _derivation_view(obj) -> dict | None:
    if obj is None:
        return None
    coefficients = getattr(obj, "coefficients", {}) or {}
    rows = []
    for k in sorted(coefficients, key=str):
        name, multiplies = COEFFICIENT_TEX.get(k, (rf"\text{{{escape_tex(str(k))}}}", ""))
        rows.append((TeX(name), TeX(multiplies), TeX(coefficients[k])))
    return {
        "latex_derived": TeX(getattr(obj, "latex_derived", "")),
        "latex_document": TeX(getattr(obj, "latex_document", "")),
        "holds": bool(getattr(obj, "holds", False)),
        "coefficients": rows,
        "claim": getattr(obj, "claim_id", None),
    }


def _finding_views(result: DocumentResult, links, names) -> list[dict]:
    return [
        {"kind": f.kind, "heading": f.heading, "text": TeX(prose(f.text, links, names))}
        for f in findings(result)
    ]
