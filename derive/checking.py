"""Checking claims: per n, per case, per "=" step, with both opinions.

For each concrete n the sides are read over the document's model, then

* the exact engine (``exact.py``) decides whether they are equal: a zero
  remainder modulo the roots' relations means equal wherever defined;
* the numeric side (``numeric.py``) confirms it at a random point, or, when
  the exact engine cannot show equality, looks for a point that separates the
  sides: that point is the counterexample of a FAIL.

A step that neither establishes is UNDECIDED, with the reason; the two
opinions disagreeing is UNDECIDED too, never a verdict.  A side that names a
position beyond n, or a value that is undefined everywhere at that n (x̂ at
n = 1 without ε), makes the claim not applicable at that n.

The permutation shortcut (one representative index assignment per orbit)
is used only where it is sound: the model and every side of the case name
positions through bare indices alone (``language.positions_by_index_only``).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass

import sympy as sp

from . import alln
from .claims import Claim, Document, side_fields
from .exact import Field, Undecidable
from .language import (
    CASES,
    N_SYMBOL,
    LanguageError,
    PositionError,
    index_symbol,
    parse,
    parse_side,
    representatives,
)
from .language import positions_by_index_only as _by_index
from .model import Model, ModelError
from .nodes import Undefined
from .numeric import POINT_TRIES, Numeric
from .results import (
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    UNDECIDED,
    AllNStep,
    ClaimResult,
    DocumentResult,
    NVerdict,
    StepVerdict,
    worst,
)
from .sizes import SizeError, at

DEFAULT_NS = tuple(range(2, 9))


CONTRADICTED = (
    "internal error: a proof for all n contradicts a certified counterexample; the proof is "
    "not trusted"
)


class VerifierError(RuntimeError):
    """A side cannot be read at some n (an input error found late)."""


def assignments(label: str, n, *, full: bool, sizes=None):
    """Free-index values to check for a case: every one, or one per orbit.

    n: the one size every free index ranges over, or a dict of each free index's;
    sizes: the name of the size each free index ranges over, where there are several."""
    free, relation = CASES[label]
    if not free:
        return [{}]
    bounds = n if isinstance(n, dict) else dict.fromkeys(free, n)
    if not full:
        orbits = representatives(label)
        if sizes and len({sizes[k] for k in free}) > 1:
            # i and j over two sizes, permuted independently: (1, 1) reaches every (i, j)
            orbits = orbits[:1]
        return [a for a in orbits if all(v <= bounds[k] for k, v in a.items())]
    out = []
    for values in itertools.product(*(range(1, int(bounds[k]) + 1) for k in free)):
        if relation == "eq" and len(set(values)) != 1:
            continue
        if relation == "ne" and len(set(values)) == 1:
            continue
        out.append(dict(zip(free, values, strict=True)))
    return out


def symmetric_case(model: Model, sides) -> bool:
    """The permutation shortcut is sound for these sides over this model."""
    declared = frozenset(model.spec.declared)
    return model.symmetric and all(_by_index(t, declared) for t in sides)


@dataclass
class Side:
    expr: object
    form: object  # exact (numerator, denominator), or an Undecidable
    spot: object  # value at the shared spot point, or None where undefined there
    conditions: tuple = ()  # where it has a value (language.parse_side)


class Checker:
    """Everything one concrete model needs: the exact field, the numeric side and
    a cache of sides (claims share them: the direct derivative, the closed form)."""

    def __init__(self, model: Model, seed=0, centre=True):
        self.model = model
        self.field = Field(model, centre=centre)
        self.numeric = Numeric(model)
        self.seed = seed
        self.spot = self.numeric.random_point(random.Random(f"spot/{model.n}/{seed}"))
        self._sides: dict = {}

    def side(self, text: str, assignment: dict) -> Side:
        key = (text, tuple(sorted(assignment.items())))
        hit = self._sides.get(key)
        if hit is None:
            try:
                expr, touched, divisors, conditions = parse_side(text, self.model, assignment)
            except PositionError as exc:
                hit = exc
            else:
                try:
                    self._defined(touched, divisors)
                    form = self.field.form(expr)
                except Undecidable as exc:
                    form = exc
                except Undefined as exc:
                    reason = str(exc)
                    if " at n = " not in reason:
                        reason += f" at {at(self.model.n)}"
                    form = Undefined(reason)
                try:
                    spot = self.numeric.evaluate(expr, self.spot, conditions=conditions)
                except Undefined:
                    spot = None
                hit = Side(expr, form, spot, conditions)
            self._sides[key] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit

    def _defined(self, touched, divisors):
        """Raise Undefined if a named node, or a divisor, has no value anywhere at this n."""
        for atom in sorted(touched, key=str):
            self.field.form(atom)
        for d in divisors:
            try:  # a nonzero value at the spot point already proves d is not 0
                if self.numeric.evaluate(d, self.spot) != 0:
                    continue
            except Undefined:
                pass
            try:
                zero = self.field.is_zero(self.field.form(d))
            except Undecidable:
                continue
            if zero:
                raise Undefined(f"divides by {d}, which is 0 at {at(self.model.n)}")

    def decide(self, a: Side, b: Side, indices: dict, rng) -> StepVerdict:
        """HOLDS / FAILS / UNDECIDED for one "=" (case and step filled in by the caller)."""
        for s in (a, b):
            if isinstance(s.form, Undefined):
                return StepVerdict("", 0, NOT_APPLICABLE, reason=str(s.form))
        reason = ""
        if isinstance(a.form, Undecidable) or isinstance(b.form, Undecidable):
            equal = False
            reason = str(a.form if isinstance(a.form, Undecidable) else b.form)
        else:
            try:
                equal = self.field.equal(a.form, b.form)
            except Undefined as exc:
                return StepVerdict("", 0, NOT_APPLICABLE, reason=str(exc))
        conditions = a.conditions + b.conditions
        if equal:
            point = self._point_somewhere(a, b, rng)
            if point is None:
                return StepVerdict(
                    "", 0, UNDECIDED, reason="no point found where both sides are defined"
                )
            spot = point is self.spot and self.numeric.agree(a.spot, b.spot)
            if not spot and not self.numeric.agree_at(a.expr, b.expr, point, conditions):
                values = [self.numeric.evaluate(s.expr, point) for s in (a, b)]
                return StepVerdict(
                    "",
                    0,
                    UNDECIDED,
                    reason=f"the exact check says equal but the sides differ numerically "
                    f"({values[0]} vs {values[1]}): please report this",
                )
            # Vacuous: both sides are identically 0 though neither is written as 0
            # (a claim that something is 0 is not vacuous; it is the point).
            literal = a.expr == 0 or b.expr == 0
            return StepVerdict("", 0, HOLDS, vacuous=not literal and self._is_zero(a))
        cx = self.numeric.counterexample(a.expr, b.expr, indices, rng, conditions)
        if cx is not None:
            return StepVerdict("", 0, FAILS, counterexample=cx)
        return StepVerdict("", 0, UNDECIDED, reason=reason or self._unshown(a, b))

    def _unshown(self, a: Side, b: Side) -> str:
        """Why a nonzero remainder is not a verdict: the generators it is in may be
        dependent, and no point where both sides are defined separates them."""
        exprs = (a.expr, b.expr)
        kinds = {node.kind.name for node in self.model.nodes.values()}
        kinds |= {"exp" for e in exprs if e.has(sp.exp)} | {"log" for e in exprs if e.has(sp.log)}
        what = [
            "square roots of dependent or perfect-square radicands",
            *(["exponentials whose arguments may be dependent"] * ("exp" in kinds)),
            *(["logarithms whose arguments may be multiplicatively dependent"] * ("log" in kinds)),
        ]
        return (
            f"the exact engine could not show equality ({'; or '.join(what)}?) and no point "
            "where both sides are defined separates them"
        )

    def _is_zero(self, side: Side) -> bool:
        """Identically 0 (a nonzero value at the spot point settles it at no cost)."""
        if side.spot is not None and not self.numeric.agree(side.spot, 0):
            return False
        return self.field.is_zero(side.form)

    def _point_somewhere(self, a: Side, b: Side, rng):
        """A point where both sides are defined: the spot point if it is one."""
        if a.spot is not None and b.spot is not None:
            return self.spot
        conditions = a.conditions + b.conditions
        for _ in range(POINT_TRIES):
            point = self.numeric.random_point(rng)
            try:
                for s in (a, b):
                    self.numeric.evaluate(s.expr, point, conditions=conditions)
            except Undefined:
                continue
            return point
        return None


def check_claim(claim: Claim, checker: Checker, *, full=False) -> NVerdict:
    model = checker.model
    n = model.n
    rng = random.Random(f"{claim.id}/{n}/{checker.seed}")
    steps = []
    for no, case in enumerate(claim.cases, 1):
        use_all = full or not symmetric_case(model, case.sides)
        per_step: dict[int, StepVerdict] = {}
        fields = side_fields(claim, no)
        names = free_size_names(claim, no, model)
        bounds = {k: model.size_of(v) for k, v in names.items()} if names else model.size
        todo = assignments(case.label, bounds, full=use_all, sizes=names)
        if not todo:  # this case is empty at this n; the claim's other cases still count
            continue
        for a in todo:
            try:
                sides = [checker.side(t, a) for t in case.sides]
            except PositionError as exc:
                return NVerdict(n, NOT_APPLICABLE, str(exc))
            except (LanguageError, ModelError) as exc:
                name = next(
                    (f for f, t in zip(fields, case.sides, strict=True) if _fails(checker, t, a)),
                    fields[0],
                )
                raise VerifierError(f"claim {claim.id!r}, field {name!r}: {exc}") from None
            for k in range(case.steps):
                if per_step.get(k) is not None and per_step[k].status == FAILS:
                    continue
                v = checker.decide(sides[k], sides[k + 1], a, rng)
                if v.status == NOT_APPLICABLE:
                    return NVerdict(n, NOT_APPLICABLE, v.reason)
                if k not in per_step or _rank(v) > _rank(per_step[k]):
                    per_step[k] = v
                elif v.status == HOLDS and not v.vacuous:  # vacuous only if at every index
                    per_step[k] = v
        steps += [
            StepVerdict(case.label, k + 1, v.status, v.counterexample, v.reason, v.vacuous)
            for k, v in sorted(per_step.items())
        ]
    if not steps:
        labels = " or ".join(c.label for c in claim.cases)
        return NVerdict(n, NOT_APPLICABLE, f"no indices with {labels} exist at {at(n)}")
    status = worst(s.status for s in steps)
    reason = next((s.reason for s in steps if s.status == UNDECIDED), "")
    return NVerdict(n, status, reason, tuple(steps))


def free_size_names(claim: Claim, case_no: int, model: Model) -> dict:
    """The name of the size each free index of a case ranges over; {} for one size."""
    case = claim.cases[case_no - 1]
    free, relation = CASES[case.label]
    if not model.spec.several:
        return {}
    fields = side_fields(claim, case_no)
    field = fields[0]
    for k, field in enumerate(fields):  # the first side whose uses disagree with those before
        try:
            found = model.index_sizes(case.sides[: k + 1])
        except (SizeError, LanguageError) as exc:
            raise VerifierError(f"claim {claim.id!r}, field {field!r}: {exc}") from None
    field = fields[0]
    for name in free:
        if name not in found:
            raise VerifierError(
                f"claim {claim.id!r}, field {field!r}: cannot tell what size index {name} "
                "ranges over: use it in an axis of an array"
            )
    if relation is not None and found["i"] != found["j"]:
        raise VerifierError(
            f"claim {claim.id!r}, field {field!r}: {case.label!r} compares i (over "
            f"{found['i']}) with j (over {found['j']})"
        )
    return {name: found[name] for name in free}


def _rank(v: StepVerdict) -> int:
    return {HOLDS: 0, UNDECIDED: 1, FAILS: 2}[v.status]


def _fails(checker, text, assignment) -> bool:
    try:
        parse(text, checker.model, assignment)
    except (LanguageError, ModelError):
        return True
    return False


def prove_claim_all_n(claim: Claim, document: Document) -> tuple[AllNStep, ...]:
    """Each "=" of the claim for a symbolic n, with the general-n prover."""
    model = document.model_for(N_SYMBOL)
    out = []
    for case in claim.cases:
        free, relation = CASES[case.label]
        i, j = index_symbol("i"), index_symbol("j")
        assignment = {name: index_symbol(name) for name in free}
        if relation == "eq":
            assignment["j"] = i
        ctx = alln.Context.make(
            model,
            in_range=alln.free_ranges(model, case),
            distinct=[(i, j)] if relation == "ne" else (),
        )
        try:
            sides = [parse(t, model, assignment) for t in case.sides]
        except (LanguageError, ModelError) as exc:
            out += [AllNStep(case.label, k + 1, None, str(exc)) for k in range(case.steps)]
            continue
        for k in range(case.steps):
            out.append(AllNStep(case.label, k + 1, alln.prove_equal(sides[k], sides[k + 1], ctx)))
    return tuple(out)


def case_normal_forms(document: Document, case):
    """What every side of a case reduces to for a symbolic n (alln.normal_forms), or
    why the sides cannot be read there."""
    try:
        return tuple(alln.normal_forms(document, case))
    except (LanguageError, ModelError, RuntimeError) as exc:
        return f"no normal form for a symbolic n: {exc}"


def verify_claims(
    document: Document,
    ns=DEFAULT_NS,
    *,
    full=False,
    seed=0,
    all_n=False,
    centre=True,
    normal_forms=False,
    claims=None,
):
    """Each claim's result in turn (the checkers, and their caches, shared by all claims).

    normal_forms: also each holding case's normal forms, for the report.
    claims: the claims to check, in place of the document's (an iterable, read
    lazily: the next claim is taken once the result before it is yielded)."""
    checkers: dict = {}
    ns = document.points(ns)
    for claim in document.claims if claims is None else claims:
        verdicts = []
        for n in ns:
            if n not in checkers:
                checkers[n] = Checker(document.model_for(n), seed, centre=centre)
            try:
                verdicts.append(check_claim(claim, checkers[n], full=full))
            except VerifierError as exc:
                exc.n = n  # which n, so that parallel checks report the one a single would
                raise
        proofs = prove_claim_all_n(claim, document) if all_n else ()
        # A counterexample is certified: a proof of the same step that contradicts it
        # is wrong, and is not trusted.
        failing = {(s.case, s.step) for v in verdicts for s in v.steps if s.status == FAILS}
        proofs = tuple(
            dataclasses.replace(p, proof=None, reason=CONTRADICTED)
            if p.proved and (p.case, p.step) in failing
            else p
            for p in proofs
        )
        result = ClaimResult(claim, tuple(verdicts), proofs)
        if normal_forms:
            forms = tuple(
                case_normal_forms(document, case) if result.case_holds(pos) else None
                for pos, case in enumerate(claim.cases)
            )
            result = dataclasses.replace(result, normal_forms=forms)
        yield result


def verify_document(document: Document, ns=DEFAULT_NS, **options) -> DocumentResult:
    """Every claim of a document, in this process, with verify_claims's options (for
    trusted documents; the CLI runs a stranger's file through ``bounded.verify_many``)."""
    ns = document.points(ns, options.pop("sizes", None))
    results = tuple(verify_claims(document, ns, **options))
    return DocumentResult(document, tuple(ns), results, all_n=bool(options.get("all_n")))
