"""LaTeX reports of verification results, and their PDFs.

``render_report`` turns one ``DocumentResult`` into a LaTeX document a person
can read: the source and its setting, a summary table, then every claim with
the document's own statement, what SymPy derives for each side at a small n,
the verdict per n (per step for chains), cross-references to the claims it
uses, and notes.  A failing claim is printed in red with its counterexample;
the report builds all the same.

The template (``templates/report.tex.j2``) uses LaTeX-safe Jinja delimiters:
``\\BLOCK{...}`` for statements, ``\\VAR{...}`` for values, ``%#`` for
comments.  Every value printed with ``\\VAR`` is escaped as plain text unless
it is a ``TeX`` string, and ``TeX`` is only ever made here, from
``sympy.latex`` or from a document's own LaTeX.  Rendering is deterministic:
no timestamps, no iteration over sets or unordered mappings.

``build_pdfs`` compiles the ``.tex`` files with latexmk (pdflatex); the PDFs
are build products (ignored by git), the ``.tex`` files are committed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy as sp

from .argument import layout
from .claims import Claim, Document
from .claimtex import CASE_TEX, indexed_latex, name_latex, side_latex, statement_latex
from .claimtex import terms as side_terms
from .derivation import COEFFICIENT_TEX
from .files import copy_atomic, describe_os_error, write_if_changed
from .findings import FINDING, STATUS_WORDS, STATUSES, by_position, claim_status, findings
from .language import N_SYMBOL, index_symbol
from .latexsafe import comment_text
from .limits import LATEXMK_TIMEOUT_S, PDF_SOURCE_DATE_EPOCH
from .mathtext import escape_tex, prose, separate_names
from .paths import DOCUMENTS, TEMPLATES, output_path
from .results import (
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    PHRASES,
    UNDECIDED,
    ClaimResult,
    DocumentResult,
    format_ns,
)

# A printed expression longer than this many characters of LaTeX is not
# printed (its length is): about 1,500 characters fill four to five lines.
LONG_LATEX = 1500
# Width budget of one displayed line, in the units of _width (about one math
# italic letter).  The text block is 15 cm wide, about 65 such letters at
# 11pt; the margin leaves room for the "= " prefix and for estimation error.
LINE_UNITS = 52

PDFLATEX_DEBIAN_PACKAGES = (
    "latexmk texlive-latex-base texlive-latex-recommended "
    "texlive-latex-extra texlive-fonts-recommended texlive-pictures lmodern"
)


class TeX(str):
    """A string that is already LaTeX: printed as is by the template."""


class ReportBuildError(RuntimeError):
    """latexmk is missing or a report does not compile."""


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


def in_size(e, size: str):
    """e with the symbolic batch size (N_SYMBOL, named n inside derive) under the
    document's own name for it (m in the batch-norm paper)."""
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


def verdict_text(status: str, ns, size: str) -> TeX:
    """'holds for n = 1..8' with the document's name for n."""
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
    shown = _shown_indices(in_size(forms[0], document.size))
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
    size = document.size
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
        failure = f"first failure at n = {bad.n}: {where}"
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
    words = [spec.size, *spec.vectors, *spec.all_scalars]
    words += [node.name for node in spec.nodes]
    return {w: name_latex(w) for w in words}


def _setting(document: Document) -> list[tuple[TeX, TeX]]:
    """The declared model's nodes, each with its definition, printed by sympy.latex."""
    model = document.model_for(N_SYMBOL)
    rows = []
    for node in model.nodes.values():
        j = index_symbol(node.spec.index or "j")
        definition = node.definition_at(j)
        # Print a definition's own sum indices under the names the file wrote.
        plain = {s: index_symbol(s.name.split("_{")[0]) for s in definition.atoms(sp.Symbol)}
        plain = {a: b for a, b in plain.items() if a.name.endswith("}")}
        atom = node.atom[j] if node.index is not None else node.atom
        kind = "a square root" if node.kind.name == "sqrt" else "a node"
        rows.append(
            (
                TeX(rf"\texttt{{{escape_tex(node.name)}}}, {kind}"),
                sp.Eq(atom, definition.xreplace(plain), evaluate=False),
            )
        )
    return [(text, TeX(tex(in_size(expr, document.size)))) for text, expr in rows]


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


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: TeX
    x: str  # TikZ coordinates, cm
    y: str
    text: TeX  # the id, broken at hyphens into short lines
    status: str


def _graph(claims: list[ClaimView], document: Document) -> dict:
    placed = layout(document.claims)
    status = {c.id: c.status for c in claims}
    columns = max((p.layer for p in placed), default=0) + 1
    rows = max((p.row for p in placed), default=0) + 1
    dx = min(GRAPH_MAX_DX_CM, GRAPH_WIDTH_CM / max(columns - 1, 1))
    # Rows far enough apart for the tallest box (an id of four short lines
    # overlapped its neighbours at a fixed spacing).
    tallest = max((len(_short_lines(p.id)) for p in placed), default=1)
    dy = max(GRAPH_DY_CM, GRAPH_LINE_CM * tallest + GRAPH_GAP_CM)
    nodes = []
    for p in placed:
        y = -(p.row - (sum(1 for q in placed if q.layer == p.layer) - 1) / 2) * dy
        nodes.append(
            GraphNode(
                id=p.id,
                label=label(p.id),
                x=f"{p.layer * dx:.2f}",
                y=f"{y:.2f}",
                text=TeX(r"\\".join(escape_tex(part) for part in _short_lines(p.id))),
                status=status[p.id],
            )
        )
    edges = [(u, c.id) for c in document.claims for u in c.uses]
    index = {n.id: k for k, n in enumerate(nodes)}
    return {
        "nodes": nodes,
        "edges": [(index[a], index[b]) for a, b in edges],
        "rows": rows,
        "node_width": f"{min(GRAPH_NODE_CM, dx - 0.3):.2f}",
    }


def _short_lines(claim_id: str, width: int = 11) -> list[str]:
    """An id broken at hyphens into lines of about ``width`` characters."""
    lines: list[str] = []
    for part in re.split(r"(?<=-)", claim_id):
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return lines


# The picture of the argument: at most this wide (the text block is 16 cm),
# columns at most this far apart, rows this far apart, nodes this wide.
GRAPH_WIDTH_CM = 13.5
GRAPH_MAX_DX_CM = 3.2
GRAPH_DY_CM = 0.9
# A line of a box's text (\scriptsize) and the space between two boxes.
GRAPH_LINE_CM = 0.3
GRAPH_GAP_CM = 0.35
GRAPH_NODE_CM = 2.0


def _finding_views(result: DocumentResult, links, names) -> list[dict]:
    return [
        {"kind": f.kind, "heading": f.heading, "text": TeX(prose(f.text, links, names))}
        for f in findings(result)
    ]


def latex_environment(template_dir=TEMPLATES, finalize=_finalize) -> jinja2.Environment:
    """jinja2 for LaTeX: \\BLOCK{...}, \\VAR{...} and %# comments, so TeX's braces
    never fight the template; every value passes through ``finalize``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_comment_prefix="%#",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
    )
    env.filters["display"] = lambda latex: display([latex])
    env.filters["document_display"] = document_display
    env.filters["code"] = code
    # A claim id in a narrow column may break after its hyphens.
    env.filters["breakable"] = lambda text: TeX(escape_tex(text).replace("-", r"-\allowbreak{}"))
    return env


def render_report(result: DocumentResult, *, extras: dict | None = None) -> str:
    """The LaTeX source of one document's report.

    ``extras`` may hold ``"derivation"``: an object with ``latex_derived``,
    ``latex_document`` (LaTeX strings), ``holds`` (bool), ``coefficients``
    (name -> LaTeX), optionally ``coefficient_names`` (name -> the LaTeX
    symbol the report shows for it) and ``claim_id`` (the claim it is compared
    with); without it the section is left out."""
    extras = extras or {}
    document = result.document
    links = {c.id: label(c.id) for c in document.claims}
    used_by: dict[str, list[str]] = {c.id: [] for c in document.claims}
    for c in document.claims:
        for u in c.uses:
            used_by.setdefault(u, []).append(c.id)
    claims = [
        _claim_view(document, r, used_by.get(r.claim.id, []), result.all_n, links)
        for r in result.claims
    ]
    derivation = _derivation_view(extras.get("derivation"))
    if derivation and derivation["claim"] not in {c.id for c in claims}:
        derivation["claim"] = None
    names = prose_names(document)
    references = [TeX(prose(document.citation, names=names))] if document.citation else []
    references += [TeX(prose(r, names=names)) for r in document.references]
    # Only a report with a finding shows its colour and legend entry: the others
    # have nothing that fails on purpose to explain.
    with_findings = any(c.status == FINDING for c in claims)
    template = latex_environment().get_template("report.tex.j2")
    text = template.render(
        document=document,
        title=TeX(prose(document.title, names=names)),
        citation=TeX(prose(document.citation, links, names)),
        description=TeX(prose(document.description, links, names)),
        source=TeX(comment_text(_source_name(document))),  # in a LaTeX comment
        ns=format_ns(result.ns),
        holds=result.holds,
        findings=_finding_views(result, links, names),
        setting=_setting(document),
        claims=claims,
        with_proofs=any(c.proofs for c in claims),
        derivation=derivation,
        graph=_graph(claims, document),
        statuses=[(s, STATUS_WORDS[s]) for s in STATUSES if s != FINDING or with_findings],
        with_findings=with_findings,
        references=references,
        proofs_label=TeX("sec:proofs"),
        n=TeX(name_latex(document.size)),
        size=document.size,
    )
    return text.lstrip("\n")


def write_reports(
    results: list[DocumentResult], outdir: Path = Path("reports"), texts=None, **kw
) -> list[Path]:
    """Write ``<outdir>/<document id>.tex`` for each result; ``kw`` goes to
    ``render_report`` (``extras``, or ``extras_by_id``: document id -> extras).
    ``texts`` (document id -> text): reports already rendered, written as they are."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    by_id = kw.pop("extras_by_id", {}) or {}
    texts = texts or {}
    paths = []
    for result in results:
        extras = by_id.get(result.document.id, kw.get("extras"))
        path = output_path(outdir, result.document.id, ".tex")
        text = texts.get(result.document.id)
        write_if_changed(path, render_report(result, extras=extras) if text is None else text)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- PDFs

# An overfull line wider than this is a layout bug.  TeX reports overruns of a
# fraction of a point that no reader can see; 3pt (about 1 mm) is the most a
# line may stick into the margin before it looks wrong on paper.
OVERFULL_LIMIT_PT = 3.0
_OVERFULL = re.compile(r"Overfull \\hbox \(([0-9.]+)pt too wide\)[^\n]*")
# A formula wider than the line is scaled down (\fitmath, \checkedline in the
# template, which log "derive-scaled: <width> to <line width>").  Below this
# factor its type is smaller than 8pt at 11pt: too small to read on paper.
MIN_SCALE = 0.75
_SCALED = re.compile(r"^derive-scaled: ([0-9.]+)pt to ([0-9.]+)pt", re.MULTILINE)


def latexmk_available() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def read_log(path) -> str:
    """A pdflatex log as text (logs may hold bytes of any encoding)."""
    return Path(path).read_text(encoding="utf-8", errors="replace")


def log_problems(log: str, overfull_limit_pt: float = OVERFULL_LIMIT_PT) -> list[str]:
    """What is wrong in a pdflatex log: errors, undefined references or
    citations, overfull lines wider than the limit, and formulas scaled below
    MIN_SCALE."""
    problems = []
    for line in log.splitlines():
        if line.startswith("! ") or re.match(r"^[^:\s]+\.tex:\d+: ", line):
            problems.append(f"error: {line}")
        elif "undefined" in line and ("Reference" in line or "Citation" in line):
            problems.append(f"undefined: {line}")
        elif "There were undefined references" in line:
            problems.append(f"undefined: {line}")
    for m in _OVERFULL.finditer(log):
        if float(m.group(1)) > overfull_limit_pt:
            problems.append(f"overfull: {m.group(0)}")
    for m in _SCALED.finditer(log):
        if float(m.group(2)) < MIN_SCALE * float(m.group(1)):
            problems.append(f"scaled below {MIN_SCALE:.0%}: {m.group(0)}")
    return problems


# What pdflatex writes when a further run would change the PDF: the warnings
# themselves, each anchored at the start of its log line, so that a claim's
# text echoed into the log (an overfull line prints its words) never matches.
_RERUN = re.compile(
    r"^(?:LaTeX Warning: Label\(s\) may have changed\. Rerun to get cross-references right"
    r"|Package \w+ Warning: .*Rerun LaTeX"
    r"|\(rerunfilecheck\) +Rerun to get outlines right"
    r"|(?:LaTeX|Package \w+) Warning: .*Rerun to get .* right)",
    re.MULTILINE,
)
# latexmk decides whether to run pdflatex again by comparing the auxiliary
# files' time, size and checksum; with one-second timestamps, an .aux file
# rewritten within the same second at the same size (a longtable's widths) can
# be taken as unchanged, and latexmk stops while the log still asks for a
# rerun.  How often that happens depends on the machine's load.  So when the
# final log asks for a rerun, the build forces further passes itself (latexmk
# -g), at most this many, and fails only if the log still asks after them.
EXTRA_PASSES = 3


def latexmk_command(tex_name: str, build_dir: Path) -> list[str]:
    """latexmk for one report: no rc files (a latexmkrc beside the report is Perl
    that latexmk would run), no shell escape, stop at the first error."""
    return [
        "latexmk",
        "-norc",
        "-pdf",
        "-no-shell-escape",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        f"-outdir={build_dir.resolve()}",
        tex_name,
    ]


def latex_environment_variables() -> dict[str, str]:
    """The environment pdflatex runs in: kpathsea's paranoid mode (no reading or
    writing outside the working and output folders, no dot files), and a fixed
    date, so two builds give the same bytes."""
    return dict(
        os.environ,
        openin_any="p",
        openout_any="p",
        shell_escape="f",
        SOURCE_DATE_EPOCH=str(PDF_SOURCE_DATE_EPOCH),
        FORCE_SOURCE_DATE="1",
    )


def _run_latexmk(cmd, cwd, timeout_s) -> subprocess.CompletedProcess:
    """Run latexmk in its own process group, and end the whole group (pdflatex
    included, which holds the output pipe open) when it runs past timeout_s."""
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=latex_environment_variables(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ReportBuildError(
                f"{Path(cwd) / cmd[-1]}: latexmk ran past the limit of {timeout_s} s"
                " (LATEXMK_TIMEOUT_S) and was stopped"
            ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def build_pdfs(
    tex_paths, build_dir: Path = Path("reports/_build"), *, timeout_s: float = LATEXMK_TIMEOUT_S
) -> list[Path]:
    """Compile each ``.tex`` with latexmk (pdflatex) into ``build_dir`` and copy
    the PDF beside its source (atomically); returns the PDFs' paths.

    Raises ReportBuildError when latexmk is missing, a file does not compile
    (with the log's first errors), the build runs past timeout_s, the log
    still asks for a rerun, or it names a problem (log_problems: a formula
    scaled below MIN_SCALE, a line overfull by more than OVERFULL_LIMIT_PT)."""
    if not latexmk_available():
        raise ReportBuildError(
            "latexmk and pdflatex are needed to build the PDF reports; on Debian/Ubuntu: "
            f"apt-get install {PDFLATEX_DEBIAN_PACKAGES}"
        )
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for tex in map(Path, tex_paths):
        stamp = build_dir / f"{tex.stem}.built-from"
        built = _built_from(tex)
        if built is not None and built == _read_stamp(stamp):
            out.append(tex.with_suffix(".pdf"))  # this very source made this very PDF
            continue
        proc = _run_latexmk(latexmk_command(tex.name, build_dir), tex.parent, timeout_s)
        log_path = build_dir / f"{tex.stem}.log"
        pdf = build_dir / f"{tex.stem}.pdf"
        if proc.returncode != 0 or not pdf.exists():
            log = read_log(log_path) if log_path.exists() else proc.stdout
            errors = [p for p in log_problems(log) if p.startswith("error")][:5]
            raise ReportBuildError(
                f"{tex}: latexmk failed (exit {proc.returncode}); see {log_path}\n"
                + "\n".join(errors or proc.stdout.splitlines()[-10:])
            )
        rerun = _RERUN.search(read_log(log_path))
        for _ in range(EXTRA_PASSES):
            if not rerun:
                break
            forced = latexmk_command(tex.name, build_dir)
            forced.insert(1, "-g")
            proc = _run_latexmk(forced, tex.parent, timeout_s)
            if proc.returncode != 0:
                raise ReportBuildError(
                    f"{tex}: latexmk -g failed (exit {proc.returncode}); see {log_path}"
                )
            rerun = _RERUN.search(read_log(log_path))
        if rerun:
            raise ReportBuildError(
                f"{tex}: the log still says {rerun.group(0)!r} after latexmk; see {log_path}"
            )
        # A formula scaled below MIN_SCALE or a line far into the margin is as
        # much a failure as an error: every report is checked, not one sample.
        problems = log_problems(read_log(log_path))
        if problems:
            raise ReportBuildError(f"{tex}: see {log_path}\n" + "\n".join(problems[:5]))
        target = tex.with_suffix(".pdf")
        copy_atomic(pdf, target)
        write_if_changed(stamp, _built_from(tex) or "")
        out.append(target)
    return out


def _built_from(tex: Path) -> str | None:
    """The sha256 of a report's source and of its PDF beside it (None without one)."""
    pdf = tex.with_suffix(".pdf")
    try:
        return " ".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in (tex, pdf))
    except OSError:
        return None


def _read_stamp(stamp: Path) -> str | None:
    try:
        return stamp.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def main(argv=None) -> int:
    """``python -m derive.report [FILE.tex ...]``: build PDFs (default reports/*.tex)."""
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted(Path("reports").glob("*.tex"))
    if not paths:
        print("error: no .tex reports to build (run make first)", file=sys.stderr)
        return 2
    try:
        for pdf in build_pdfs(paths, paths[0].parent / "_build"):
            print(pdf)
    except ReportBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
