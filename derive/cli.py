"""``python -m derive``: verify claim files, and build everything ``make`` ships.

Exit codes: 0 every claim holds (with --all-n: and is proved for all n), 1 a
claim fails, 2 a file (or the command line) is malformed, or a file cannot be
read or written, 3 nothing fails but something is undecided, or not proved
for all n.  A finding (expect = "fails") counts the other way round: its FAIL
is 0, its PASS is 1 (results.ClaimResult.exit_code).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .bounded import forked_map, result_key, verify_many
from .cache import Cache, CacheError
from .cache import key as cache_key
from .checking import VerifierError
from .claims import ClaimFileError, load
from .files import describe_os_error
from .limits import CLAIM_TIME_LIMIT_S, MAX_JOBS, MAX_LIMIT_S, MAX_N, TOTAL_TIME_LIMIT_S
from .paths import DOCUMENTS, GENERATED, REPORTS, ROOT
from .present import closing, print_result, result_json
from .results import (
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_UNDECIDED,
    combine_exit_codes,
)
from .sizes import parse_sizes

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAIL", "EXIT_OK", "EXIT_UNDECIDED", "main"]


def shipped_documents() -> list[Path]:
    return sorted(DOCUMENTS.glob("*.toml"))


def parse_ns(text: str) -> tuple[int, ...]:
    """'2..8', '16', '2,4,8' or a mix: '2..4,16'."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if ".." in part:
                lo, hi = (int(v) for v in part.split(".."))
                if lo > hi:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected n as '2..8', '16' or '2,4,8', got {text!r}"
        ) from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"n must be positive integers, got {text!r}")
    if max(out) > MAX_N:
        raise argparse.ArgumentTypeError(
            f"n above {MAX_N} is not supported (use --all-n for every n), got {text!r}"
        )
    return tuple(sorted(out))


def _sizes(text: str) -> dict:
    try:
        return parse_sizes(text, parse_ns)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_LIMIT_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds between 0 and {MAX_LIMIT_S}, got {text!r}"
        )
    return value


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def open_cache(args):
    """The results cache, or None with --no-cache or where it cannot be used safely."""
    if args.no_cache:
        return None
    store = Cache()
    try:
        store.check()
    except CacheError as exc:
        print(f"note: no cache: {exc}", file=sys.stderr)
        return None
    return store


def cmd_verify(args) -> int:
    """Each file's verdicts in input order.  A file that cannot be read (exit 2)
    is named on stderr, and the other files are still checked: a course or a CI
    job checking many files loses nothing to one bad file."""
    files = args.files or shipped_documents()
    store = open_cache(args)
    loaded: list = []  # a Document, or the one-line error of a file that cannot be read
    for f in files:
        try:
            loaded.append(load(f, store))
        except ClaimFileError as exc:
            loaded.append(str(exc))
    documents = [d for d in loaded if not isinstance(d, str)]
    if args.report is not None:  # many students' files may share one id, but not a report
        try:
            _one_report_per_id(documents)
        except ClaimFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    outcomes = iter(
        verify_many(
            documents,
            args.n,
            jobs=args.jobs,
            time_limit=args.time_limit,
            total_time_limit=args.total_time_limit,
            cache=store,
            full=args.full,
            all_n=args.all_n,
            normal_forms=args.report is not None,
            sizes=args.sizes,
        )
    )
    results, entries, codes = [], [], []
    for f, item in zip(files, loaded, strict=True):
        outcome = item if isinstance(item, str) else next(outcomes)
        if isinstance(outcome, VerifierError):
            outcome = f"{item.path}: {outcome}"
        if isinstance(outcome, str):
            print(f"error: {outcome}", file=sys.stderr)
            entries.append({"path": str(f), "exit_code": EXIT_BAD_INPUT, "error": outcome})
            codes.append(EXIT_BAD_INPUT)
            continue
        if args.format == "text":
            print_result(outcome, sys.stdout)
        results.append(outcome)
        entries.append(result_json(outcome))
        codes.append(outcome.exit_code)
    code = combine_exit_codes(codes)
    if args.report is not None and code != EXIT_BAD_INPUT:  # nothing is written from bad input
        from . import report

        for path in report.write_reports(results, args.report):
            if args.format == "text":
                print(f"wrote {path}")
    if not results:  # no file could be read: the errors on stderr are the whole answer
        return code
    if args.format == "json":
        json.dump({"exit_code": code, "documents": entries}, sys.stdout)
        print()
    else:
        print(closing(results, code), file=sys.stdout)
    return code


def _one_report_per_id(documents) -> None:
    """Two documents with one id would write one report over the other."""
    first = {}
    for doc in documents:
        if doc.id in first:
            raise ClaimFileError(
                doc.path, None, "document.id", f"{doc.id!r} is also the id of {first[doc.id]}"
            )
        first[doc.id] = doc.path


def cmd_build(args) -> int:
    """What `make` runs: verify every shipped document (for the given n and for
    all n), derive its closed form, and regenerate reports/ and derive/generated/.

    Each document is verified once (in parallel, and remembered in the cache); the
    reports and the generated code read those results.  Reports are written even
    when a claim fails: they show the failure."""
    from types import SimpleNamespace

    from . import codegen, report

    store = open_cache(args)
    try:
        documents = [load(f, store) for f in shipped_documents()]
    except ClaimFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    options = dict(all_n=True, normal_forms=True)
    outcomes = verify_many(
        documents,
        args.n,
        jobs=args.jobs,
        total_time_limit=args.total_time_limit,
        closed_forms=True,
        cache=store,
        several_ns=None,
        **options,
    )
    for doc, result in zip(documents, outcomes, strict=True):
        if isinstance(result, VerifierError):
            print(f"error: {doc.path}: {result}", file=sys.stderr)
            return EXIT_BAD_INPUT
    results = outcomes  # every one a DocumentResult now
    ok = True
    extras = {}
    for doc, result in zip(documents, results, strict=True):
        print_result(result, sys.stdout)
        ok = ok and result.holds
        d = result.derivation
        if not doc.closed_form:
            continue
        if isinstance(d, str) or d is None:
            print(f"error: {doc.path}: {d or 'no closed form derived'}", file=sys.stderr)
            ok = False
            continue
        print(
            f"  derived closed form ({'equals' if d.holds else 'DIFFERS from'} "
            f"{doc.closed_form}): {d.text}"
        )
        ok = ok and d.holds
        extras[doc.id] = {
            "derivation": SimpleNamespace(
                latex_derived=d.latex_derived,
                latex_document=d.latex_document,
                holds=d.holds,
                coefficients=d.coefficients_latex,
                claim_id=d.claim_id,
            )
        }
    keys = [
        result_key(doc, doc.points(args.n if len(doc.size_names) == 1 else None), options, True)
        for doc in documents
    ]
    emitters = [(doc, r) for doc, r in zip(documents, results, strict=True) if doc.emit]
    emitter_keys = tuple(k for k, d in zip(keys, documents, strict=True) if d.emit)
    # The generated modules first: the longest task, so that it does not start last.
    tasks = [
        (
            None if any(r.limited for _, r in emitters) else cache_key("modules", emitter_keys),
            lambda: _rendered(
                codegen.render_modules, [d for d, _ in emitters], {d.path: r for d, r in emitters}
            ),
        )
    ]
    tasks += [
        (
            None if r.limited else cache_key("report", k),
            lambda r=r: report.render_report(r, extras=extras.get(r.document.id)),
        )
        for r, k in zip(results, keys, strict=True)
    ]
    modules, *reports = _remembered(store, tasks, args.jobs)
    texts = {r.document.id: text for r, text in zip(results, reports, strict=True)}
    for path in report.write_reports(results, REPORTS, texts=texts):
        print(f"wrote {path.relative_to(ROOT)}")
    if isinstance(modules, codegen.CodegenError):
        print(f"error: {modules}", file=sys.stderr)
        ok = False
    else:
        for path in codegen.write_generated(GENERATED, modules):
            print(f"wrote {path.relative_to(ROOT)}")
    if report.latexmk_available():
        try:
            for path in report.build_pdfs(sorted(REPORTS.glob("*.tex")), REPORTS / "_build"):
                print(f"built {path.relative_to(ROOT)}")
        except report.ReportBuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            ok = False
    else:
        print(
            "note: latexmk not found, PDFs not built "
            f"(apt-get install {report.PDFLATEX_DEBIAN_PACKAGES})",
            file=sys.stderr,
        )
    print("build: all claims hold" if ok else "build: some claims FAIL")
    return EXIT_OK if ok else EXIT_FAIL


def _rendered(render, *args):
    """render(*args), or the CodegenError it raised (reported, not remembered)."""
    from .codegen import CodegenError

    try:
        return render(*args)
    except CodegenError as exc:
        return exc


def _remembered(store, tasks, jobs: int) -> list:
    """For each (name, compute): what the cache holds under name, or compute(),
    the missing ones up to ``jobs`` at once (name None: not remembered)."""
    values = [store.get(name) if store and name else None for name, _ in tasks]
    missing = [k for k, v in enumerate(values) if v is None]
    computed = forked_map([tasks[k][1] for k in missing], jobs)
    for k, value in zip(missing, computed, strict=True):
        values[k] = value
        name = tasks[k][0]
        if store and name and not isinstance(value, Exception):
            store.put(name, value)
    return values


def cmd_cache(args) -> int:
    store = Cache()
    if args.clear:
        print(f"removed {store.clear()} entries from {store.directory}")
    else:
        print(store.directory)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m derive", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check every claim of the given claim files")
    v.add_argument("files", nargs="*", type=Path, help="claim files (default: the shipped ones)")
    v.add_argument(
        "--n",
        type=parse_ns,
        default=None,
        help="batch sizes, e.g. 2..8 (default 1..8); with several sizes, each takes every "
        "one of them (default 1..3 each)",
    )
    v.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        metavar="NAME=RANGE,...",
        help="the values of each size of a model with several, e.g. T=1..3,E=1..2",
    )
    v.add_argument(
        "--full",
        action="store_true",
        help="check every index pair instead of one per symmetry class",
    )
    v.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write a LaTeX report per document into DIR "
        "(then python -m derive.report DIR/*.tex builds the PDFs)",
    )
    v.add_argument(
        "--all-n",
        action="store_true",
        help="also prove each claim for a symbolic n with the general-n prover",
    )
    v.add_argument(
        "--time-limit",
        type=_positive_seconds,
        default=CLAIM_TIME_LIMIT_S,
        metavar="SECONDS",
        help=f"seconds one claim may take before it is UNDECIDED (default {CLAIM_TIME_LIMIT_S})",
    )
    v.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one line per claim (default); json: the same verdicts for machines",
    )
    _run_options(v)
    v.set_defaults(func=cmd_verify)
    b = sub.add_parser("build", help="verify the shipped documents and regenerate their outputs")
    b.add_argument(
        "--n",
        type=parse_ns,
        default=tuple(range(1, 9)),
        help="batch sizes of the one-size documents (those with several take 1..3 each)",
    )
    _run_options(b)
    b.set_defaults(func=cmd_build)
    c = sub.add_parser("cache", help="where results are remembered (--clear empties it)")
    c.add_argument("--clear", action="store_true", help="remove every entry")
    c.set_defaults(func=cmd_cache)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected a number of processes (1..1024), got {text!r}")
    return value


def _run_options(p) -> None:
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=default_jobs(),
        metavar="N",
        help="documents verified at once, one process each (default: the cores, here "
        f"{default_jobs()}); the output is the same for any N",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="verify everything again, and remember nothing (python -m derive cache "
        "says where results are kept)",
    )
    p.add_argument(
        "--total-time-limit",
        type=_positive_seconds,
        default=TOTAL_TIME_LIMIT_S,
        metavar="SECONDS",
        help="seconds the whole run may take; past it the claims left are UNDECIDED "
        f"(default {TOTAL_TIME_LIMIT_S})",
    )


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `derive verify | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a read-only or full disk, a file where a folder should be
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
