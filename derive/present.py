"""Results as people and machines read them: the text of ``verify``, its JSON,
and the words a claim's verdict is said in (for the CLI and the Python API)."""

from __future__ import annotations

from .results import (
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_UNDECIDED,
    FAILS,
    HOLDS,
    UNDECIDED,
    WORDS,
    combine_exit_codes,
)
from .sizes import at, json_of


def _where(claim, step) -> str:
    what = f"case {step.case}, " if claim.kind == "cases" else ""
    if claim.kind == "chain" or len(claim.cases[0].sides) > 2:
        return what + f"step {step.step}"
    return what + "the equation"


def verdict(c) -> str:
    """A claim's verdict as ``verify`` prints it: PASS, FAIL or UNDECIDED (a claim
    that holds at every n checked but was not proved for all n, when asked, is
    UNDECIDED)."""
    status = c.status
    if c.proofs and status not in (FAILS, UNDECIDED) and not c.proved_all_n:
        status = UNDECIDED
    return WORDS[status]


def summary(c, several: bool = False) -> str:
    """'holds for n = 1..8; proved for all n', and the rest ``verify`` says of a claim
    (several: the model has several sizes, and 'all n' is 'all sizes')."""
    text = c.summary()
    every = "all sizes" if several else "all n"
    if c.proofs:
        text += f"; proved for {every}" if c.proved_all_n else f"; NOT proved for {every}"
    if c.vacuous:
        text += "; vacuously: both sides are identically 0"
    if c.outcome:
        text += f"; {c.outcome}"
    return text


def details(c) -> list[str]:
    """What ``verify`` prints under a claim's line: why it is undecided, where it
    first fails and the counterexample, and the steps not proved for all n."""
    lines = sorted({v.reason for v in c.verdicts if v.reason and v.status == UNDECIDED})
    bad = c.first_failure
    if bad is not None:
        step = bad.first_failure
        lines.append(f"first failure at {at(bad.n)}: {_where(c.claim, step)}")
        if step.counterexample is not None:
            lines.append(f"counterexample: {step.counterexample.describe()}")
    for p in c.proofs:
        if not p.proved:
            left = p.reason or f"could not reduce to 0; left: {p.proof.residual}"
            lines.append(f"all n, {p.case}, step {p.step}: {left}")
    return lines


def print_result(doc_result, out) -> None:
    doc = doc_result.document
    print(f"{doc.path}: {doc.title}", file=out)
    not_applicable = sorted(
        {(v.n, v.reason) for c in doc_result.claims for v in c.verdicts if v.status == "n/a"}
    )
    for n, reason in not_applicable:
        print(f"  not applicable at {at(n)}: {reason}", file=out)
    width = max(len(c.claim.id) for c in doc_result.claims)
    for c in doc_result.claims:
        several = len(doc.size_names) > 1
        line = f"{c.claim.id:<{width}}  {c.claim.title} — {summary(c, several)}"
        print(f"  {verdict(c)} {line}", file=out)
        for line in details(c):
            print(f"       {line}", file=out)


def result_json(doc_result) -> dict:
    """The verdicts of one document, for machines (``--format json``)."""
    claims = []
    for c in doc_result.claims:
        code = c.exit_code(doc_result.all_n)
        claims.append(
            {
                "id": c.claim.id,
                "verdict": verdict(c),
                "exit_code": code,
                "expect": c.claim.expect,
                "as_expected": c.as_expected(doc_result.all_n),
                "vacuous": c.vacuous,
                "per_n": [
                    {
                        "n": json_of(v.n),
                        "status": v.status,
                        "reason": v.reason,
                        "steps": [
                            {
                                "case": s.case,
                                "step": s.step,
                                "status": s.status,
                                "reason": s.reason,
                                "counterexample": (
                                    s.counterexample.describe() if s.counterexample else None
                                ),
                            }
                            for s in v.steps
                        ],
                    }
                    for v in c.verdicts
                ],
                "all_n": (
                    None
                    if not c.proofs
                    else {
                        "proved": c.proved_all_n,
                        "steps": [
                            {"case": p.case, "step": p.step, "proved": p.proved, "reason": p.reason}
                            for p in c.proofs
                        ],
                    }
                ),
            }
        )
    doc = doc_result.document
    return {
        "path": doc.path,
        "id": doc.id,
        "ns": [json_of(n) for n in doc_result.ns],
        "sizes": list(doc.size_names),
        "exit_code": doc_result.exit_code,
        "claims": claims,
    }


CLOSING = {
    EXIT_OK: "all claims hold",
    EXIT_FAIL: "some claims FAIL",
    EXIT_UNDECIDED: "no claim fails, but some are UNDECIDED or not proved for all n",
    EXIT_BAD_INPUT: "some files cannot be read (the errors are above)",
}


def closing(results, code: int) -> str:
    """The last line of ``verify``: CLOSING, and what the findings gave."""
    if code == EXIT_BAD_INPUT:  # then what the files that could be read gave
        rest = closing(results, combine_exit_codes(r.exit_code for r in results))
        return f"{CLOSING[code]}; the others: {rest}"
    claims = [c for r in results for c in r.claims]
    holding = [c.claim.id for c in claims if c.claim.finding and c.status == HOLDS]
    found = sum(c.claim.finding and c.status == FAILS for c in claims)
    text = CLOSING[code]
    if holding:  # exit 1, but not (only) because a claim fails
        verb = "holds" if len(holding) == 1 else "hold"
        text = f"expected to fail, but {verb}: {', '.join(holding)}"
        if any(c.status == FAILS and not c.claim.finding for c in claims):
            text = f"{CLOSING[EXIT_FAIL]}; {text}"
    if found:
        text += f" ({found} finding{'s fail' if found > 1 else ' fails'}, as expected)"
    return text
