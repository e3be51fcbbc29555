"""Benchmark of the generated attention backward against PyTorch's CPU flash-attention backward.

    python benchmarks/attention_bench.py [--quick] [--out reports] [--threads 1]

Every case times ``derive.generated.attention.attention_backward`` and PyTorch's backward of
``scaled_dot_product_attention`` (autograd on one retained graph, so only the backward is
timed) on the same float32 arrays of shape (B·H, T, E), causal and not, interleaved
(``timing.interleaved``), and reports the minimum and median of each and their ratio, with
memory measured two ways:

- extra: tracemalloc's high-water mark while ours runs, less the dq, dk and dv it returns,
  in MiB and as a fraction of one T x T float32 matrix (the goal: at most 1/8 at T = 4096);
- rss: the growth of the resident set's high-water mark over one backward call (after one
  untimed call) in a fresh process (Linux's /proc/self/clear_refs), for ours and for
  PyTorch alike, whose allocations tracemalloc cannot see. glibc is told to map every block
  of 64 KiB or more on its own (MALLOC_MMAP_THRESHOLD_), so that a freed block leaves the
  resident set and the next call's blocks count again.

Writes ``<out>/attention_bench.json`` and ``<out>/attention_bench.md`` (the table of
docs/benchmarks.md and the README); prints the table and the goals, met or missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (beside this file; it puts the repository on sys.path)

SCHEMA = 1
FULL = {"shapes": ((8, 1024, 64), (2, 4096, 64)), "repeats": 7, "budget_s": 3.0, "rss": True}
QUICK = {"shapes": ((2, 128, 16),), "repeats": 2, "budget_s": 0.0, "rss": True}

BACKWARD_RATIO = 1.0  # attention backward at most PyTorch's time
EXTRA_FRACTION = 1 / 8  # peak extra memory at most this part of one T x T float32 matrix
GOAL_T = 4096  # ... at this T
MMAP_THRESHOLD = 1 << 16  # bytes: glibc maps blocks this large or more on their own


def _arrays(shape, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]


def _ours(shape, causal):
    from derive.generated import attention as att

    q, k, v, do = _arrays(shape)
    o, lse = att.attention_forward(q, k, v, causal=causal)
    return (lambda: att.attention_backward(do, q, k, v, o, lse, causal=causal)), q


def _torch(shape, causal):
    import torch

    q, k, v, do = (torch.from_numpy(a) for a in _arrays(shape))
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    o = torch.nn.functional.scaled_dot_product_attention(*leaves, is_causal=causal)

    def backward():
        return torch.autograd.grad(o, leaves, do, retain_graph=True)

    return backward


def _status() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) * 1024
    return out


def rss_growth(which: str, shape, causal: bool) -> int:
    """Bytes the resident set's peak grows by over one backward call, in this process."""
    timing.set_threads(1)
    fn = _ours(shape, causal)[0] if which == "ours" else _torch(shape, causal)
    fn()  # once untimed: thread pools and one-time buffers are not the call's memory
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts at the current RSS
    before = _status()["VmRSS"]
    fn()
    return max(0, _status()["VmHWM"] - before)


def _rss_in_fresh_process(which, shape, causal) -> int | None:
    args = [sys.executable, __file__, "--rss", which, ",".join(map(str, shape)), str(int(causal))]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        print(done.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    return int(done.stdout.strip())


def measure(config, log=print) -> list[dict]:
    rows = []
    for shape in config["shapes"]:
        for causal in (False, True):
            ours, q = _ours(shape, causal)
            theirs = _torch(shape, causal)
            best, median, rounds = timing.interleaved(
                (("ours", ours), ("torch", theirs)), config["repeats"], budget_s=config["budget_s"]
            )
            peak, _ = timing.traced_peak(ours)
            extra = peak - 3 * q.nbytes  # dq, dk, dv are the results
            t = shape[1]
            row = {
                "shape": list(shape),
                "dtype": "float32",
                "causal": causal,
                "rounds": rounds,
                **{f"{k}_s": v for k, v in best.items()},
                **{f"{k}_median_s": v for k, v in median.items()},
                "ratio": best["ours"] / best["torch"],
                "ratio_median": median["ours"] / median["torch"],
                "extra_bytes": extra,
                "extra_fraction": extra / (t * t * 4),
            }
            if config["rss"]:
                for which in ("ours", "torch"):
                    row[f"rss_{which}_bytes"] = _rss_in_fresh_process(which, shape, causal)
            rows.append(row)
            log(
                f"  {timing.shape_text(shape):>16} causal={causal!s:5}: ours"
                f" {best['ours'] * 1e3:8.2f} ms, torch {best['torch'] * 1e3:8.2f} ms,"
                f" ratio {row['ratio']:4.2f} (median {row['ratio_median']:4.2f}),"
                f" extra {extra / 2**20:.1f} MiB ({row['extra_fraction']:.3f} of T x T)"
            )
    return rows


def evaluate_goals(rows) -> list[dict]:
    def goal(goal_id, text, chosen, key, limit):
        if not chosen:
            return {"id": goal_id, "text": text, "met": None, "value": "not measured"}
        worst = max(chosen, key=lambda r: r[key])
        misses = [r for r in chosen if r[key] > limit]
        where = f"{timing.shape_text(worst['shape'])} causal={worst['causal']}"
        return {
            "id": goal_id,
            "text": text,
            "met": not misses,
            "value": f"worst {worst[key]:.3f} ({where}); {len(misses)} of {len(chosen)} over",
        }

    at_goal_t = [r for r in rows if r["shape"][1] == GOAL_T]
    return [
        goal("backward", f"attention backward at most {BACKWARD_RATIO:g}x PyTorch (min)",
             rows, "ratio", BACKWARD_RATIO),
        goal("memory", f"peak extra memory at T = {GOAL_T} at most 1/{1 / EXTRA_FRACTION:g} of"
             " one T x T float32 matrix", at_goal_t, "extra_fraction", EXTRA_FRACTION),
    ]  # fmt: skip


def _mib(value) -> str:
    return "--" if value is None else f"{value / 2**20:.1f}"


def markdown(results) -> str:
    """The table: one line per case, ours and PyTorch, min and median, and memory."""
    lines = [
        f"{results['threads']['torch_threads']} thread; {results['machine']['cpu_model']};"
        " float32; ratios ours/PyTorch, min (median); memory in MiB.",
        "",
        "| (B·H, T, E) | causal | ours ms | torch ms | ratio | extra (of T×T) "
        "| RSS ours | RSS torch |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {timing.shape_text(r['shape'])} | {'yes' if r['causal'] else 'no'} "
            f"| {r['ours_s'] * 1e3:.1f} | {r['torch_s'] * 1e3:.1f} "
            f"| {r['ratio']:.2f} ({r['ratio_median']:.2f}) "
            f"| {_mib(r['extra_bytes'])} ({r['extra_fraction']:.3f}) "
            f"| {_mib(r.get('rss_ours_bytes'))} | {_mib(r.get('rss_torch_bytes'))} |"
        )
    lines.append("")
    for g in results["goals"]:
        lines.append(f"- {timing.goal_word(g['met'])}: {g['text']}: {g['value']}")
    return "\n".join(lines) + "\n"


def run(config, threads: int, log=print) -> dict:
    info = timing.set_threads(threads)
    rows = measure(config, log)
    return {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": timing.machine_info() | {"backend": "numpy (one path: BLAS, blocks)"},
        "threads": info,
        "config": {k: v for k, v in config.items()},
        "rows": rows,
        "goals": evaluate_goals(rows),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for a trial run")
    p.add_argument("--out", type=Path, default=timing.ROOT / "reports", help="output folder")
    p.add_argument("--threads", type=int, default=1, help="threads of PyTorch and BLAS")
    p.add_argument("--rss", nargs=3, metavar=("WHICH", "SHAPE", "CAUSAL"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rss:  # one measurement, in this fresh process (see rss_growth)
        which, shape, causal = args.rss
        print(rss_growth(which, tuple(int(s) for s in shape.split(",")), causal == "1"))
        return 0
    config = QUICK if args.quick else FULL
    results = run(config, args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attention_bench.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    (args.out / "attention_bench.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
