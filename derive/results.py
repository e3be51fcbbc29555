"""Verdicts and their wording, in one place for the CLI, the JSON output and the report.

A step at one n is HOLDS (exactly equal, confirmed numerically), FAILS (a
point separates the sides), UNDECIDED (neither could be established; the
reason says why) or NOT_APPLICABLE (the claim names a position or a value that
does not exist at that n).  A claim's verdict is the worst of its steps over
every n: FAILS before UNDECIDED before HOLDS; a claim that is only ever not
applicable is UNDECIDED, since nothing about it was checked.

A *finding* (``expect = "fails"``, ``Claim.finding``) is a claim wrong on
purpose: FAIL is what it is expected to give, so it exits 0, and HOLDS is the
error (exit 1).  Its verdict is still the verdict: only the exit code and the
wording of the outcome change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .claims import Claim, Document
from .numeric import Counterexample
from .sizes import Point

HOLDS, FAILS, UNDECIDED, NOT_APPLICABLE = "holds", "fails", "undecided", "n/a"
# The first word of a claim's line in the CLI, by verdict.
WORDS = {HOLDS: "PASS", FAILS: "FAIL", UNDECIDED: "UNDECIDED", NOT_APPLICABLE: "N/A"}
# How a report phrases a verdict per n ("FAILS for n = 2..3").
PHRASES = {HOLDS: "holds", FAILS: "FAILS", UNDECIDED: "UNDECIDED", NOT_APPLICABLE: "n/a"}
EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_UNDECIDED = 0, 1, 2, 3
# A finding's verdict, said against what it is expected to give.
FINDING_OUTCOMES = {
    FAILS: "fails, as expected (finding)",
    HOLDS: "expected to fail (finding), but holds at every n checked",
    UNDECIDED: "expected to fail (finding), but undecided",
}


def worst(statuses) -> str:
    statuses = set(statuses)
    for status in (FAILS, UNDECIDED, HOLDS):
        if status in statuses:
            return status
    return UNDECIDED  # nothing checked at all


@dataclass(frozen=True)
class StepVerdict:
    case: str  # the case label, e.g. "i != j"
    step: int  # which "=" of the case, from 1
    status: str
    counterexample: Counterexample | None = None
    reason: str = ""
    vacuous: bool = False  # holds because both sides are identically 0

    @property
    def holds(self) -> bool:
        return self.status == HOLDS


@dataclass(frozen=True)
class NVerdict:
    n: int
    status: str
    reason: str = ""  # why n/a or undecided
    steps: tuple[StepVerdict, ...] = ()

    @property
    def first_failure(self) -> StepVerdict | None:
        return next((s for s in self.steps if s.status == FAILS), None)

    @property
    def first_undecided(self) -> StepVerdict | None:
        return next((s for s in self.steps if s.status == UNDECIDED), None)


@dataclass(frozen=True)
class AllNStep:
    """The general-n prover's verdict on one "=" of a claim."""

    case: str
    step: int
    proof: object | None  # alln.Proof; None where the side cannot be read for symbolic n
    reason: str = ""

    @property
    def proved(self) -> bool:
        return self.proof is not None and self.proof.proved


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdicts: tuple[NVerdict, ...]
    proofs: tuple[AllNStep, ...] = ()  # all-n proofs, one per (case, step), when asked for
    # Per case, when asked for (verify's normal_forms): what each side reduces to for
    # a symbolic n (None for a side without one), a reason string where the sides
    # cannot be read, or None where a step of the case does not hold (nothing to show).
    normal_forms: tuple = ()

    @property
    def vacuous(self) -> bool:
        """Holds only because every side is identically 0, at every n checked."""
        steps = [s for v in self.verdicts for s in v.steps]
        return self.holds and bool(steps) and all(s.vacuous for s in steps)

    @property
    def status(self) -> str:
        return worst(v.status for v in self.verdicts if v.status != NOT_APPLICABLE)

    @property
    def holds(self) -> bool:
        return self.status == HOLDS

    def case_holds(self, position: int) -> bool:
        """No step of the case at that position fails or is undecided, at any n."""
        return all(
            s.status not in (FAILS, UNDECIDED)
            for v in self.verdicts
            for s in by_position(self.claim, v.steps)[position]
        )

    @property
    def proved_all_n(self) -> bool:
        return bool(self.proofs) and all(p.proved for p in self.proofs)

    @property
    def first_failure(self) -> NVerdict | None:
        return next((v for v in self.verdicts if v.status == FAILS), None)

    @property
    def first_undecided(self) -> NVerdict | None:
        return next((v for v in self.verdicts if v.status == UNDECIDED), None)

    def summary(self, words=None) -> str:
        """'holds for n = 2..8; n/a for n = 1', with optional words per status."""
        parts = []
        for status in (HOLDS, FAILS, UNDECIDED, NOT_APPLICABLE):
            ns = [v.n for v in self.verdicts if v.status == status]
            if ns:
                word = (words or {}).get(status, status)
                parts.append(f"{word} for {at_all(ns)}")
        return "; ".join(parts)

    @property
    def outcome(self) -> str:
        """A finding's verdict against its expectation (FINDING_OUTCOMES); "" otherwise."""
        return FINDING_OUTCOMES[self.status] if self.claim.finding else ""

    def as_expected(self, all_n: bool) -> bool:
        return self.exit_code(all_n) == EXIT_OK

    def exit_code(self, all_n: bool) -> int:
        if self.claim.finding:
            # no proof for all n is asked of a finding: a counterexample settles it
            return {FAILS: EXIT_OK, HOLDS: EXIT_FAIL}.get(self.status, EXIT_UNDECIDED)
        if self.status == FAILS:
            return EXIT_FAIL
        if self.status != HOLDS or (all_n and not self.proved_all_n):
            return EXIT_UNDECIDED
        return EXIT_OK


@dataclass(frozen=True)
class DocumentResult:
    document: Document
    ns: tuple  # ints, or sizes.Point for a model of several sizes
    claims: tuple[ClaimResult, ...] = field(default_factory=tuple)
    all_n: bool = False
    derivation: object = None  # derivation.Derivation when asked for, or why there is none
    limited: bool = False  # a limit (time, memory, the run's budget) set some verdict

    @property
    def holds(self) -> bool:
        return self.exit_code == EXIT_OK

    @property
    def exit_code(self) -> int:
        return combine_exit_codes(c.exit_code(self.all_n) for c in self.claims)


def by_position(claim, steps) -> list[list]:
    """A claim's step verdicts (or proofs) split by case position.

    Verdicts and proofs name their case by its label, and two cases may share
    one (two "all i" cases of one claim): grouped by label, their verdicts
    would merge.  Each case contributes its steps in order, numbered from 1,
    and cases with one label have the same indices, so at one n either all of
    them have steps or none has: a step numbered no higher than the one before
    it, or under another label, starts the next case."""
    out: list[list] = [[] for _ in claim.cases]
    pos, last = 0, 0
    for s in steps:
        if not hasattr(s, "case"):  # a bare proof, not tied to a case
            continue
        while pos < len(claim.cases) and (
            claim.cases[pos].label != s.case or s.step <= last or s.step > claim.cases[pos].steps
        ):
            pos, last = pos + 1, 0
        if pos == len(claim.cases):
            break
        out[pos].append(s)
        last = s.step
    return out


def combine_exit_codes(codes) -> int:
    codes = set(codes)
    for code in (EXIT_BAD_INPUT, EXIT_FAIL, EXIT_UNDECIDED):
        if code in codes:
            return code
    return EXIT_OK


def at_all(ns) -> str:
    """'n = 2..4, 8', or for points of several sizes 'T = 1..3, E = 1..2'."""
    ns = list(ns)
    if ns and isinstance(ns[0], Point):
        return format_ns(ns)
    return f"n = {format_ns(ns)}"


def format_ns(ns) -> str:
    """[2, 3, 4, 8] -> '2..4, 8'; points that fill a grid -> 'T = 1..3, E = 1..2', and
    other points listed: '(T, E) = (1, 1), (2, 3)'."""
    ns = sorted(ns)
    if not ns:
        return "none"
    if isinstance(ns[0], Point):
        names = [k for k, _ in ns[0].values]
        axes = [sorted({p[k] for p in ns}) for k in names]
        count = 1
        for axis in axes:
            count *= len(axis)
        if count == len(set(ns)):
            return ", ".join(f"{k} = {format_ns(a)}" for k, a in zip(names, axes, strict=True))
        shown = ", ".join("(" + ", ".join(str(v) for _, v in p.values) + ")" for p in ns)
        return f"({', '.join(names)}) = {shown}"
    out, start, prev = [], ns[0], ns[0]
    for v in [*ns[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}..{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)
