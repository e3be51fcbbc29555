"""The normalization kernels against PyTorch's CPU kernels: the batch-norm backward (in
seconds, in "array copies" and in peak extra memory) and the forward and backward of
LayerNorm, RMSNorm and GroupNorm.  Run by ``bench.py``; ``--rss-child`` is the fresh
process that measures resident-set growth.

A "copy" is the time of one ``np.copyto`` into a preallocated array of the same shape
(``x.copy()``, which also faults in fresh pages as a backward's new dx does, is reported
beside it).  Peak memory is tracemalloc's for ours (NumPy reports its allocations to it)
and the resident-set high-water mark in a fresh process for both ours and PyTorch.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import BUDGET_S, interleaved, shape_text, traced_peak  # noqa: E402

EPS = 1e-5


def make_inputs(shape, dtype, seed=0):
    import numpy as np

    from derive.generated.batchnorm import batchnorm_forward

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 2
    x += 0.5
    dy = rng.standard_normal(shape, dtype=dtype)
    channels = shape[1]
    gamma = rng.standard_normal(channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    _, mean, invstd = batchnorm_forward(x, gamma, beta, eps=EPS)
    return dy, x, gamma, mean, invstd


def torch_backward(dy_t, x_t, gamma_t, mean_t, invstd_t):
    import torch

    return torch.ops.aten.native_batch_norm_backward(
        dy_t, x_t, gamma_t, None, None, mean_t, invstd_t, True, EPS, [True, True, True]
    )


def rel_err(ours, ref) -> float:
    import numpy as np

    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))) / scale


def backward_section(shapes, dtypes, repeats, log=print) -> dict:
    import numpy as np
    import torch

    from derive.generated.batchnorm import batchnorm_backward

    rows = []
    for shape in shapes:
        for dtype in dtypes:
            dy, x, gamma, mean, invstd = make_inputs(shape, dtype)
            tensors = [torch.from_numpy(a) for a in (dy, x, gamma, mean, invstd)]
            dst = np.empty_like(x)
            np.copyto(dst, x)

            def ours(a=(dy, x, gamma, mean, invstd)):
                return batchnorm_backward(*a)

            def theirs(t=tensors):
                return torch_backward(*t)

            def copy(d=dst, s=x):
                np.copyto(d, s)

            def fresh_copy(s=x):
                return s.copy()

            got, ref = ours(), [t.numpy() for t in theirs()]
            errors = [rel_err(a, b) for a, b in zip(got, ref, strict=True)]
            # interleave the three so that drift in machine load hits all alike
            timed = (("ours", ours), ("torch", theirs), ("copy", copy), ("fresh", fresh_copy))
            # PyTorch's time on one shape swings 3x between calls (whether freed
            # pages are reused), so the median is kept beside the minimum.
            best, median, rounds = interleaved(timed, repeats, budget_s=BUDGET_S)
            row = {
                "shape": list(shape),
                "dtype": dtype,
                "nbytes": int(x.nbytes),
                "rounds": rounds,
                "ours_s": best["ours"],
                "torch_s": best["torch"],
                "copy_s": best["copy"],
                "fresh_copy_s": best["fresh"],
                "ours_copies": best["ours"] / best["copy"],
                "torch_copies": best["torch"] / best["copy"],
                "ratio_torch": best["ours"] / best["torch"],
                "ours_median_s": median["ours"],
                "torch_median_s": median["torch"],
                "ratio_torch_median": median["ours"] / median["torch"],
                "max_rel_err": {"dx": errors[0], "dgamma": errors[1], "dbeta": errors[2]},
            }
            rows.append(row)
            log(
                f"  {shape_text(shape):>16} {dtype}: ours {best['ours'] * 1e3:8.2f} ms"
                f" ({row['ours_copies']:4.2f} copies), torch {best['torch'] * 1e3:8.2f} ms"
                f" ({row['torch_copies']:4.2f} copies), ours/torch {row['ratio_torch']:4.2f}"
                f" (medians {row['ratio_torch_median']:4.2f});"
                f" x.copy() {best['fresh'] / best['copy']:4.2f} copies;"
                f" dx rel. err. {errors[0]:.1e}"
            )
            del dy, x, gamma, mean, invstd, tensors, dst, got, ref
            gc.collect()
    return {"rows": rows, "repeats": repeats, "eps": EPS}


def _family_case(module: str, shape, groups, dtype):
    """(our forward, our backward, torch forward, torch backward) on one input."""
    import importlib

    import numpy as np
    import torch
    import torch.nn.functional as F

    mod = importlib.import_module(f"derive.generated.{module}")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    pshape = (shape[1],) if module == "groupnorm" else (shape[-1],)
    gamma, beta = (rng.standard_normal(pshape).astype(dtype) for _ in range(2))
    tx, tdy, tg, tb = (torch.from_numpy(a) for a in (x, dy, gamma, beta))
    if module == "layernorm":
        stats = mod.layernorm_forward(x, gamma, beta, EPS)[1:]
        _, tmean, trstd = torch.ops.aten.native_layer_norm(tx, list(pshape), tg, tb, EPS)
        return (
            lambda: mod.layernorm_forward(x, gamma, beta, EPS),
            lambda: mod.layernorm_backward(dy, x, gamma, *stats),
            lambda: torch.ops.aten.native_layer_norm(tx, list(pshape), tg, tb, EPS),
            lambda: torch.ops.aten.native_layer_norm_backward(
                tdy, tx, list(pshape), tmean, trstd, tg, tb, [True, True, True]
            ),
            x,
        )
    if module == "rmsnorm":
        stats = mod.rmsnorm_forward(x, gamma, 1e-6)[1:]
        txg, tgg = tx.clone().requires_grad_(), tg.clone().requires_grad_()
        ty = F.rms_norm(txg, pshape, tgg, 1e-6)

        def torch_backward():
            return torch.autograd.grad(ty, (txg, tgg), tdy, retain_graph=True)

        return (
            lambda: mod.rmsnorm_forward(x, gamma, 1e-6),
            lambda: mod.rmsnorm_backward(dy, x, gamma, *stats),
            lambda: F.rms_norm(tx, pshape, tg, 1e-6),
            torch_backward,
            x,
        )
    n, c = shape[0], shape[1]
    hw = x.size // (n * c)
    stats = mod.groupnorm_forward(x, groups, gamma, beta, EPS)[1:]
    _, tmean, trstd = torch.ops.aten.native_group_norm(tx, tg, tb, n, c, hw, groups, EPS)
    return (
        lambda: mod.groupnorm_forward(x, groups, gamma, beta, EPS),
        lambda: mod.groupnorm_backward(dy, x, groups, gamma, *stats),
        lambda: torch.ops.aten.native_group_norm(tx, tg, tb, n, c, hw, groups, EPS),
        lambda: torch.ops.aten.native_group_norm_backward(
            tdy, tx, tmean, trstd, tg, n, c, hw, groups, [True, True, True]
        ),
        x,
    )


def family_section(cases, dtypes, repeats, log=print) -> dict:
    """LayerNorm, RMSNorm and GroupNorm, forward and backward, against PyTorch."""
    import numpy as np

    rows = []
    for module, shape, groups in cases:
        for dtype in dtypes:
            ours_f, ours_b, torch_f, torch_b, x = _family_case(module, shape, groups, dtype)
            dst = np.empty_like(x)

            def copy(d=dst, s=x):
                np.copyto(d, s)

            timed = (("ours_f", ours_f), ("torch_f", torch_f), ("ours_b", ours_b))
            timed += (("torch_b", torch_b), ("copy", copy))
            best, median, rounds = interleaved(timed, repeats, budget_s=BUDGET_S)
            peak, _ = traced_peak(ours_b)
            row = {
                "module": module,
                "shape": list(shape),
                "groups": groups,
                "dtype": dtype,
                "rounds": rounds,
                "nbytes": int(x.nbytes),
                **{f"{k}_s": v for k, v in best.items()},
                **{f"{k}_median_s": v for k, v in median.items()},
                "ratio_forward": best["ours_f"] / best["torch_f"],
                "ratio_forward_median": median["ours_f"] / median["torch_f"],
                "ratio_torch": best["ours_b"] / best["torch_b"],
                "ratio_torch_median": median["ours_b"] / median["torch_b"],
                "ours_copies": best["ours_b"] / best["copy"],
                "ours_tracemalloc_arrays": peak / x.nbytes,
            }
            rows.append(row)
            log(
                f"  {module:>9} {shape_text(shape):>16} {dtype}: backward ours"
                f" {best['ours_b'] * 1e3:8.2f} ms, torch {best['torch_b'] * 1e3:8.2f} ms,"
                f" ours/torch {row['ratio_torch']:4.2f}"
                f" (medians {row['ratio_torch_median']:4.2f});"
                f" forward ours/torch {row['ratio_forward']:4.2f};"
                f" {row['ours_copies']:4.2f} copies;"
                f" peak {row['ours_tracemalloc_arrays']:.2f} arrays"
            )
            del ours_f, ours_b, torch_f, torch_b, x, dst
            gc.collect()
    return {"rows": rows, "repeats": repeats}


def tracemalloc_peak(shape, dtype) -> dict:
    """Peak bytes traced while ours runs, including the dx it returns."""
    from derive.generated.batchnorm import batchnorm_backward

    dy, x, gamma, mean, invstd = make_inputs(shape, dtype)
    peak, (dx, _, _) = traced_peak(lambda: batchnorm_backward(dy, x, gamma, mean, invstd))
    return {"peak_bytes": peak, "output_bytes": int(dx.nbytes), "nbytes": int(x.nbytes)}


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def rss_child(impl: str, configs: list, threads: int) -> None:
    """Peak resident-set growth during one backward, per config, as JSON lines.

    Runs with MALLOC_MMAP_THRESHOLD_ fixed (set by the parent), so every large
    buffer is a fresh mmap and freed ones go back to the system; the
    high-water mark is reset through /proc/self/clear_refs before each call."""
    import numpy as np

    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
    from derive.generated.batchnorm import batchnorm_backward

    for shape, dtype in configs:
        args = make_inputs(tuple(shape), dtype)
        if impl == "torch":
            args = [torch.from_numpy(a) for a in args]
            call = torch_backward
        else:
            call = batchnorm_backward
        call(*args)  # warm-up: first-use allocations are not the backward's
        gc.collect()
        rss = _vm("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        out = call(*args)
        peak = _vm("VmHWM") - rss
        nbytes = int(np.asarray(args[1]).nbytes)
        print(json.dumps({"shape": shape, "dtype": dtype, "peak_bytes": peak, "nbytes": nbytes}))
        del args, out
        gc.collect()


def rss_peaks(impl: str, configs, threads: int) -> list | None:
    if not (Path("/proc/self/clear_refs").exists() and Path("/proc/self/status").exists()):
        return None
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--rss-child",
        impl,
        json.dumps([[list(s), d] for s, d in configs]),
        "--threads",
        str(threads),
    ]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(f"  (RSS measurement of {impl} failed: {proc.stderr.strip()[-300:]})")
        return None
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def memory_section(shapes, dtypes, threads, *, rss=True, log=print) -> dict:
    configs = [(tuple(s), d) for s in shapes for d in dtypes]
    rss_ours = rss_peaks("ours", configs, threads) if rss else None
    rss_torch = rss_peaks("torch", configs, threads) if rss else None
    rows = []
    for k, (shape, dtype) in enumerate(configs):
        tm = tracemalloc_peak(shape, dtype)
        row = {
            "shape": list(shape),
            "dtype": dtype,
            "nbytes": tm["nbytes"],
            "ours_tracemalloc_bytes": tm["peak_bytes"],
            "ours_tracemalloc_arrays": tm["peak_bytes"] / tm["nbytes"],
            "ours_output_arrays": tm["output_bytes"] / tm["nbytes"],
            "ours_rss_arrays": rss_ours[k]["peak_bytes"] / tm["nbytes"] if rss_ours else None,
            "torch_rss_arrays": rss_torch[k]["peak_bytes"] / tm["nbytes"] if rss_torch else None,
        }
        rows.append(row)
        log(
            f"  {shape_text(shape):>16} {dtype}: ours {row['ours_tracemalloc_arrays']:.3f} arrays"
            f" (tracemalloc), {_opt(row['ours_rss_arrays'])} (RSS); torch"
            f" {_opt(row['torch_rss_arrays'])} (RSS)"
        )
    return {
        "rows": rows,
        "unit": "bytes / nbytes of one input array (x), the returned dx included",
        "methods": {
            "ours_tracemalloc": "tracemalloc peak during the call minus the traced size before it",
            "rss": "VmHWM - VmRSS around one call in a fresh process after a warm-up, "
            "the high-water mark reset via /proc/self/clear_refs, MALLOC_MMAP_THRESHOLD_=65536; "
            "counts touched pages only, so it is approximate",
            "torch_tracemalloc": "not measured: PyTorch's allocator does not report to tracemalloc",
        },
    }


def _opt(v) -> str:
    return "n/a" if v is None else f"{v:.3f} arrays"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rss-child", nargs=2, required=True, metavar=("IMPL", "CONFIGS"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    impl, configs = args.rss_child
    rss_child(impl, json.loads(configs), args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
