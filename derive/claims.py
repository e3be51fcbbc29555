"""Claim records and the TOML files they are written in.

A document file has one ``[document]`` table, a list of ``[[claims]]``, and
optionally a ``[model]`` (spec.py) and an ``[emit]`` table (emits.py).
A claim is one of three kinds, told apart by its fields:

* equation: ``lhs`` and ``rhs``;
* chain: ``steps``, three or more expressions, every ``=`` between
  neighbours checked on its own;
* cases: ``[[claims.cases]]``, each with its own ``for`` and sides.

``latex``, the statement as the document typesets it, is optional: without it
the report prints the statement from the sides (claimtex.statement_latex).

Every problem found while loading is a ``ClaimFileError`` naming the file, the
claim and the field, so the CLI can print it and exit 2.

Length: one module on purpose. Loading is one pass over untrusted TOML, and each
check stays beside the field it checks, so that every error names its field.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import emits, files, paths
from . import spec as specs
from .cache import key as cache_key
from .language import CASES, LanguageError, PositionError, parse, representatives
from .latexsafe import LatexError, check_latex
from .limits import MAX_CLAIM_FILE_BYTES, MAX_CLAIMS_PER_FILE
from .model import Model, ModelError
from .sizes import Point, grid

DOCUMENT_KEYS = {
    "id",
    "title",
    "citation",
    "model",
    "eps",
    "description",
    "closed_form",
    "references",
}
CLAIM_KEYS = {
    "id",
    "title",
    "latex",
    "for",
    "lhs",
    "rhs",
    "steps",
    "cases",
    "uses",
    "note",
    "origin",
    "corrects",
    "expect",
}
# Where a claim's statement comes from, as the document file declares it (the
# verifier cannot know: it only sees sides).  "document": the document states it
# as written; "restored": the source lost or elided it and the claim is a
# reading of what it must have said (the note says which choice was made);
# "corrected": the document's claim with a slip mended (``corrects`` names the
# claim that encodes it as printed); "added": not in the document, a claim the
# file adds to make an implicit step explicit.
ORIGINS = ("document", "restored", "corrected", "added")
CASE_KEYS = {"for", "lhs", "rhs", "steps", "latex"}
# What verifying a claim should give.  Every claim is expected to hold; a file
# writes expect = "fails" for a *finding*: a claim wrong on purpose (a slip in the
# source, kept with its counterexample), for which FAIL is the expected outcome.
# Nothing may build on a finding, so ``uses``, [emit] and closed_form refuse one.
EXPECT_HOLDS, EXPECT_FAILS = "holds", "fails"


class ClaimFileError(ValueError):
    def __init__(self, path, claim, field, message):
        self.path, self.claim, self.field = str(path), claim, field
        where = f"{self.path}"
        if claim is not None:
            where += f": claim {claim!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Case:
    label: str  # one of language.CASES
    sides: tuple[str, ...]  # two for an equation, three or more for a chain
    latex: str = ""

    @property
    def steps(self) -> int:
        return len(self.sides) - 1


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    latex: str  # the statement as the document writes it; "" when not given
    kind: str  # "equation" | "chain" | "cases"
    cases: tuple[Case, ...]
    uses: tuple[str, ...] = ()
    note: str = ""
    origin: str = "document"  # one of ORIGINS
    corrects: str = ""  # with origin "corrected": the id of the claim as printed
    expect: str = EXPECT_HOLDS  # EXPECT_FAILS: a finding

    @property
    def finding(self) -> bool:
        return self.expect == EXPECT_FAILS


@dataclass(frozen=True)
class Document:
    path: str
    id: str
    title: str
    citation: str
    model: str  # the preset ("xhat", "layer") or "declared" for a [model] table
    eps: bool
    claims: tuple[Claim, ...]
    description: str = ""
    closed_form: str = ""  # id of the claim the derived closed form is compared with
    references: tuple[str, ...] = ()  # works the document relies on, for the bibliography
    spec: specs.ModelSpec | None = None
    emit: emits.EmitSpec | None = None  # the [emit] table: what codegen writes from this file
    # sha256 of the file's bytes as read (load); "" for a document built in memory
    digest: str = dataclasses.field(default="", compare=False)

    @property
    def size(self) -> str:
        """The document's name for the batch size (n unless its model says)."""
        return self.spec.size if self.spec is not None else "n"

    @property
    def latex_size(self):
        """What claimtex and the report take for the size: its name, or the model
        itself where it has several (each sum is then over its index's size)."""
        spec = self.spec
        return spec if spec is not None and spec.several else self.size

    @property
    def size_names(self) -> tuple[str, ...]:
        """Every size of the model: (n,), or ("T", "E") for several."""
        return self.spec.size_names if self.spec is not None else ("n",)

    def points(self, ns=None, sizes=None) -> tuple:
        """Where the claims are checked: ns itself for a one-size model; with several
        sizes, every combination of ns (or sizes.DEFAULT_VALUES), each size named in
        ``sizes`` over its own values (sizes.grid)."""
        spec = self.spec if self.spec is not None else specs.preset(self.model, self.eps)
        if ns is not None and not sizes and all(isinstance(n, Point) for n in ns):
            return tuple(ns)
        return tuple(grid(spec.size_names, ns, sizes))

    def model_for(self, n) -> Model:
        spec = self.spec if self.spec is not None else specs.preset(self.model, self.eps)
        return model_for(spec, n)

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)


@functools.lru_cache(maxsize=256)
def model_for(spec: specs.ModelSpec, n) -> Model:
    """One Model per (declaration, n): its derivative memo is shared by every claim."""
    return Model(spec, n)


def load(path, cache=None) -> Document:
    """The document in the claim file at path.  ``cache`` (cache.Cache): a file whose
    bytes were read before, by this source, has its sides' names checked already."""
    path = Path(path)
    try:
        raw = files.read_bounded(path, MAX_CLAIM_FILE_BYTES)
    except OSError as exc:
        raise ClaimFileError(path, None, None, f"cannot read: {exc.strerror}") from None
    except files.NotReadable as exc:
        raise ClaimFileError(path, None, None, f"not read: {exc}") from None
    return from_bytes(raw, path, cache)


def from_bytes(raw: bytes, path="<memory>", cache=None) -> Document:
    """The document in a claim file's bytes (load, once they are read)."""
    if len(raw) > MAX_CLAIM_FILE_BYTES:
        message = f"{len(raw)} bytes; at most {MAX_CLAIM_FILE_BYTES} per claim file"
        raise ClaimFileError(path, None, None, message)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ClaimFileError(path, None, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClaimFileError(path, None, None, f"TOML error: {exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if cache is None:
        return dataclasses.replace(from_dict(data, path), digest=digest)
    name = cache_key("sides-read", digest, str(path))
    checked = cache.get(name) is not None
    document = dataclasses.replace(from_dict(data, path, check_sides=not checked), digest=digest)
    if not checked:
        cache.put(name, True)
    return document


def from_dict(data: dict, path="<memory>", *, check_sides: bool = True) -> Document:
    """The document in ``data`` (a claim file's TOML).  check_sides: read every side
    once (only load skips it, for a file it has read before)."""
    doc = data.get("document")
    if not isinstance(doc, dict):
        raise ClaimFileError(path, None, "document", "missing [document] table")
    _no_unknown(doc, DOCUMENT_KEYS, path, None, "document")
    for key in ("id", "title"):
        _need_str(doc, key, path, None, f"document.{key}")
    eps = doc.get("eps", False)
    if not isinstance(eps, bool):
        raise ClaimFileError(path, None, "document.eps", "expected true or false")
    try:
        if "model" in data:
            if "model" in doc or "eps" in doc:
                raise specs.SpecError(
                    "document.model", "give either a [model] table or document.model/eps"
                )
            kind, spec = "declared", specs.from_table(data["model"])
        else:
            kind = doc.get("model", "xhat")
            spec = specs.preset(kind, eps)
        model_for(spec, 3)  # reads every node definition once
        if spec.constraints:  # a constraint must hold at every size, the smallest too
            model_for(spec, 1)
    except specs.SpecError as exc:
        raise ClaimFileError(path, None, exc.field, str(exc)) from None
    except ModelError as exc:
        raise ClaimFileError(path, None, "model", str(exc)) from None

    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise ClaimFileError(path, None, "claims", "expected at least one [[claims]] entry")
    if len(raw_claims) > MAX_CLAIMS_PER_FILE:
        raise ClaimFileError(
            path,
            None,
            "claims",
            f"{len(raw_claims)} claims; at most {MAX_CLAIMS_PER_FILE} per file (split the file)",
        )
    extra = set(data) - {"document", "claims", "model", "emit"}
    if extra:
        raise ClaimFileError(path, None, sorted(extra)[0], "unknown top-level table")

    claims = [_claim(c, path, pos) for pos, c in enumerate(raw_claims, 1)]
    seen = set()
    for c in claims:
        if c.id in seen:
            raise ClaimFileError(path, c.id, "id", "duplicate claim id")
        seen.add(c.id)
    for c in claims:
        for u in c.uses:
            if u not in seen:
                raise ClaimFileError(path, c.id, "uses", f"unknown claim id {u!r}")
            if u == c.id:
                raise ClaimFileError(path, c.id, "uses", "a claim cannot use itself")
        _check_origin(c, seen, path)
    findings = {c.id for c in claims if c.finding}
    for c in claims:
        used = next((u for u in c.uses if u in findings), None)
        if used is not None:
            raise ClaimFileError(path, c.id, "uses", _BUILDS_ON_A_FINDING.format(used))
    references = doc.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise ClaimFileError(path, None, "document.references", "expected a list of strings")

    emit = None
    raw_emit = data.get("emit")
    layout = raw_emit.get("layout") if isinstance(raw_emit, dict) else None
    if spec.several:  # both read a model of one size (codegen.lowering, derivation)
        for key, present in (
            ("emit", raw_emit is not None and layout != "matrices"),
            ("document.closed_form", doc.get("closed_form")),
        ):
            if present:
                message = "not supported for a model of several sizes (yet)"
                if key == "emit":
                    message += "; the layout 'matrices' is"
                raise ClaimFileError(path, None, key, message)
    elif layout == "matrices":
        message = "the layout 'matrices' is for a model of several sizes"
        raise ClaimFileError(path, None, "emit.layout", message)
    if "emit" in data:
        model3 = model_for(spec, 3)
        try:
            emit = emits.from_table(
                data["emit"],
                seen,
                model3.statistics,
                model3.input_names | frozenset(model3.nodes),
                frozenset(model3.spec.all_scalars),
            )
        except emits.EmitError as exc:
            raise ClaimFileError(path, None, exc.field, str(exc)) from None
    document = Document(
        path=str(path),
        id=doc["id"],
        title=doc["title"],
        citation=doc.get("citation", ""),
        model=kind,
        eps=spec.has_eps,
        claims=tuple(claims),
        spec=spec,
        description=doc.get("description", ""),
        closed_form=doc.get("closed_form", ""),
        references=tuple(references),
        emit=emit,
    )
    if document.closed_form and document.closed_form not in seen:
        raise ClaimFileError(
            path, None, "document.closed_form", f"unknown claim id {document.closed_form!r}"
        )
    if document.closed_form in findings:
        message = _BUILDS_ON_A_FINDING.format(document.closed_form)
        raise ClaimFileError(path, None, "document.closed_form", message)
    for formula in emit.formulas if emit is not None else ():
        if formula.claim in findings:
            message = _BUILDS_ON_A_FINDING.format(formula.claim)
            raise ClaimFileError(path, None, f"{formula.field}.claim", message)
    _check_untrusted(document)
    if check_sides:
        _check_sides(document)
    return document


def _claim(raw, path, pos) -> Claim:
    if not isinstance(raw, dict):
        raise ClaimFileError(path, f"#{pos}", None, "a claim must be a table")
    cid = raw.get("id")
    if not isinstance(cid, str) or not cid.strip():
        raise ClaimFileError(path, f"#{pos}", "id", "missing or empty id")
    _no_unknown(raw, CLAIM_KEYS, path, cid, None)
    _need_str(raw, "title", path, cid, "title")
    if "latex" in raw:  # optional; without it the report prints the sides
        _need_str(raw, "latex", path, cid, "latex")
    uses = raw.get("uses", [])
    if not isinstance(uses, list) or not all(isinstance(u, str) for u in uses):
        raise ClaimFileError(path, cid, "uses", "expected a list of claim ids")
    expect = raw.get("expect", EXPECT_HOLDS)
    if "expect" in raw and expect != EXPECT_FAILS:  # the default is never written
        raise ClaimFileError(
            path, cid, "expect", f'the only value is "fails" (a finding), got {expect!r}'
        )

    if "cases" in raw:
        for key in ("for", "lhs", "rhs", "steps"):
            if key in raw:
                raise ClaimFileError(path, cid, key, "a claim with cases keeps its sides per case")
        if not isinstance(raw["cases"], list) or len(raw["cases"]) < 2:
            raise ClaimFileError(path, cid, "cases", "expected two or more [[claims.cases]]")
        cases = []
        for k, rc in enumerate(raw["cases"], 1):
            if not isinstance(rc, dict):
                raise ClaimFileError(path, cid, f"cases[{k}]", "expected a table")
            _no_unknown(rc, CASE_KEYS, path, cid, f"cases[{k}]")
            cases.append(_case(rc, path, cid, f"cases[{k}]."))
        kind = "cases"
    else:
        cases = [_case(raw, path, cid, "")]
        kind = "chain" if "steps" in raw else "equation"
    return Claim(
        id=cid,
        title=raw["title"],
        latex=raw.get("latex", ""),
        kind=kind,
        cases=tuple(cases),
        uses=tuple(uses),
        note=raw.get("note", ""),
        origin=raw.get("origin", "document"),
        corrects=raw.get("corrects", ""),
        expect=expect,
    )


def _check_origin(claim: Claim, ids: set, path) -> None:
    """``origin`` is one of ORIGINS; ``corrects`` goes with "corrected", and names
    another claim of the file."""
    if not isinstance(claim.origin, str) or claim.origin not in ORIGINS:
        raise ClaimFileError(
            path, claim.id, "origin", f"expected one of {', '.join(ORIGINS)}, got {claim.origin!r}"
        )
    if not isinstance(claim.corrects, str):
        kind = type(claim.corrects).__name__
        raise ClaimFileError(path, claim.id, "corrects", f"expected a claim id, got {kind}")
    if claim.origin == "corrected" and not claim.corrects:
        raise ClaimFileError(
            path, claim.id, "corrects", 'origin = "corrected" needs corrects = "<claim id>"'
        )
    if claim.corrects and claim.origin != "corrected":
        raise ClaimFileError(path, claim.id, "corrects", 'only with origin = "corrected"')
    if claim.corrects and claim.corrects not in ids:
        raise ClaimFileError(path, claim.id, "corrects", f"unknown claim id {claim.corrects!r}")
    if claim.corrects == claim.id:
        raise ClaimFileError(path, claim.id, "corrects", "a claim cannot correct itself")


def _case(raw, path, cid, prefix) -> Case:
    label = raw.get("for")
    if not isinstance(label, str) or label not in CASES:  # a list is not hashable
        raise ClaimFileError(
            path, cid, prefix + "for", f"expected one of {sorted(CASES)}, got {label!r}"
        )
    if "steps" in raw:
        if "lhs" in raw or "rhs" in raw:
            raise ClaimFileError(path, cid, prefix + "steps", "give either steps or lhs/rhs")
        steps = raw["steps"]
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise ClaimFileError(path, cid, prefix + "steps", "expected a list of strings")
        if len(steps) < 3:
            raise ClaimFileError(
                path,
                cid,
                prefix + "steps",
                f"a chain needs three or more expressions, got {len(steps)}"
                " (write a single equality as lhs/rhs)",
            )
        sides = tuple(steps)
    else:
        for key in ("lhs", "rhs"):
            if key not in raw:
                raise ClaimFileError(path, cid, prefix + key, "missing (or give steps)")
            _need_str(raw, key, path, cid, prefix + key)
        sides = (raw["lhs"], raw["rhs"])
    return Case(label=label, sides=sides, latex=raw.get("latex", "") if prefix else "")


def side_fields(claim: Claim, case_no: int) -> list[str]:
    """Field names of a case's sides, as a file author wrote them."""
    prefix = f"cases[{case_no}]." if claim.kind == "cases" else ""
    case = claim.cases[case_no - 1]
    if claim.kind == "chain" or (claim.kind == "cases" and case.steps > 1):
        return [f"{prefix}steps[{k}]" for k in range(1, len(case.sides) + 1)]
    return [prefix + "lhs", prefix + "rhs"]


def _check_untrusted(document: Document):
    """What a file from a stranger could abuse: names that become file names or
    labels, text fields of the wrong type, LaTeX that reads, writes or defines
    (see latexsafe), and a cycle of ``uses``."""
    path = document.path
    problem = paths.name_problem(document.id)
    if problem:
        raise ClaimFileError(path, None, "document.id", problem)
    for key in ("title", "citation", "description", "closed_form"):
        if not isinstance(getattr(document, key), str):
            kind = type(getattr(document, key)).__name__
            raise ClaimFileError(path, None, f"document.{key}", f"expected a string, got {kind}")
    for claim in document.claims:
        problem = paths.name_problem(claim.id)
        if problem:
            raise ClaimFileError(path, claim.id, "id", problem)
        if not isinstance(claim.note, str):
            kind = type(claim.note).__name__
            raise ClaimFileError(path, claim.id, "note", f"expected a string, got {kind}")
        fields = [("latex", claim.latex)]
        if claim.kind == "cases":
            fields += [(f"cases[{k}].latex", c.latex) for k, c in enumerate(claim.cases, 1)]
        for field, text in fields:
            if text == "":  # not given: nothing of the file's reaches the report
                continue
            try:
                check_latex(text)
            except LatexError as exc:
                raise ClaimFileError(path, claim.id, field, str(exc)) from None
    cycle = uses_cycle(document.claims)
    if cycle:
        raise ClaimFileError(path, cycle[0], "uses", f"a cycle: {' -> '.join(cycle)}")


def uses_cycle(claims) -> list[str] | None:
    """A cycle of ``uses`` as [a, b, ..., a], or None when there is none."""
    uses = {c.id: c.uses for c in claims}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in uses:
        if state.get(start):
            continue
        path, stack = [start], [iter(uses[start])]
        state[start] = 1
        while stack:  # depth-first without recursion: a long chain cannot overflow the stack
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt) and nxt in uses:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(uses[nxt]))
    return None


def _check_sides(document: Document):
    """Read every side once at a small n so a bad name fails at load time."""
    model = document.model_for(3)
    for claim in document.claims:
        for no, case in enumerate(claim.cases, 1):
            assignment = representatives(case.label)[-1]
            for name, text in zip(side_fields(claim, no), case.sides, strict=True):
                try:
                    parse(text, model, assignment)
                except PositionError:
                    pass  # a position beyond 3 may exist at a larger n
                except (LanguageError, ModelError) as exc:
                    raise ClaimFileError(document.path, claim.id, name, str(exc)) from None


_BUILDS_ON_A_FINDING = "{!r} is expected to fail (a finding): nothing may build on it"


def _need_str(raw, key, path, cid, field):
    if not isinstance(raw.get(key), str) or not raw[key].strip():
        raise ClaimFileError(path, cid, field, "missing or empty (expected a string)")


def _no_unknown(raw, allowed, path, cid, where):
    extra = sorted(set(raw) - allowed)
    if extra:
        field = extra[0] if where is None else f"{where}.{extra[0]}"
        raise ClaimFileError(
            path, cid, field, f"unknown field; allowed: {', '.join(sorted(allowed))}"
        )
