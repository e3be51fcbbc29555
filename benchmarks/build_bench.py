"""The build and many-file verification, against the commit before "verify once" (issue 20).

    python benchmarks/build_bench.py [--quick] [--repeats R] [--files F]

The baseline is the whole tree at BASELINE, unpacked from git history into a
temporary folder; the new tree is this one, unpacked the same way from the
working tree's files (so both write their reports and PDFs into a scratch copy,
never into this checkout).  Every measurement is the wall time of a fresh
``python -m derive`` process, start-up included (what a user waits for), the
two trees interleaved round by round so that a slow spell hits both:

* ``build --n 1..8`` of every shipped document with a cold results cache
  (a fresh, empty ``DERIVE_CACHE_DIR`` per run; the baseline has no cache).
  Each tree is built once untimed first, so that its PDFs are up to date in
  both and the timings are of verification and writing, not of pdfTeX;
* the same with a warm cache and nothing changed (the baseline has no cache:
  its figure is its cold one);
* ``verify`` of the seed document for n = 2..16 and at n = 64, cache off;
* F claim files (the shipped documents and one-claim mutants of them, written
  here: one claim's ``rhs`` doubled) at n = 2..3, cache off: the new tree with
  ``--jobs 2`` in one process, against one process per file in sequence, for
  the new tree and for the baseline.  The exit code of every file must be the
  same in the two sequential runs, and the ``--jobs 2`` run's the largest.

Writes reports/build_bench.json and reports/build_bench.md and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, baseline_tree, summary  # noqa: E402

BASELINE = "de62221"  # main before issue 20
SEED = "derive/documents/bn_backward.toml"
OUT_JSON = ROOT / "reports" / "build_bench.json"
OUT_MD = ROOT / "reports" / "build_bench.md"
BUILD_NS = "1..8"  # what `make` builds
MANY_NS = "2..3"  # small: the case measures scheduling across files, not one big check
JOBS = 2
# Goals, as issue 20 states them (new over baseline, by the median).
GOALS = {
    "build, cold cache": 0.4,
    "seed, n = 2..16": 0.5,
    "seed, n = 64": 0.5,
    "many files, --jobs 2 vs sequential": 0.5,
}
WARM_BUDGET_S = 3.0
_RHS = re.compile(r'^(\s*rhs\s*=\s*")([^"\\]*)("\s*)$', re.M)


def unpack_current(folder: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = folder / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return folder


def run(tree: Path, args: list[str], env: dict | None = None, ok=(0,)) -> tuple[float, int, str]:
    """Wall seconds, exit code and standard output of ``python -m derive ARGS`` in tree."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "derive", *args],
        cwd=tree,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(
            f"{tree}: derive {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    return elapsed, proc.returncode, proc.stdout


def imports_from(tree: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import derive; print(derive.__file__)"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"python -m derive in {tree} imports {out}")


def claim_files(folder: Path, count: int) -> list[Path]:
    """The shipped documents, then one-claim mutants of them, round robin."""
    shipped = sorted((ROOT / "derive" / "documents").glob("*.toml"))
    texts = {p.stem: p.read_text(encoding="utf-8") for p in shipped}
    out = []
    for p in shipped[:count]:
        out.append(folder / f"{p.stem}.toml")
        out[-1].write_text(texts[p.stem], encoding="utf-8")
    k = 0
    while len(out) < count:
        stem = shipped[k % len(shipped)].stem
        sites = list(_RHS.finditer(texts[stem]))
        site = sites[(k // len(shipped)) % len(sites)]
        text = texts[stem]
        mutated = text[: site.start()] + f"{site[1]}2*({site[2]}){site[3]}" + text[site.end() :]
        out.append(folder / f"{stem}-mutant{k}.toml")
        out[-1].write_text(mutated, encoding="utf-8")
        k += 1
    return out


def measure(repeats: int, files: int) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="build-bench-") as tmp:
        tmp = Path(tmp)
        trees = {
            "baseline": baseline_tree(BASELINE, tmp / "baseline"),
            "new": unpack_current(tmp / "new"),
        }
        for tree in trees.values():
            imports_from(tree)
        warm_cache = tmp / "warm-cache"
        print("warming up: one untimed build each (compiles the PDFs)", flush=True)
        for tree in trees.values():
            run(tree, ["build", "--n", BUILD_NS], {"DERIVE_CACHE_DIR": str(warm_cache)})

        def cold(name):
            cache = Path(tempfile.mkdtemp(dir=tmp, prefix="cold-"))
            return run(trees[name], ["build", "--n", BUILD_NS], {"DERIVE_CACHE_DIR": str(cache)})

        cases = {
            "build, cold cache": cold,
            "build, warm cache": lambda name: (
                cold(name)
                if name == "baseline"
                else run(
                    trees[name], ["build", "--n", BUILD_NS], {"DERIVE_CACHE_DIR": str(warm_cache)}
                )
            ),
            "seed, n = 2..16": lambda name: run(
                trees[name], ["verify", "--n", "2..16", SEED, *_no_cache(name)]
            ),
            "seed, n = 64": lambda name: run(
                trees[name], ["verify", "--n", "64..64", SEED, *_no_cache(name)]
            ),
        }
        for label, fn in cases.items():
            times = {"baseline": [], "new": []}
            for r in range(repeats):
                for name in ("baseline", "new") if r % 2 == 0 else ("new", "baseline"):
                    times[name].append(fn(name)[0])
            results[label] = _row(times)
            print(_line(label, results[label]), flush=True)

        folder = tmp / "files"
        folder.mkdir()
        paths = [str(p) for p in claim_files(folder, files)]
        codes: dict = {}

        def sequential(name):
            total, out = 0.0, []
            for p in paths:
                seconds, code, _ = run(
                    trees[name], ["verify", "--n", MANY_NS, p, *_no_cache(name)], ok=(0, 1, 2, 3)
                )
                total += seconds
                out.append(code)
            codes[name] = out
            return total

        def parallel():
            seconds, _, out = run(
                trees["new"],
                [
                    "verify",
                    "--n",
                    MANY_NS,
                    "--jobs",
                    str(JOBS),
                    "--no-cache",
                    "--format",
                    "json",
                    *paths,
                ],
                ok=(0, 1, 2, 3),
            )
            codes["jobs"] = [d["exit_code"] for d in json.loads(out)["documents"]]
            return seconds

        times = {"baseline": [], "new": [], "jobs": []}
        for _ in range(max(1, repeats // 3)):
            times["jobs"].append(parallel())
            times["new"].append(sequential("new"))
            times["baseline"].append(sequential("baseline"))
        if codes["new"] != codes["baseline"]:
            raise RuntimeError("the two trees disagree on a file's exit code")
        if codes["jobs"] != codes["new"]:
            raise RuntimeError("--jobs 2 gave a file another exit code than its own process")
        label = "many files, --jobs 2 vs sequential"
        results[label] = {
            **_row({"baseline": times["new"], "new": times["jobs"]}),
            "baseline_tree_sequential": summary(times["baseline"]),
            "files": files,
            "exit_codes": {str(c): codes["new"].count(c) for c in sorted(set(codes["new"]))},
        }
        print(_line(label, results[label]), flush=True)
    return results


def _no_cache(name: str) -> list[str]:
    return [] if name == "baseline" else ["--no-cache"]


def _row(times: dict) -> dict:
    ratios = [n / b for n, b in zip(times["new"], times["baseline"], strict=True)]
    return {
        "baseline": summary(times["baseline"]),
        "new": summary(times["new"]),
        "ratio": {"min": min(ratios), "median": statistics.median(ratios)},
    }


def _line(label: str, row: dict) -> str:
    b, n, r = row["baseline"], row["new"], row["ratio"]
    return (
        f"{label:38s} baseline {b['min']:7.2f} / {b['median']:7.2f} s   "
        f"new {n['min']:7.2f} / {n['median']:7.2f} s   ratio {r['min']:.2f} / {r['median']:.2f}"
    )


def verdict(label: str, row: dict) -> str:
    if label == "build, warm cache":
        met = row["new"]["median"] <= WARM_BUDGET_S
        return f"≤ {WARM_BUDGET_S:.0f} s: {'met' if met else 'missed'}"
    goal = GOALS[label]
    return f"≤ {goal}×: {'met' if row['ratio']['median'] <= goal else 'missed'}"


def table(results: dict) -> str:
    lines = [
        "| case | baseline (min / median) | new (min / median) | ratio (min / median) | goal |",
        "|---|---|---|---|---|",
    ]
    for label, row in results.items():
        b, n, r = row["baseline"], row["new"], row["ratio"]
        lines.append(
            f"| {label} | {b['min']:.2f} / {b['median']:.2f} s | {n['min']:.2f} / "
            f"{n['median']:.2f} s | {r['min']:.2f} / {r['median']:.2f} | {verdict(label, row)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 30 files")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--files", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    files = args.files or (30 if args.quick else 200)
    started = datetime.datetime.now(datetime.UTC)
    results = measure(repeats, files)
    record = {
        "baseline_commit": BASELINE,
        "started_utc": started.strftime("%Y-%m-%d %H:%M"),
        "repeats": repeats,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "timing": "wall seconds of a fresh `python -m derive` process, start-up included",
        "results": results,
    }
    OUT_JSON.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    OUT_MD.write_text(table(results), encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
