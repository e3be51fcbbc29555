"""What a verification established, in sentences: the findings a report leads with.

Everything here is read off the results (verdicts, vacuity, proofs) and the
claim file's declarations (``origin``, ``corrects``, notes); nothing is
re-checked.  A claim's *status* is one word for the summary table and the
picture of the argument:

* ``finding``: it fails, as its file says it should (``expect = "fails"``):
  a claim wrong on purpose;
* ``fails`` / ``undecided``: the verifier's verdict (a claim that holds for
  every n checked but whose proof for all n was asked for and not found is
  undecided, as in the CLI);
* ``vacuous``: it holds only because both sides are identically 0 (detected
  by the verifier, ``ClaimResult.vacuous``);
* ``corrected``: it holds, and it is the document's claim with a slip mended;
* ``restored``: it holds, and it is a reading of what the source lost;
* ``holds``.

The findings put the claims that fail on purpose first (what the document
records as wrong), then failures (a finding that holds among them), then the
undecided, then what holds and in which sense.  Their text is Unicode prose
(``mathtext``), with claim ids that the report turns into links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .results import (
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    UNDECIDED,
    ClaimResult,
    DocumentResult,
    by_position,
)
from .results import format_ns as _format_ns
from .sizes import Point

FINDING, VACUOUS, CORRECTED, RESTORED = "finding", "vacuous", "corrected", "restored"
STATUSES = (FINDING, FAILS, UNDECIDED, VACUOUS, CORRECTED, RESTORED, HOLDS)
STATUS_WORDS = {
    FINDING: "fails on purpose",
    HOLDS: "holds",
    CORRECTED: "holds as corrected",
    VACUOUS: "holds vacuously",
    RESTORED: "restored reading",
    FAILS: "fails",
    UNDECIDED: "undecided",
}


def claim_status(result: ClaimResult, all_n: bool = False) -> str:
    """One of STATUSES; the verdict first, then how the claim holds."""
    if result.claim.finding and result.status == FAILS:
        return FINDING
    if result.status != HOLDS:
        return result.status
    if all_n and result.proofs and not result.proved_all_n:
        return UNDECIDED
    if result.vacuous:
        return VACUOUS
    if result.claim.origin == "corrected":
        return CORRECTED
    if result.claim.origin == "restored":
        return RESTORED
    return HOLDS


@dataclass(frozen=True)
class Finding:
    kind: str  # a status, or "domain" / "added"
    heading: str
    text: str  # Unicode prose; claim ids become links


def _ids(results) -> str:
    ids = [r.claim.id for r in results]
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


# The verifier's messages name nodes as the claim language does (xhat[1],
# sigma); prose names them by their letters.
_LETTERS = {"xhat": "x̂", "sigma": "σ", "mu": "μ", "eps": "ε", "gamma": "γ", "beta": "β"}


# A message that quotes a whole expression in SymPy's syntax ('gamma*(x_i -
# sum(x_m, m)/n)/sqrt(...)' divides by zero) printed code in the findings box:
# the expression is named, not quoted.
_QUOTED_EXPRESSION = re.compile(r"'[^']*[*/(][^']*'")


def _lettered(message: str) -> str:
    message = _QUOTED_EXPRESSION.sub("a side", message)

    def one(m):
        name, index = m.group(1), m.group(2)
        letter = _LETTERS.get(name, name)
        return f"{letter}_{index}" if index else letter

    return re.sub(r"\b([A-Za-z]+)(?:\[(\w+)\])?", one, message)


def _minus(value: str) -> str:
    """A number as prose writes it: a minus sign, not a hyphen."""
    return value.replace("-", "−")


def _checked_at(document, ns) -> str:
    """'n = 1..8', or 'N = 1..3, E = 1..3' for a model of several sizes."""
    if len(document.size_names) > 1:
        return _format_ns(ns)
    return f"{document.size} = {_format_ns(ns)}"


def counterexample_text(step, size: str = "n") -> str:
    """Where one step fails, in a sentence (the point, then both sides' values);
    ``size`` is the document's name for n."""
    cx = step.counterexample
    where_n = str(cx.n) if isinstance(cx.n, Point) else f"{size} = {cx.n}"
    at = [where_n, *(f"{k} = {v}" for k, v in cx.indices)]
    point = ", ".join(f"{k} = {_minus(v)}" for k, v in cx.point)
    nodes = ", ".join(f"{k} ≈ {_minus(v)}" for k, v in cx.nodes)
    where = ", ".join(at) + (f", at {point}" if point else "") + (f" ({nodes})" if nodes else "")
    return f"{where}, the left side is {_minus(cx.lhs)} and the right side is {_minus(cx.rhs)}"


def _where(result: ClaimResult, verdict, step) -> str:
    claim = result.claim
    # Cases are numbered: two cases of a claim may share a label ("all i").
    position = next(p for p, steps in enumerate(by_position(claim, verdict.steps)) if step in steps)
    what = f"case {position + 1}, " if claim.kind == "cases" else ""
    return what + (f"step {step.step}" if claim.cases[0].steps > 1 else "the equation")


def _failure_text(result: ClaimResult, n: str) -> str:
    """'id: title. It first fails at n = 2, step 3: at <the counterexample>.'"""
    bad = result.first_failure
    step = bad.first_failure
    where = str(bad.n) if isinstance(bad.n, Point) else f"{n} = {bad.n}"
    text = f"{result.claim.id}: {result.claim.title}. It first fails at {where}, "
    text += _where(result, bad, step)
    if step.counterexample is not None:
        return text + f": at {counterexample_text(step, n)}."
    return text + "."


def findings(document_result: DocumentResult) -> list[Finding]:
    """The findings of one document, most important first."""
    results = list(document_result.claims)
    all_n = document_result.all_n
    document = document_result.document
    several = len(document.size_names) > 1
    n = "size" if several else document.size
    by_status: dict[str, list[ClaimResult]] = {s: [] for s in STATUSES}
    for r in results:
        by_status[claim_status(r, all_n)].append(r)
    out = []
    for r in by_status[FINDING]:
        text = _failure_text(r, n) + " The claim file marks it as wrong on purpose."
        text += f" {r.claim.note}" if r.claim.note else ""
        out.append(Finding(FINDING, "Fails on purpose (a finding)", text))
    for r in results:
        if r.claim.finding and r.status == HOLDS:
            text = f"{r.claim.id}: {r.claim.title}. The claim file marks it as wrong on purpose"
            text += f" (a finding), but it holds at every {n} checked."
            out.append(Finding(FAILS, "Expected to fail, but holds", text))
    for r in by_status[FAILS]:
        out.append(Finding(FAILS, "Fails", _failure_text(r, n)))
    if by_status[UNDECIDED]:
        rows = by_status[UNDECIDED]
        reasons = sorted({v.reason for r in rows for v in r.verdicts if v.reason})
        text = f"{_ids(rows)}: neither shown equal nor separated by a point"
        if all(r.status == HOLDS for r in rows):
            text = f"{_ids(rows)}: they hold for every {n} checked, but no proof for all {n}"
            text += " was found"
        text += (": " + "; ".join(reasons) + ".") if reasons else "."
        out.append(Finding(UNDECIDED, "Undecided", text))
    holding = [r for r in results if claim_status(r, all_n) not in (FINDING, FAILS, UNDECIDED)]
    total = len(results) - len(by_status[FINDING])
    other = " other" if by_status[FINDING] else ""
    checked = sorted({v.n for r in results for v in r.verdicts if v.status != NOT_APPLICABLE})
    if holding:
        proved = [r for r in holding if r.proved_all_n]
        scope = f"at {_checked_at(document, checked)}"
        if len(proved) == len(holding) and proved:
            scope += f" and proved for every {n} by the general-n prover"
        elif proved:
            scope += f"; {len(proved)} of them are also proved for every {n}"
        lead = "All" if len(holding) == total else f"{len(holding)} of"
        text = f"{lead} {total}{other} claims hold: each is checked exactly {scope}."
        if total == 1:  # beside a finding: not "All 1 other claims hold"
            text = f"The{other} claim holds: it is checked exactly {scope}."
        out.append(Finding(HOLDS, "Holds", text))
    for r in by_status[CORRECTED]:
        claim = r.claim
        literal = next((x for x in results if x.claim.id == claim.corrects), None)
        verdict = "holds" if literal is not None and literal.holds else "fails"
        text = (
            f"{claim.corrects}, the claim as printed, {verdict}; {claim.id} is the corrected "
            f"claim, and it holds."
        )
        notes = [x.claim.note for x in (literal, r) if x is not None and x.claim.note]
        text += "".join(f" {n}" for n in notes)
        out.append(Finding(CORRECTED, "Holds only as corrected", text))
    if by_status[VACUOUS]:
        rows = by_status[VACUOUS]
        text = (
            f"{_ids(rows)}: both sides are identically 0 at every {n} checked, so "
            f"{'it says' if len(rows) == 1 else 'they say'} nothing about the functions "
            "in them, and using such a claim in place of the unsummed one drops its term."
        )
        text += "".join(f" {r.claim.note}" for r in rows if r.claim.note)
        out.append(Finding(VACUOUS, "Holds vacuously", text))
    if by_status[RESTORED]:
        rows = by_status[RESTORED]
        text = f"{_ids(rows)}: the source does not state {'it' if len(rows) == 1 else 'these'}"
        text += " in full; what is checked is a reading of it."
        text += "".join(f" {r.claim.id}: {r.claim.note}" for r in rows if r.claim.note)
        out.append(Finding(RESTORED, "Restored readings", text))
    added = [r for r in results if r.claim.origin == "added"]
    if added:
        text = (
            f"{_ids(added)} {'is' if len(added) == 1 else 'are'} not in the document: "
            "the claim file adds them to make an implicit step explicit."
        )
        out.append(Finding("added", "Added", text))
    out.append(Finding("domain", "Domain", domain_text(document_result)))
    return out


def domain_text(document_result: DocumentResult) -> str:
    """For which n the claims are checked and why the others are left out; ε or not."""
    document = document_result.document
    n = "size" if len(document.size_names) > 1 else document.size
    not_applicable: dict = {}
    for r in document_result.claims:
        for v in r.verdicts:
            if v.status == NOT_APPLICABLE and v.n not in not_applicable:
                not_applicable[v.n] = _lettered(v.reason)
    checked = [n for n in document_result.ns if n not in not_applicable]
    text = f"{_checked_at(document, checked)} checked exactly"
    if document_result.all_n:
        if n == "size":
            text += ", and every combination of sizes by proof (where the claim is defined)"
        else:
            text += f", every {n} ≥ 1 by proof (where the claim is defined)"
    text += "."
    for point, reason in sorted(not_applicable.items()):
        text += f" Not applicable at {_checked_at(document, [point])}: {reason}."
    text += " The model has ε ≥ 0." if document.eps else " The model has no ε."
    return text
