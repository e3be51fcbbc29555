"""docs/benchmarks.md, written from the JSON the benchmarks wrote (never by hand).

    python benchmarks/docs_page.py [--reports reports] [--out docs/benchmarks.md] [--check]

Reads ``bench.json``, ``core_speed.json``, ``build_bench.json``, ``softmax_bench.json``
and ``attention_bench.json`` from the reports folder; each subject's module prints its
own tables, and the page's prose is the template ``benchmarks.md.j2``.  A subject with
no JSON yet is named as not run.  The attention table is also the README's, between its
markers (``README_BEGIN``, ``README_END``).  ``--check`` exits 1 where the page or the
README on disk differs from what the JSON gives.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jinja2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attention_bench  # noqa: E402
import bench_report  # noqa: E402
import build_bench  # noqa: E402
import core_speed  # noqa: E402
import softmax_bench  # noqa: E402
from timing import ROOT  # noqa: E402

TEMPLATE = "benchmarks.md.j2"
OUT = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
README_BEGIN = "<!-- attention-bench: written by benchmarks/docs_page.py from reports/ -->"
README_END = "<!-- /attention-bench -->"
NOT_RUN = "_Not run yet: `make bench` writes this section._"


def _load(folder: Path, name: str) -> dict | None:
    path = folder / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _machine(m: dict) -> str:
    """The machine and versions, as one clause (what the JSON records of them)."""
    parts = [f"{m.get('usable_cores', '?')} usable cores of {m.get('cpu_model', 'unknown')}"]
    for key, name in (("python", "Python"), ("numpy", "NumPy"), ("numba", "numba")):
        parts += [f"{name} {m[key]}"] if m.get(key) else []
    for key, name in (("torch", "PyTorch"), ("sympy", "SymPy")):
        parts += [f"{name} {m[key]}"] if m.get(key) else []
    return ", ".join(parts) + (f"; backend {m['backend']}" if m.get("backend") else "")


def _run_clause(mode: str, when: str, machine: str | None = None) -> str:
    text = f"last run {when} ({'a quick run, on small sizes' if mode == 'quick' else 'full run'})"
    return f"{text}, on {machine}" if machine else text


def context(folder: Path) -> dict:
    """What the template prints, a pure function of the JSON in folder."""
    ctx: dict = {}
    bench = _load(folder, "bench.json")
    if bench:
        tables = bench_report.markdown(bench)
        ctx["bench"] = {
            "run": _run_clause(bench["mode"], bench["created"], _machine(bench["machine"])),
            "cap": f"{bench['verification']['cap_s']:g}" if "verification" in bench else "--",
            **{k: tables.get(k, NOT_RUN) for k in ("verification", "backward", "family")},
            "double_backward": tables.get("double_backward", NOT_RUN),
            "goals": tables["goals"] or NOT_RUN,
        }
    else:
        ctx["bench"] = dict.fromkeys(
            ("run", "verification", "backward", "family", "double_backward", "goals"), NOT_RUN
        ) | {"cap": "--", "run": "not run yet"}
    core = _load(folder, "core_speed.json")
    ctx["core_speed"] = core_speed.markdown(core).rstrip() if core else NOT_RUN
    build = _load(folder, "build_bench.json")
    if build:
        many = build["results"].get("many files, --jobs 2 vs sequential", {})
        mode = build.get("mode") or ("quick" if build["repeats"] < 3 else "full")
        ctx["build"] = {
            "run": _run_clause(mode, build["started_utc"] + " UTC")
            + f", {build['repeats']} repeat(s), {build['cores']} cores",
            "baseline": build["baseline_commit"],
            "files": many.get("files", "--"),
            "table": build_bench.table(build["results"]).rstrip(),
        }
    else:
        ctx["build"] = {"run": "not run yet", "baseline": build_bench.BASELINE, "files": "--"}
        ctx["build"]["table"] = NOT_RUN
    soft = _load(folder, "softmax_bench.json")
    if soft:
        quick = soft["config"]["repeats"] < softmax_bench.FULL["repeats"]
        when = soft["date"].replace("T", " ")[:16] + " UTC"
        ctx["softmax"] = {
            "run": _run_clause("quick" if quick else "full", when, _machine(soft["machine"])),
            "table": softmax_bench.markdown(soft).rstrip(),
        }
    else:
        ctx["softmax"] = {"run": "not run yet", "table": NOT_RUN}
    attention = _load(folder, "attention_bench.json")
    if attention:
        quick = attention["config"]["shapes"] != [list(s) for s in attention_bench.FULL["shapes"]]
        when = attention["date"].replace("T", " ")[:16] + " UTC"
        ctx["attention"] = {
            "run": _run_clause("quick" if quick else "full", when, _machine(attention["machine"])),
            "table": attention_bench.markdown(attention).rstrip(),
        }
    else:
        ctx["attention"] = {"run": "not run yet", "table": NOT_RUN}
    return ctx


def readme(folder: Path, text: str) -> str:
    """The README's text with its attention table (between the markers) from the JSON."""
    attention = context(folder)["attention"]
    body = f"{README_BEGIN}\nMeasured by `make bench`, {attention['run']}:\n\n"
    body += f"{attention['table']}\n{README_END}"
    pattern = re.escape(README_BEGIN) + r".*?" + re.escape(README_END)
    if not re.search(pattern, text, flags=re.S):
        raise SystemExit(f"{README}: no attention-bench markers")
    return re.sub(pattern, lambda _: body, text, count=1, flags=re.S)


def render(folder: Path) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, and every value is a string printed here
    )
    return env.get_template(TEMPLATE).render(**context(folder))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--readme", type=Path, default=README)
    p.add_argument("--check", action="store_true", help="fail where the page is stale")
    args = p.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    pages = [(args.out, render(args.reports)), (args.readme, readme(args.reports, current))]
    if args.check:
        stale = [path for path, text in pages if not _same(path, text)]
        for path in stale:
            print(f"{path} differs from what {args.reports}/*.json give", file=sys.stderr)
        return int(bool(stale))
    for path, text in pages:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


def _same(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == text


if __name__ == "__main__":
    sys.exit(main())
