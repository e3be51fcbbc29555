"""Verification speed of the core against the commits before its two rewrites.

Each baseline is the package as it was at one commit of BASELINES, taken from
git history into a temporary folder: before the declared-model core (the
batch-norm-only core), and before exp and log.  Each verifies the seed
document in fresh processes, interleaved with the current tree, timed inside
the process (start-up and import excluded): every n in 2..16 in one call, and
n = 64.  Goal: the current core takes at most 1.0x each baseline's time, by
the median ratio.

Writes reports/core_speed.json and prints a table.  Usage:
    python benchmarks/core_speed.py [--repeats 5]
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
)
SEED = "derive/documents/bn_backward.toml"
CASES = {"n = 2..16": "range(2, 17)", "n = 64": "(64,)"}
GOAL = 1.0
OUT = ROOT / "reports" / "core_speed.json"

_TIMER = """
import sys, time
sys.path.insert(0, {root!r})
from derive.claims import load
try:
    from derive.checking import verify_document
except ImportError:  # a baseline from before derive/verify.py became checking.py
    from derive.verify import verify_document
document = load({seed!r})
start = time.perf_counter()
result = verify_document(document, {ns})
elapsed = time.perf_counter() - start
assert all(c.holds for c in result.claims), "a seed claim does not hold"
print(elapsed)
"""


def time_once(root: Path, ns: str) -> float:
    code = _TIMER.format(root=str(root), seed=str(root / SEED), ns=ns)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=root
    )
    return float(out.stdout.strip().splitlines()[-1])


def compare(commit: str, repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = timing.baseline_tree(commit, Path(tmp), "derive")
        for label, ns in CASES.items():
            times = {"baseline": [], "new": []}
            for _ in range(repeats):  # interleaved: a slow spell hits both
                times["baseline"].append(time_once(base, ns))
                times["new"].append(time_once(ROOT, ns))
            ratios = [n / b for n, b in zip(times["new"], times["baseline"], strict=True)]
            rows.append(
                {
                    "case": label,
                    "baseline_min_s": min(times["baseline"]),
                    "baseline_median_s": statistics.median(times["baseline"]),
                    "new_min_s": min(times["new"]),
                    "new_median_s": statistics.median(times["new"]),
                    "ratio_min": min(times["new"]) / min(times["baseline"]),
                    "ratio_median": statistics.median(ratios),
                    "goal": GOAL,
                    "met": statistics.median(ratios) <= GOAL,
                }
            )
    return rows


def markdown(record: dict) -> str:
    """docs/benchmarks.md's table: one line per baseline and case."""
    lines = [
        "| seed document | baseline | baseline (min / median) | new (min / median) "
        f"| ratio (min / median) | goal ≤ {GOAL} |",
        "|---|---|---|---|---|---|",
    ]
    for base in record["baselines"]:
        for r in base["rows"]:
            lines.append(
                f"| {r['case']} | {base['baseline']} "
                f"| {r['baseline_min_s']:.2f} / {r['baseline_median_s']:.2f} s "
                f"| {r['new_min_s']:.2f} / {r['new_median_s']:.2f} s "
                f"| {r['ratio_min']:.2f} / {r['ratio_median']:.2f} "
                f"| {'met' if r['met'] else '**missed**'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", choices=[c for c, _ in BASELINES], help="only this one")
    args = parser.parse_args(argv)
    out = []
    for commit, what in BASELINES:
        if args.baseline and commit != args.baseline:
            continue
        try:
            rows = compare(commit, args.repeats)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            print(f"baseline {commit} is not in this clone's history: {exc}")
            return 1
        out.append({"baseline": commit, "what": what, "rows": rows})
    record = {"baselines": out}
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
