"""derive as a library: load a derivation, verify it, read or assert the result.

    import derive
    doc = derive.load("my_derivation.toml")          # or derive.loads(toml_text)
    result = derive.verify(doc, n=range(1, 9), all_n=True)
    for claim in result.claims:
        print(claim.id, claim.verdict)                # PASS, FAIL or UNDECIDED
    derive.assert_holds(doc)                          # AssertionError naming what fails

Verification runs exactly as ``python -m derive verify`` runs it (the CLI is a
layer over the same calls): each claim in a child process, bounded in time and
memory, so a stranger's document cannot hang a notebook.  A document that
cannot be read raises ``ClaimFileError`` (a ValueError) naming the file, the
claim and the field; a claim whose sides cannot be read raises
``VerifierError``.  A result carries what ``--format json`` carries, per n and
per step, and renders in Jupyter as a table with the claims as mathematics.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import present
from .bounded import verify_many
from .checking import VerifierError as VerifierError
from .claims import ClaimFileError as ClaimFileError
from .claims import Document, from_bytes, from_dict
from .claims import load as _load_file
from .claimtex import sides_latex
from .limits import CLAIM_TIME_LIMIT_S, MAX_JOBS, MAX_LIMIT_S, MAX_N, TOTAL_TIME_LIMIT_S
from .mathtext import escape_tex
from .numeric import Counterexample
from .results import EXIT_OK, AllNStep, ClaimResult, DocumentResult, NVerdict
from .sizes import parse_sizes

# The public names are listed once, in derive/__init__.py's __all__.

# The batch sizes verify checks by default: those of `python -m derive verify`.
# MathJax's classes (versions 2 and 3) for a part of a page it must leave alone, and
# for a part inside one that it typesets.
_NOT_TYPESET = "tex2jax_ignore mathjax_ignore"
_TYPESET = "tex2jax_process mathjax_process"
# The colour a verdict is shown in (HTML and LaTeX), by verdict word.
COLOURS = {"PASS": "green", "FAIL": "red", "UNDECIDED": "orange"}


def load(path: str | os.PathLike) -> Document:
    """The document in a claim file (TOML), checked but not verified."""
    return _load_file(path)


def loads(text: str, path: str = "<string>") -> Document:
    """The document in ``text``, a claim file's TOML; ``path`` names it in errors."""
    if not isinstance(text, str):
        raise TypeError(f"loads expects the TOML text as a str, got {type(text).__name__}")
    return from_bytes(text.encode("utf-8"), path)


def document(
    *,
    id: str,  # noqa: A002 - the claim file's own key
    title: str,
    claims: Sequence[Mapping],
    model: Mapping | None = None,
    path: str = "<python>",
    **fields,
) -> Document:
    """A document declared in Python, in the language of the files: ``model`` is
    the ``[model]`` table and ``claims`` the ``[[claims]]`` entries, as dicts of
    strings; other ``[document]`` keys (citation, description, ...) as keywords."""
    data: dict = {"document": {"id": id, "title": title, **fields}, "claims": list(claims)}
    if model is not None:
        data["model"] = dict(model)
    return from_dict(data, path)


def _document_of(doc) -> Document:
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, str | os.PathLike):
        return load(doc)
    raise TypeError(f"expected a Document or a path, got {type(doc).__name__}")


def _ns(n) -> tuple[int, ...]:
    """The batch sizes: an int, an iterable of ints, or the CLI's text ('2..8')."""
    if isinstance(n, str):
        from .cli import parse_ns  # one reading of '2..8' for the CLI and here

        try:
            return parse_ns(n)
        except Exception as exc:  # argparse's error type
            raise ValueError(str(exc)) from None
    values = [n] if isinstance(n, int) else list(n) if isinstance(n, Iterable) else None
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"n: expected a positive integer or integers, got {n!r}")
    if min(values) < 1 or max(values) > MAX_N:
        raise ValueError(f"n: each must be in 1..{MAX_N} (all_n=True proves every n), got {n!r}")
    return tuple(sorted(set(values)))


def _sizes(sizes) -> dict | None:
    """Each size's values: {"T": range(1, 4)}, or the CLI's text 'T=1..3,E=1..2'."""
    if sizes is None:
        return None
    if isinstance(sizes, str):
        from .cli import parse_ns

        try:
            return parse_sizes(sizes, parse_ns)
        except Exception as exc:  # argparse's error type
            raise ValueError(f"sizes: {exc}") from None
    if not isinstance(sizes, dict) or not sizes:
        raise ValueError(f"sizes: expected {{name: values}} or 'T=1..3,E=1..2', got {sizes!r}")
    return {str(k): _ns(v) for k, v in sizes.items()}


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim's outcome, as ``verify`` prints it and ``--format json`` gives it."""

    id: str
    title: str
    verdict: str  # PASS, FAIL or UNDECIDED (held at every n but not proved for all n)
    exit_code: int  # the claim's own exit code: 0 when it gave what it is expected to
    expect: str  # "holds", or "fails" for a finding (a claim wrong on purpose)
    summary: str  # "holds for n = 1..8; proved for all n"
    details: tuple[str, ...]  # why undecided, the first failure, its counterexample
    statement: str  # the claim's sides as LaTeX, printed by derive from their parse
    per_n: tuple[NVerdict, ...]  # per n: status, reason, and per step (StepVerdict)
    proofs: tuple[AllNStep, ...]  # per step, the proof for all n (when all_n was asked)
    result: ClaimResult

    @property
    def as_expected(self) -> bool:
        return self.exit_code == EXIT_OK

    @property
    def counterexample(self) -> Counterexample | None:
        """The first failing step's counterexample (None when nothing fails)."""
        bad = self.result.first_failure
        return None if bad is None else bad.first_failure.counterexample


@dataclass(frozen=True)
class Result:
    """A document's verification: ``claims`` in document order, and the exit code
    ``python -m derive verify`` would give (0 when every claim is as expected)."""

    document: Document
    ns: tuple  # ints, or sizes.Point where the model has several sizes
    all_n: bool
    claims: tuple[ClaimVerdict, ...]
    exit_code: int
    raw: DocumentResult

    @property
    def holds(self) -> bool:
        return self.exit_code == EXIT_OK

    def claim(self, claim_id: str) -> ClaimVerdict:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def json(self) -> dict:
        """What ``--format json`` gives for this document."""
        return present.result_json(self.raw)

    def __str__(self) -> str:
        out = io.StringIO()
        present.print_result(self.raw, out)
        return out.getvalue().rstrip("\n")

    def _repr_html_(self) -> str:
        # The file's text is escaped, and kept from MathJax (a "$" in a title would be
        # typeset, past latexsafe): only the statement, derive's own LaTeX, is typeset.
        e = html.escape
        rows = [
            f"<tr><td><code>{e(c.id)}</code></td>"
            f'<td style="color:{COLOURS[c.verdict]};font-weight:bold">{c.verdict}</td>'
            f'<td>{e(c.title)}</td><td class="{_TYPESET}">${e(c.statement)}$</td>'
            f"<td>{e(c.summary)}"
            + "".join(f"<br><small>{e(line)}</small>" for line in c.details)
            + "</td></tr>"
            for c in self.claims
        ]
        head = f"<p><b>{e(self.document.title)}</b> ({e(self.document.path)}): {self._closing}</p>"
        return (
            f'<div class="{_NOT_TYPESET}">'
            + head
            + "<table><tr><th>claim</th><th>verdict</th><th>title</th><th>statement</th>"
            + "<th>checked</th></tr>"
            + "".join(rows)
            + "</table></div>"
        )

    def _repr_latex_(self) -> str:
        rows = [
            rf"\texttt{{{escape_tex(c.id)}}} & \color{{{COLOURS[c.verdict]}}}"
            rf"{{\textbf{{{c.verdict}}}}} & {c.statement} \\"
            for c in self.claims
        ]
        return r"$$\begin{array}{lll}" + "\n".join(rows) + r"\end{array}$$"

    @property
    def _closing(self) -> str:
        return present.closing([self.raw], self.exit_code)


def _claim_verdict(c: ClaimResult, all_n: bool, size: str, several: bool) -> ClaimVerdict:
    return ClaimVerdict(
        id=c.claim.id,
        title=c.claim.title,
        verdict=present.verdict(c),
        exit_code=c.exit_code(all_n),
        expect=c.claim.expect,
        summary=present.summary(c, several),
        details=tuple(present.details(c)),
        statement=sides_latex(c.claim, size),
        per_n=c.verdicts,
        proofs=c.proofs,
        result=c,
    )


def verify(
    doc: Document | str | os.PathLike,
    n: int | Iterable[int] | str | None = None,
    *,
    sizes: dict | str | None = None,
    all_n: bool = False,
    full: bool = False,
    time_limit: float = CLAIM_TIME_LIMIT_S,
    total_time_limit: float = TOTAL_TIME_LIMIT_S,
    jobs: int = 1,
) -> Result:
    """Every claim of ``doc`` (a Document or a claim file's path) at each n, and
    for all n when ``all_n``: as ``python -m derive verify`` with the same options.

    n: the batch sizes (default 1..8); with several sizes, the values every size takes
    (default 1..3 each).  sizes: each size's own values, {"T": range(1, 4)} or
    "T=1..3,E=1..2", as --sizes.  full: check every index assignment, not one per
    symmetry class.  time_limit: seconds one claim may take before it is UNDECIDED;
    total_time_limit: the whole call's.  jobs: processes at once (the result is the
    same for any)."""
    document_ = _document_of(doc)
    ns = None if n is None else _ns(n)
    per_size = _sizes(sizes)
    for name, value in (("time_limit", time_limit), ("total_time_limit", total_time_limit)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = None
        if value is None or not 0 < value <= MAX_LIMIT_S:
            raise ValueError(f"{name}: expected seconds in (0, {MAX_LIMIT_S}], got {value!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"jobs: expected an integer in 1..{MAX_JOBS}, got {jobs!r}")
    (outcome,) = verify_many(
        [document_],
        ns,
        jobs=jobs,
        time_limit=time_limit,
        total_time_limit=total_time_limit,
        full=bool(full),
        all_n=bool(all_n),
        sizes=per_size,
    )
    if isinstance(outcome, VerifierError):
        raise VerifierError(f"{document_.path}: {outcome}")
    size = document_.latex_size
    several = len(document_.size_names) > 1
    claims = tuple(_claim_verdict(c, outcome.all_n, size, several) for c in outcome.claims)
    return Result(document_, outcome.ns, outcome.all_n, claims, outcome.exit_code, outcome)


def assert_holds(doc: Document | str | os.PathLike, **options) -> Result:
    """verify(doc, **options), for test suites: the result when every claim gives
    what it is expected to, else an AssertionError naming each claim that does
    not, where it first fails, and its counterexample."""
    result = verify(doc, **options)
    if result.holds:
        return result
    lines = [f"{result.document.path}: {result._closing}"]
    for c in result.claims:
        if not c.as_expected:
            lines.append(f"  {c.verdict} {c.id}  {c.title} — {c.summary}")
            lines += [f"       {line}" for line in c.details]
    raise AssertionError("\n".join(lines))
