"""Verification speed of the declared-model core against the commit before it.

The baseline is the package as it was at BASELINE_COMMIT (the batch-norm-only
core), taken from git history into a temporary folder.  Both verify the seed
document in fresh processes, interleaved, timed inside the process (start-up
and import excluded): every n in 2..16 in one call, and n = 64.  Goal: the
new core takes at most 1.0x the baseline's time, by the median ratio.

Writes reports/core_speed.json and prints a table.  Usage:
    python benchmarks/core_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "d6da37f"  # main before the declared-model core (issue 9)
SEED = "derive/documents/bn_backward.toml"
CASES = {"n = 2..16": "range(2, 17)", "n = 64": "(64,)"}
GOAL = 1.0
OUT = ROOT / "reports" / "core_speed.json"

_TIMER = """
import sys, time
sys.path.insert(0, {root!r})
from derive.claims import load
from derive.verify import verify_document
document = load({seed!r})
start = time.perf_counter()
result = verify_document(document, {ns})
elapsed = time.perf_counter() - start
assert all(c.holds for c in result.claims), "a seed claim does not hold"
print(elapsed)
"""


def baseline_tree(folder: Path) -> Path:
    """The baseline's derive/ package, unpacked under folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "derive"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def time_once(root: Path, ns: str) -> float:
    code = _TIMER.format(root=str(root), seed=str(root / SEED), ns=ns)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=root
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            base = baseline_tree(Path(tmp))
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            print(f"baseline {BASELINE_COMMIT} is not in this clone's history: {exc}")
            return 1
        for label, ns in CASES.items():
            times = {"baseline": [], "new": []}
            for _ in range(args.repeats):  # interleaved: a slow spell hits both
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
    OUT.write_text(json.dumps({"baseline": BASELINE_COMMIT, "rows": rows}, indent=2) + "\n")
    print(
        f"| seed document | baseline {BASELINE_COMMIT} (min / median) | new (min / median) "
        "| ratio (min / median) | goal ≤ 1.0 |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['baseline_min_s']:.2f} / {r['baseline_median_s']:.2f} s "
            f"| {r['new_min_s']:.2f} / {r['new_median_s']:.2f} s "
            f"| {r['ratio_min']:.2f} / {r['ratio_median']:.2f} "
            f"| {'met' if r['met'] else 'MISSED'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
