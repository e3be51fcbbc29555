"""Verification speed of the core against the commits before its rewrites.

Each baseline is the package as it was at one commit of BASELINES, taken from
git history into a temporary folder: before the declared-model core (the
batch-norm-only core), before exp and log, and before several sizes.  Each
verifies the seed document in fresh processes, interleaved with the current
tree, timed inside the process (start-up and import excluded): every n in 2..16
in one call, and n = 64.  Against the commit before several sizes, also every
document that commit shipped (its files, read by both cores) at n = 2..8, and
the verdicts of both are compared claim by claim.  Goal: the current core takes
at most 1.0x each baseline's time, by the median ratio, with the same verdicts.

Writes reports/core_speed.json and prints a table.  Usage:
    python benchmarks/core_speed.py [--repeats 5] [--baseline COMMIT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402

ROOT = timing.ROOT
BASELINES = (
    ("d6da37f", "main before the declared-model core (issue 9)"),
    ("a6afb8c", "main before exp and log (issue 17)"),
    ("d386642", "main before several sizes (issue 19)"),
)
SEED = "derive/documents/bn_backward.toml"
CASES = {"n = 2..16": "range(2, 17)", "n = 64": "(64,)"}
# Baselines that also verify every document they shipped, at these n.
EVERY_DOCUMENT = {"d386642": ("every document, n = 2..8", "range(2, 9)")}
GOAL = 1.0
OUT = ROOT / "reports" / "core_speed.json"

_TIMER = """
import json, sys, time
sys.path.insert(0, {root!r})
from derive.claims import load
try:
    from derive.checking import verify_document
except ImportError:  # a baseline from before derive/verify.py became checking.py
    from derive.verify import verify_document
documents = [load(p) for p in {paths!r}]
start = time.perf_counter()
results = [verify_document(d, {ns}) for d in documents]
elapsed = time.perf_counter() - start
pairs = [(d, c) for d, r in zip(documents, results) for c in r.claims]
verdicts = {{f"{{d.id}}/{{c.claim.id}}": c.status for d, c in pairs}}
print(json.dumps({{"elapsed": elapsed, "verdicts": verdicts}}))
"""


def time_once(root: Path, ns: str, paths=None) -> tuple[float, dict]:
    """(seconds, claim -> verdict) of one fresh process of the core at root verifying
    paths (the seed document by default) at ns."""
    paths = [str(p) for p in paths] if paths else [str(root / SEED)]
    code = _TIMER.format(root=str(root), paths=paths, ns=ns)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=root
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    return record["elapsed"], record["verdicts"]


def compare(commit: str, repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = timing.baseline_tree(commit, Path(tmp), "derive")
        cases = [(label, ns, None) for label, ns in CASES.items()]
        if commit in EVERY_DOCUMENT:
            label, ns = EVERY_DOCUMENT[commit]
            cases.append((label, ns, sorted((base / "derive" / "documents").glob("*.toml"))))
        for label, ns, paths in cases:
            times = {"baseline": [], "new": []}
            verdicts = {}
            for _ in range(repeats):  # interleaved: a slow spell hits both
                for side, root in (("baseline", base), ("new", ROOT)):
                    elapsed, verdicts[side] = time_once(root, ns, paths)
                    times[side].append(elapsed)
            ratios = [n / b for n, b in zip(times["new"], times["baseline"], strict=True)]
            same = verdicts["new"] == verdicts["baseline"]
            rows.append(
                {
                    "case": label,
                    "claims": len(verdicts["new"]),
                    "same_verdicts": same,
                    "baseline_min_s": min(times["baseline"]),
                    "baseline_median_s": statistics.median(times["baseline"]),
                    "new_min_s": min(times["new"]),
                    "new_median_s": statistics.median(times["new"]),
                    "ratio_min": min(times["new"]) / min(times["baseline"]),
                    "ratio_median": statistics.median(ratios),
                    "goal": GOAL,
                    "met": statistics.median(ratios) <= GOAL and same,
                }
            )
    return rows


def markdown(record: dict) -> str:
    """docs/benchmarks.md's table: one line per baseline and case."""
    lines = [
        "| documents | baseline | baseline (min / median) | new (min / median) "
        f"| ratio (min / median) | same verdicts | goal ≤ {GOAL} |",
        "|---|---|---|---|---|---|---|",
    ]
    for base in record["baselines"]:
        for r in base["rows"]:
            lines.append(
                f"| {r['case']} | {base['baseline']} "
                f"| {r['baseline_min_s']:.2f} / {r['baseline_median_s']:.2f} s "
                f"| {r['new_min_s']:.2f} / {r['new_median_s']:.2f} s "
                f"| {r['ratio_min']:.2f} / {r['ratio_median']:.2f} "
                f"| {_same(r)} | {'met' if r['met'] else '**missed**'} |"
            )
    return "\n".join(lines) + "\n"


def _same(row: dict) -> str:
    if "same_verdicts" not in row:  # a record from before the verdicts were compared
        return "--"
    return f"yes ({row['claims']} claims)" if row["same_verdicts"] else "**no**"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", choices=[c for c, _ in BASELINES], help="only this one")
    args = parser.parse_args(argv)
    old = json.loads(OUT.read_text()) if args.baseline and OUT.is_file() else {"baselines": []}
    out = [b for b in old["baselines"] if b["baseline"] != args.baseline]
    for commit, what in BASELINES:
        if args.baseline and commit != args.baseline:
            continue
        try:
            rows = compare(commit, args.repeats)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            print(f"baseline {commit} is not in this clone's history: {exc}")
            return 1
        out.append({"baseline": commit, "what": what, "rows": rows})
    order = [c for c, _ in BASELINES]
    record = {"baselines": sorted(out, key=lambda b: order.index(b["baseline"]))}
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
