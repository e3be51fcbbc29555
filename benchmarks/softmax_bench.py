"""Benchmarks of the generated softmax family and activations against PyTorch's CPU kernels.

    python benchmarks/softmax_bench.py [--quick] [--out reports] [--threads 1]

Every case times ours and PyTorch's on the same arrays, interleaved (``timing.interleaved``:
one call of each per round, so that drift in machine load hits both alike), and reports
the minimum and the median of each and their ratios, with:

- copies: our time over one ``np.copyto`` of the input into a preallocated array;
- peak: tracemalloc's high-water mark while ours runs, in input arrays (the output
  it returns counts, so 1.0 is the least any backward can allocate).

Cases (``FULL``): softmax and log-softmax backward (``torch._softmax_backward_data``,
``torch._log_softmax_backward_data``) on (4096, 1024), (65536, 256) and (64, 50257), with
the forwards beside them; cross-entropy forward + backward with class indices against
``F.cross_entropy`` and autograd; gelu (tanh) and silu backward (``aten.gelu_backward``,
``aten.silu_backward``), sigmoid and tanh backward on 2**24 elements. float32 and float64.

Writes ``<out>/softmax_bench.json`` and ``<out>/softmax_bench.md`` (docs/benchmarks.md's table);
prints the table and the goals, met or missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (beside this file; it puts the repository on sys.path)

SCHEMA = 1
ROWS = ((4096, 1024), (65536, 256), (64, 50257))
CE_ROWS = ((4096, 1024), (64, 50257))
ELEMENTS = 2**24
FULL = {"rows": ROWS, "ce_rows": CE_ROWS, "elements": ELEMENTS, "repeats": 15, "budget_s": 2.0}
QUICK = {
    "rows": ((256, 1024), (64, 5000)),
    "ce_rows": ((256, 1024),),
    "elements": 2**16,
    "repeats": 3,
    "budget_s": 0.1,
}
DTYPES = ("float32", "float64")

# Goals of the issue that asked for these functions.
BACKWARD_RATIO = 1.0  # every backward at most PyTorch's time
CE_RATIO = 0.8  # cross-entropy forward + backward: one fused pass for p - t
PEAK_ARRAYS = 1.3  # extra memory, in input arrays, the output included


def _cases(config):
    """(group, name, shape, dtype, ours, torch, input array) for every timed case."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from derive.generated import activations as act
    from derive.generated import softmax as sm

    out = []
    for shape in config["rows"]:
        for dtype in DTYPES:
            rng = np.random.default_rng(0)
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            dy = rng.standard_normal(shape).astype(dtype)
            tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
            tdtype = tx.dtype
            y, ly = sm.softmax_forward(x), sm.log_softmax_forward(x)
            ty, tly = torch.softmax(tx, -1), torch.log_softmax(tx, -1)
            out += [
                ("forward", "softmax", shape, dtype, lambda x=x: sm.softmax_forward(x),
                 lambda t=tx: torch.softmax(t, -1), x),
                ("backward", "softmax", shape, dtype,
                 lambda a=(dy, y): sm.softmax_backward(*a),
                 lambda a=(tdy, ty, -1, tdtype): torch._softmax_backward_data(*a), x),
                ("forward", "log_softmax", shape, dtype,
                 lambda x=x: sm.log_softmax_forward(x),
                 lambda t=tx: torch.log_softmax(t, -1), x),
                ("backward", "log_softmax", shape, dtype,
                 lambda a=(dy, ly): sm.log_softmax_backward(*a),
                 lambda a=(tdy, tly, -1, tdtype): torch._log_softmax_backward_data(*a), x),
            ]  # fmt: skip
    for shape in config["ce_rows"]:
        for dtype in DTYPES:
            rng = np.random.default_rng(1)
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            target = rng.integers(0, shape[-1], shape[0])
            tt = torch.from_numpy(target)

            def ours(x=x, t=target):
                loss = sm.cross_entropy_forward(x, t)
                return loss, sm.cross_entropy_backward(1.0, x, t)

            def theirs(x=x, t=tt):
                tx = torch.from_numpy(x).requires_grad_()
                loss = F.cross_entropy(tx, t)
                return loss, torch.autograd.grad(loss, tx)

            out.append(("forward+backward", "cross_entropy", shape, dtype, ours, theirs, x))
    n = config["elements"]
    aten = torch.ops.aten
    for dtype in DTYPES:
        rng = np.random.default_rng(2)
        x = (rng.standard_normal(n) * 3).astype(dtype)
        dy = rng.standard_normal(n).astype(dtype)
        s, th = 1 / (1 + np.exp(-x)), np.tanh(x)
        tx, tdy, ts, tth = (torch.from_numpy(a) for a in (x, dy, s, th))
        out += [
            ("backward", "gelu_tanh", (n,), dtype, lambda a=(dy, x): act.gelu_backward(*a),
             lambda a=(tdy, tx): aten.gelu_backward(*a, approximate="tanh"), x),
            ("backward", "silu", (n,), dtype, lambda a=(dy, x): act.silu_backward(*a),
             lambda a=(tdy, tx): aten.silu_backward(*a), x),
            ("backward", "sigmoid", (n,), dtype, lambda a=(dy, s): act.sigmoid_backward(*a),
             lambda a=(tdy, ts): aten.sigmoid_backward(*a), x),
            ("backward", "tanh", (n,), dtype, lambda a=(dy, th): act.tanh_backward(*a),
             lambda a=(tdy, tth): aten.tanh_backward(*a), x),
        ]  # fmt: skip
    return out


def peak_arrays(fn, x) -> float:
    """tracemalloc's peak while fn runs, in arrays of x's size (what fn returns included)."""
    peak, _ = timing.traced_peak(fn)
    return peak / x.nbytes


def measure(config, log=print) -> list[dict]:
    import numpy as np

    rows = []
    for group, name, shape, dtype, ours, theirs, x in _cases(config):
        dst = np.empty_like(x)

        def copy(d=dst, s=x):
            np.copyto(d, s)

        timed = (("ours", ours), ("torch", theirs), ("copy", copy))
        best, median, rounds = timing.interleaved(
            timed, config["repeats"], budget_s=config["budget_s"]
        )
        row = {
            "group": group,
            "function": name,
            "shape": list(shape),
            "dtype": dtype,
            "rounds": rounds,
            **{f"{k}_s": v for k, v in best.items()},
            **{f"{k}_median_s": v for k, v in median.items()},
            "ratio": best["ours"] / best["torch"],
            "ratio_median": median["ours"] / median["torch"],
            "copies": best["ours"] / best["copy"],
            "torch_copies": best["torch"] / best["copy"],
            "peak_arrays": peak_arrays(ours, x),
        }
        rows.append(row)
        log(
            f"  {name:>13} {group:>16} {_shape(shape):>12} {dtype}: ours"
            f" {best['ours'] * 1e3:8.3f} ms, torch {best['torch'] * 1e3:8.3f} ms,"
            f" ratio {row['ratio']:4.2f} (median {row['ratio_median']:4.2f}),"
            f" {row['copies']:5.2f} copies, peak {row['peak_arrays']:.2f} arrays"
        )
    return rows


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")" if len(shape) > 1 else f"{shape[0]}"


def evaluate_goals(rows) -> list[dict]:
    def goal(goal_id, text, chosen, key, limit):
        if not chosen:
            return {"id": goal_id, "text": text, "met": None, "value": "not measured"}
        worst = max(chosen, key=lambda r: r[key])
        misses = [r for r in chosen if r[key] > limit]
        where = f"{worst['function']} {worst['group']} {_shape(worst['shape'])} {worst['dtype']}"
        return {
            "id": goal_id,
            "text": text,
            "met": not misses,
            "value": f"worst {worst[key]:.2f} ({where}); {len(misses)} of {len(chosen)} over",
            "misses": [
                f"{r['function']} {_shape(r['shape'])} {r['dtype']}: {r[key]:.2f}" for r in misses
            ],
        }

    backward = [r for r in rows if r["group"] == "backward"]
    ce = [r for r in rows if r["function"] == "cross_entropy"]
    return [
        goal("backward", f"every backward at most {BACKWARD_RATIO:g}x PyTorch (min)",
             backward, "ratio", BACKWARD_RATIO),
        goal("cross-entropy", f"cross-entropy forward + backward at most {CE_RATIO:g}x PyTorch",
             ce, "ratio", CE_RATIO),
        goal("memory", f"peak memory of ours at most {PEAK_ARRAYS:g} input arrays",
             [r for r in rows if r["group"] != "forward"], "peak_arrays", PEAK_ARRAYS),
    ]  # fmt: skip


def markdown(results) -> str:
    """The README's table: one line per case, ours and PyTorch, min and median."""
    lines = [
        f"Backend: {results['machine']['backend']}; {results['threads']['torch_threads']} thread;"
        f" {results['machine']['cpu_model']}; ratios ours/PyTorch, min (median).",
        "",
        "| function | pass | shape | dtype | ours ms | torch ms | ratio | copies | peak |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['function']} | {r['group']} | {_shape(r['shape'])} | {r['dtype']} "
            f"| {r['ours_s'] * 1e3:.3f} | {r['torch_s'] * 1e3:.3f} "
            f"| {r['ratio']:.2f} ({r['ratio_median']:.2f}) | {r['copies']:.1f} "
            f"| {r['peak_arrays']:.2f} |"
        )
    lines.append("")
    for g in results["goals"]:
        lines.append(f"- {timing.goal_word(g['met'])}: {g['text']}: {g['value']}")
    return "\n".join(lines) + "\n"


def run(config, threads: int, log=print) -> dict:
    info = timing.set_threads(threads)
    from derive.generated import softmax

    machine = timing.machine_info()
    machine["backend"] = softmax.BACKEND
    rows = measure(config, log)
    return {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "threads": info,
        "config": {k: v for k, v in config.items()},
        "rows": rows,
        "goals": evaluate_goals(rows),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for a trial run")
    p.add_argument("--out", type=Path, default=timing.ROOT / "reports", help="output folder")
    p.add_argument("--threads", type=int, default=1, help="threads of PyTorch and numba")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = QUICK if args.quick else FULL
    results = run(config, args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "softmax_bench.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    (args.out / "softmax_bench.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
