"""Benchmarks: verification speed and generated-code speed, beside their baselines.

    python benchmarks/bench.py [--quick] [--out reports]

1. Verification time against n: ``verify_document`` on the whole seed file and
   on its Jacobian claim alone, against a naive baseline written here with
   plain SymPy (explicit square root, every Jacobian entry differentiated and
   ``simplify``-ed against the claim).  The baseline runs in a subprocess per n
   under a time cap; a capped run reports how many entries it finished.
2. Backward throughput: ``derive.generated.batchnorm.batchnorm_backward``
   against PyTorch's CPU ``native_batch_norm_backward`` with the same saved
   statistics and the same thread count, in seconds and in "array copies"
   (the time of one ``np.copyto`` into a preallocated array of the same
   shape; ``x.copy()``, which also faults in fresh pages as a backward's
   new dx does, is reported beside it).  NumPy's ufuncs run on one thread;
   ``--threads`` (default 1) sets PyTorch's threads and NumPy's OpenBLAS
   pool alike, and both counts are recorded.
3. Peak extra memory of the backward, in input arrays: tracemalloc for ours
   (NumPy reports its allocations to it), and the resident-set high-water mark
   in a fresh process for both ours and PyTorch.
4. The normalization family: forward and backward of the generated LayerNorm,
   RMSNorm and GroupNorm against PyTorch's CPU kernels (native_layer_norm(_backward),
   autograd of rms_norm, native_group_norm(_backward)), interleaved, min and median,
   with array copies and tracemalloc peak beside each. numba runs on ``--threads``
   threads too; the backend that ran is recorded.

Writes ``<out>/bench.json`` (machine information and every measurement),
``<out>/bench.tex`` (tables and pgfplots charts) and, where latexmk exists,
``<out>/_build/bench.pdf``; prints a table and the goals, met or missed.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime
import gc
import glob
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

SEED = ROOT / "derive" / "documents" / "bn_backward.toml"
TEMPLATE = Path(__file__).resolve().parent / "bench.tex.j2"
SCHEMA = 1
EPS = 1e-5

FULL = {
    "ns": (2, 4, 8, 16, 32, 64),
    "seed_range": (2, 16),
    "cap_s": 120.0,
    "verify_repeats": 3,
    "shapes": ((65536, 256), (256, 65536), (32, 64, 56, 56), (8, 256, 28, 28), (128, 1024)),
    "dtypes": ("float32", "float64"),
    "repeats": 25,
    "double_backward": ((65536, 256), (32, 64, 56, 56)),
    "family": (
        ("layernorm", (4096, 1024), None),
        ("layernorm", (65536, 256), None),
        ("rmsnorm", (4096, 1024), None),
        ("rmsnorm", (65536, 256), None),
        ("groupnorm", (32, 64, 56, 56), 32),
    ),
}
QUICK = {
    "ns": (2, 4, 8, 16),
    "seed_range": (2, 16),
    "cap_s": 10.0,
    "verify_repeats": 1,
    "shapes": ((8192, 64), (64, 8192), (8, 16, 28, 28)),
    "dtypes": ("float32", "float64"),
    "repeats": 3,
    "double_backward": ((8192, 64), (8, 16, 28, 28)),
    "family": (
        ("layernorm", (512, 256), None),
        ("rmsnorm", (512, 256), None),
        ("groupnorm", (4, 16, 14, 14), 4),
    ),
}

# Goals, as the issue states them.
JACOBIAN_N, JACOBIAN_SPEEDUP = 16, 50.0
SEED_RANGE_BUDGET_S = 5.0
TORCH_RATIO_MAX = 0.8  # batch norm
FAMILY_RATIO_MAX = 1.0  # LayerNorm, RMSNorm, GroupNorm
COPIES_MAX = 3.0  # on the NCHW shapes
COPIES_FLOOR = 2.5  # read x and dy twice-ish, write dx once: about 2.5 copies
MEMORY_MAX = 1.3
DOUBLE_RATIO_MAX = 1.0  # batch-norm double backward against PyTorch's
FAMILY_NAMES = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm", "groupnorm": "GroupNorm"}
# Seconds of interleaved rounds per case at least (with at least the preset's repeats): a
# short call gets more rounds, so that its minimum and median settle.
BUDGET_S = 1.0
MAX_ROUNDS = 400


# ---------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _openblas():
    """NumPy's bundled OpenBLAS (get, set) thread functions, or None."""
    import numpy as np

    libdir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(glob.glob(str(libdir / "*openblas*"))):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for suffix in ("64_", ""):
            for prefix in ("scipy_openblas", "openblas"):
                get = getattr(handle, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(handle, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    return get, put
    return None


def set_threads(threads: int) -> dict:
    """Run PyTorch, NumPy's BLAS and numba on `threads` threads; what each now uses."""
    import torch

    # numba first: starting its thread pool can reset the OpenMP count PyTorch reads.
    try:
        import numba

        from derive.generated import batchnorm  # noqa: F401  (compiles nothing yet)

        numba.set_num_threads(threads)
        numba_threads = numba.get_num_threads()
    except ImportError:
        numba_threads = None
    default_torch = torch.get_num_threads()
    torch.set_num_threads(threads)
    blas = _openblas()
    blas_before = blas[0]() if blas else None
    if blas:
        blas[1](threads)
    return {
        "numba_threads": numba_threads,
        "numpy_ufunc_threads": 1,
        "numpy_blas_threads_default": blas_before,
        "numpy_blas_threads": blas[0]() if blas else None,
        "torch_threads_default": default_torch,
        "torch_threads": torch.get_num_threads(),
    }


def machine_info() -> dict:
    import numpy as np
    import sympy

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "sympy": sympy.__version__,
        "numba": _numba_version(),
        "backend": _backend(),
    }


def _numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.__version__


def _backend() -> str:
    from derive.generated import batchnorm

    return batchnorm.BACKEND


# ---------------------------------------------------------- verification


def naive_child(n: int) -> None:
    """The naive baseline, printing one JSON line per Jacobian entry decided.

    Written independently of derive: x-hat with an explicit square root, each
    entry by sympy.diff, the claim's two cases as explicit formulas, and
    ``sympy.simplify(J_ij - claim_ij) == 0`` for every (i, j)."""
    import sympy

    print(json.dumps({"start": time.time()}), flush=True)
    t0 = time.perf_counter()
    xs = sympy.symbols(f"x1:{n + 1}")
    mean = sympy.Add(*xs) / n
    var = sympy.Add(*[(xk - mean) ** 2 for xk in xs]) / n
    sigma = sympy.sqrt(var)
    xhat = [(xj - mean) / sigma for xj in xs]
    inv_n = sympy.Rational(1, n)
    for i in range(n):
        for j in range(n):
            jac = sympy.diff(xhat[j], xs[i])
            if i == j:
                claim = (sigma * (1 - inv_n) - (xs[i] - mean) * (xs[i] - mean) / (sigma * n)) / (
                    sigma**2
                )
            else:
                claim = (sigma * (-inv_n) - (xs[j] - mean) * (xs[i] - mean) / (sigma * n)) / (
                    sigma**2
                )
            zero = sympy.simplify(jac - claim) == 0
            elapsed = time.perf_counter() - t0
            print(json.dumps({"i": i + 1, "j": j + 1, "zero": zero, "t": elapsed}), flush=True)


def run_naive(n: int, cap_s: float) -> dict:
    """The naive baseline at n in a subprocess, killed after cap_s seconds."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--naive-child", str(n)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    capped = False
    try:
        out, err = proc.communicate(timeout=cap_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        capped = True
    killed_at = time.time()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    start = next((d["start"] for d in lines if "start" in d), None)
    entries = [d for d in lines if "i" in d]
    if not capped and proc.returncode != 0:
        raise RuntimeError(f"naive baseline at n = {n} failed:\n{err[-2000:]}")
    if capped:
        # the whole job takes longer than the time it had after its imports
        seconds = killed_at - start if start is not None else cap_s
    else:
        seconds = entries[-1]["t"] if entries else 0.0
    return {
        "n": n,
        "entries_total": n * n,
        "entries_done": len(entries),
        "entries_not_zero": sum(1 for d in entries if not d["zero"]),
        "seconds": seconds,
        "capped": capped,
        "cap_s": cap_s,
    }


def interleaved(
    timed, repeats: int, *, warm: bool = True, budget_s: float = 0.0, max_rounds: int = MAX_ROUNDS
) -> tuple[dict, dict, int]:
    """(min, median) seconds per name and the rounds run, the calls interleaved so that drift in
    machine load hits every one alike; warm: one untimed call each first.

    At least repeats rounds; more, up to max_rounds, while a round is short enough that
    budget_s seconds hold them: a 0.1 ms call is timed hundreds of times, so that its
    minimum and median are not decided by a few unlucky rounds."""
    times = {name: [] for name, _ in timed}
    if warm:
        for _, fn in timed:
            fn()
    rounds, done = repeats, 0
    while done < rounds:
        start = time.perf_counter()
        for name, fn in timed:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        done += 1
        if done == 1 and budget_s > 0:
            per_round = time.perf_counter() - start
            rounds = max(repeats, min(max_rounds, int(budget_s / max(per_round, 1e-9))))
    best = {name: min(ts) for name, ts in times.items()}
    median = {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}
    return best, median, done


def time_verify(document, ns, repeats: int, budget_s: float = 10.0) -> float:
    """Min over repeats of verify_document, SymPy's cache cleared before each."""
    from sympy.core.cache import clear_cache

    from derive.checking import verify_document

    best, spent = math.inf, 0.0
    for _ in range(repeats):
        clear_cache()
        gc.collect()
        t = time.perf_counter()
        result = verify_document(document, ns=tuple(ns))
        elapsed = time.perf_counter() - t
        if not result.holds:
            raise RuntimeError(f"{document.id}: a claim fails at n = {ns}")
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget_s:
            break
    return best


def verification_section(ns, cap_s, repeats, seed_range, log=print) -> dict:
    from derive.checking import verify_document
    from derive.claims import load

    seed = load(SEED)
    jacobian = dataclasses.replace(seed, claims=(seed.claim("jacobian"),))
    verify_document(jacobian, ns=(2,))  # warm-up: imports, first-use setup
    rows = []
    for n in ns:
        jac_s = time_verify(jacobian, (n,), repeats)
        doc_s = time_verify(seed, (n,), repeats)
        naive = run_naive(n, cap_s)
        ratio = naive["seconds"] / jac_s
        rows.append(
            {
                "n": n,
                "ours_jacobian_s": jac_s,
                "ours_document_s": doc_s,
                "naive": naive,
                "ratio_jacobian": ratio,
                "ratio_is_lower_bound": naive["capped"],
            }
        )
        mark = f">= {ratio:.0f}x (capped)" if naive["capped"] else f"{ratio:.0f}x"
        log(
            f"  n = {n:3d}: ours {jac_s:8.3f} s (jacobian) {doc_s:8.3f} s (seed file);"
            f" naive {naive['seconds']:8.2f} s, {naive['entries_done']}/{naive['entries_total']}"
            f" entries; naive/ours {mark}"
        )
    lo, hi = seed_range
    range_ns = tuple(range(lo, hi + 1))
    range_s = time_verify(seed, range_ns, repeats)
    log(f"  seed file, n = {lo}..{hi} in one call: {range_s:.3f} s")
    return {
        "document": str(SEED.relative_to(ROOT)),
        "claims": len(seed.claims),
        "jacobian_claim": "jacobian",
        "rows": rows,
        "seed_range": {"ns": list(range_ns), "seconds": range_s},
        "cap_s": cap_s,
        "repeats": repeats,
    }


# --------------------------------------------------------------- backward


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


def _rel_err(ours, ref) -> float:
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
            errors = [_rel_err(a, b) for a, b in zip(got, ref, strict=True)]
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
                f"  {_shape_text(shape):>16} {dtype}: ours {best['ours'] * 1e3:8.2f} ms"
                f" ({row['ours_copies']:4.2f} copies), torch {best['torch'] * 1e3:8.2f} ms"
                f" ({row['torch_copies']:4.2f} copies), ours/torch {row['ratio_torch']:4.2f}"
                f" (medians {row['ratio_torch_median']:4.2f});"
                f" x.copy() {best['fresh'] / best['copy']:4.2f} copies;"
                f" dx rel. err. {errors[0]:.1e}"
            )
            del dy, x, gamma, mean, invstd, tensors, dst, got, ref
            gc.collect()
    return {"rows": rows, "repeats": repeats, "eps": EPS}


def torch_double_backward_fn(ddx, ddgamma, ddbeta, dy, x, gamma):
    """PyTorch's double backward as autograd runs it: the first backward of the layer with
    create_graph=True, built once here, and a function that takes the gradient of
    Phi = sum(ddx dx) + ddgamma.dgamma + ddbeta.dbeta with respect to x, gamma and dy
    (retain_graph=True, so it can be timed again): only its batchnorm_double_backward
    and the graph's bookkeeping are timed, not the forward and first backward."""
    import torch
    import torch.nn.functional as F

    t = [torch.from_numpy(a) for a in (ddx, ddgamma, ddbeta, dy, x, gamma)]
    ddx_t, ddgamma_t, ddbeta_t = t[:3]
    dy_t, x_t, gamma_t = (a.clone().requires_grad_() for a in t[3:])
    beta_t = torch.zeros_like(gamma_t, requires_grad=True)
    y = F.batch_norm(x_t, None, None, gamma_t, beta_t, training=True, eps=EPS)
    dx, dgamma, dbeta = torch.autograd.grad(y, (x_t, gamma_t, beta_t), dy_t, create_graph=True)
    phi = (dx * ddx_t).sum() + (dgamma * ddgamma_t).sum() + (dbeta * ddbeta_t).sum()

    def run():
        return torch.autograd.grad(phi, (x_t, gamma_t, dy_t), retain_graph=True)

    return run


def double_backward_section(shapes, dtypes, repeats, log=print) -> dict:
    """batchnorm_double_backward against PyTorch's double backward (the grad of Phi through
    a first backward taken with create_graph=True), interleaved, min and median."""
    import numpy as np

    from derive.generated import batchnorm

    rows = []
    for shape in shapes:
        for dtype in dtypes:
            dy, x, gamma, mean, invstd = make_inputs(shape, dtype)
            rng = np.random.default_rng(1)
            ddx = rng.standard_normal(shape, dtype=dtype)
            ddgamma = rng.standard_normal(shape[1]).astype(dtype)
            ddbeta = rng.standard_normal(shape[1]).astype(dtype)
            args = (ddx, ddgamma, ddbeta, dy, x, gamma, mean, invstd)

            def ours(a=args):
                return batchnorm.batchnorm_double_backward(*a)

            theirs = torch_double_backward_fn(ddx, ddgamma, ddbeta, dy, x, gamma)
            got, ref = ours(), [t.detach().numpy() for t in theirs()]
            errors = [_rel_err(a, b) for a, b in zip(got, ref, strict=True)]
            timed = (("ours", ours), ("torch", theirs))
            best, median, _ = interleaved(timed, repeats, warm=False)
            row = {
                "shape": list(shape),
                "dtype": dtype,
                "backend": batchnorm.BACKEND,
                "ours_s": best["ours"],
                "torch_s": best["torch"],
                "ratio_torch": best["ours"] / best["torch"],
                "ours_median_s": median["ours"],
                "torch_median_s": median["torch"],
                "ratio_torch_median": median["ours"] / median["torch"],
                "max_rel_err": {"dx2": errors[0], "dgamma2": errors[1], "ddy": errors[2]},
            }
            rows.append(row)
            log(
                f"  {_shape_text(shape):>16} {dtype}: ours {best['ours'] * 1e3:8.2f} ms"
                f" [{median['ours'] * 1e3:8.2f}], torch {best['torch'] * 1e3:8.2f} ms"
                f" [{median['torch'] * 1e3:8.2f}], ours/torch {row['ratio_torch']:4.2f}"
                f" (medians {row['ratio_torch_median']:4.2f}); max rel. err."
                f" {max(errors):.1e}"
            )
            del args, ddx, dy, x, got, ref, theirs
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
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                ours_b()
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
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
                f"  {module:>9} {_shape_text(shape):>16} {dtype}: backward ours"
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
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        dx, _, _ = batchnorm_backward(dy, x, gamma, mean, invstd)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return {"peak_bytes": int(peak), "output_bytes": int(dx.nbytes), "nbytes": int(x.nbytes)}


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
            f"  {_shape_text(shape):>16} {dtype}: ours {row['ours_tracemalloc_arrays']:.3f} arrays"
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


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


# ------------------------------------------------------------------ goals


def evaluate_goals(results: dict) -> list[dict]:
    goals = []
    ver = results.get("verification")
    if ver:
        row = next((r for r in ver["rows"] if r["n"] == JACOBIAN_N), None)
        if row is None:
            met, value = None, f"n = {JACOBIAN_N} not measured"
        else:
            ratio = row["ratio_jacobian"]
            if row["ratio_is_lower_bound"]:
                met = True if ratio >= JACOBIAN_SPEEDUP else None
                value = f">= {ratio:.0f}x (naive capped at {row['naive']['cap_s']:g} s)"
            else:
                met = ratio >= JACOBIAN_SPEEDUP
                naive_s, ours_s = row["naive"]["seconds"], row["ours_jacobian_s"]
                value = f"{ratio:.0f}x ({naive_s:.2f} s / {ours_s:.3f} s)"
        goals.append(
            {
                "id": "jacobian-speedup",
                "text": f"Jacobian claim at n = {JACOBIAN_N} at least {JACOBIAN_SPEEDUP:g}x "
                "faster than the naive baseline",
                "met": met,
                "value": value,
            }
        )
        sr = ver["seed_range"]
        goals.append(
            {
                "id": "seed-file-time",
                "text": f"whole seed file for every n in {sr['ns'][0]}..{sr['ns'][-1]} "
                f"(one verify_document call) in at most {SEED_RANGE_BUDGET_S:g} s",
                "met": sr["seconds"] <= SEED_RANGE_BUDGET_S,
                "value": f"{sr['seconds']:.2f} s",
            }
        )
    bw = results.get("backward")
    if bw:
        goals.append(
            _worst_goal(
                "backward-vs-torch",
                f"backward time at most {TORCH_RATIO_MAX:g}x PyTorch's on every shape and dtype",
                bw["rows"],
                "ratio_torch",
                TORCH_RATIO_MAX,
                "{:.2f}x",
            )
        )
        nchw = [r for r in bw["rows"] if len(r["shape"]) > 2] or bw["rows"]
        goals.append(
            _worst_goal(
                "backward-copies",
                f"backward time at most {COPIES_MAX:g} array copies on the NCHW shapes",
                nchw,
                "ours_copies",
                COPIES_MAX,
                "{:.2f} copies",
            )
        )
    mem = results.get("memory")
    if mem:
        goals.append(
            _worst_goal(
                "backward-memory",
                f"peak extra memory of the backward at most {MEMORY_MAX:g} input arrays "
                "(tracemalloc, dx included)",
                mem["rows"],
                "ours_tracemalloc_arrays",
                MEMORY_MAX,
                "{:.3f} arrays",
            )
        )
    fam = results.get("family")
    if fam:
        goals.append(
            _worst_goal(
                "family-vs-torch",
                f"LayerNorm, RMSNorm and GroupNorm backward at most {FAMILY_RATIO_MAX:g}x"
                " PyTorch's",
                fam["rows"],
                "ratio_torch",
                FAMILY_RATIO_MAX,
                "{:.2f}x",
            )
        )
        goals.append(
            _worst_goal(
                "family-memory",
                f"their backward's peak extra memory at most {MEMORY_MAX:g} input arrays",
                fam["rows"],
                "ours_tracemalloc_arrays",
                MEMORY_MAX,
                "{:.3f} arrays",
            )
        )
    dbl = results.get("double_backward")
    if dbl:
        goals.append(
            _worst_goal(
                "double-backward-vs-torch",
                f"batch-norm double backward at most {DOUBLE_RATIO_MAX:g}x PyTorch's",
                dbl["rows"],
                "ratio_torch",
                DOUBLE_RATIO_MAX,
                "{:.2f}x",
            )
        )
    return goals


def _worst_goal(goal_id, text, rows, key, limit, fmt) -> dict:
    """A goal met when the worst row's `key` is at most `limit`."""
    worst = max(rows, key=lambda r: r[key])
    return {
        "id": goal_id,
        "text": text,
        "met": worst[key] <= limit,
        "value": f"worst {fmt.format(worst[key])} at {_shape_text(worst['shape'])} "
        f"{worst['dtype']}",
    }


def goal_word(met) -> str:
    return {True: "met", False: "MISSED", None: "undecided"}[met]


# -------------------------------------------------------------------- TeX

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def tex_escape(text) -> str:
    """Plain text as pdflatex-safe LaTeX; non-ASCII becomes '?'-free ASCII."""
    out = []
    for c in str(text):
        if c in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[c])
        elif c == "\u00d7":
            out.append(r"$\times$")
        elif c.isascii():
            out.append(c)
        else:
            out.append(f"[U+{ord(c):04X}]")
    return "".join(out)


def _sig(v, digits=3) -> str:
    """A number in `digits` significant figures, plain decimal notation."""
    if v is None:
        return "--"
    if v == 0:
        return "0"
    exp = math.floor(math.log10(abs(v)))
    places = max(0, digits - 1 - exp)
    return f"{v:.{places}f}"


def _tex_shape(shape) -> str:
    return r"$" + r"\times".join(str(s) for s in shape) + r"$"


def _timing_cells(row, ours_s, torch_s) -> dict:
    """The table cells every timing row has: shape, dtype, both times, their ratios."""
    return {
        "shape": _tex_shape(row["shape"]),
        "dtype": row["dtype"],
        "ours_ms": _sig(ours_s * 1e3),
        "torch_ms": _sig(torch_s * 1e3),
        "ratio": f"{row['ratio_torch']:.2f}",
        "ratio_median": f"{row['ratio_torch_median']:.2f}",
    }


def _tex_shape_breakable(shape) -> str:
    """A shape that may break after a times sign: chart labels are narrower than 32x64x56x56."""
    return r"$" + r"{\times}$\allowbreak$".join(str(s) for s in shape) + r"$"


def tex_context(results: dict) -> dict:
    """Everything the template prints, as ready-made strings (pure function of results)."""
    m = results["machine"]
    t = results["settings"]["threads"]
    ctx = {
        "mode": results["mode"],
        "created": tex_escape(results["created"]),
        "machine": [
            ("CPU", tex_escape(m["cpu_model"])),
            ("cores", f"{m['usable_cores']} usable of {m['logical_cores']} logical"),
            ("load average at start", tex_escape(" ".join(str(v) for v in m["load_average"]))),
            (
                "Python / NumPy / PyTorch / SymPy",
                tex_escape(f"{m['python']} / {m['numpy']} / {m['torch']} / {m['sympy']}"),
            ),
            (
                "generated code's backend",
                tex_escape(
                    m.get("backend", "?")
                    + (f" (numba {m['numba']})" if m.get("numba") else "")
                    + "; DERIVE_BACKEND=numpy forces the NumPy path"
                ),
            ),
            (
                "threads",
                tex_escape(
                    f"NumPy ufuncs {t['numpy_ufunc_threads']}, NumPy BLAS {t['numpy_blas_threads']}"
                    f" (default {t['numpy_blas_threads_default']}), PyTorch {t['torch_threads']}"
                    f" (default {t['torch_threads_default']})"
                ),
            ),
        ],
        "goals": [
            {
                "text": tex_escape(g["text"]),
                "value": tex_escape(g["value"]),
                "word": goal_word(g["met"]),
                "met": g["met"],
            }
            for g in results["goals"]
        ],
    }
    ver = results.get("verification")
    if ver:
        rows = []
        for r in ver["rows"]:
            nv = r["naive"]
            rows.append(
                {
                    "n": r["n"],
                    "doc": _sig(r["ours_document_s"]),
                    "jac": _sig(r["ours_jacobian_s"]),
                    "naive": (r"$>$" if nv["capped"] else "") + _sig(nv["seconds"]),
                    "entries": f"{nv['entries_done']}/{nv['entries_total']}",
                    "capped": nv["capped"],
                    "ratio": (r"$\geq$" if r["ratio_is_lower_bound"] else "")
                    + _sig(r["ratio_jacobian"]),
                }
            )
        ctx["verification"] = {
            "rows": rows,
            "cap": f"{ver['cap_s']:g}",
            "claims": ver["claims"],
            "document": tex_escape(ver["document"]),
            "range_lo": ver["seed_range"]["ns"][0],
            "range_hi": ver["seed_range"]["ns"][-1],
            "range_s": _sig(ver["seed_range"]["seconds"]),
            "plot_doc": " ".join(f"({r['n']},{r['ours_document_s']:.6g})" for r in ver["rows"]),
            "plot_jac": " ".join(f"({r['n']},{r['ours_jacobian_s']:.6g})" for r in ver["rows"]),
            "plot_naive": " ".join(
                f"({r['n']},{r['naive']['seconds']:.6g})"
                for r in ver["rows"]
                if not r["naive"]["capped"]
            ),
            "plot_capped": " ".join(
                f"({r['n']},{r['naive']['seconds']:.6g})"
                for r in ver["rows"]
                if r["naive"]["capped"]
            ),
            "xticks": ",".join(str(r["n"]) for r in ver["rows"]),
        }
    bw = results.get("backward")
    if bw:
        rows = []
        for k, r in enumerate(bw["rows"]):
            rows.append(
                {
                    "k": k,
                    **_timing_cells(r, r["ours_s"], r["torch_s"]),
                    "copy_ms": _sig(r["copy_s"] * 1e3),
                    "ours_copies": f"{r['ours_copies']:.2f}",
                    "torch_copies": f"{r['torch_copies']:.2f}",
                    "fresh_copies": f"{r['fresh_copy_s'] / r['copy_s']:.2f}",
                    "err": f"{r['max_rel_err']['dx']:.1e}",
                }
            )
        ctx["backward"] = {
            "rows": rows,
            "repeats": bw["repeats"],
            "labels": ",".join(
                "{" + _tex_shape_breakable(r["shape"]) + r"\\" + r["dtype"] + "}"
                for r in bw["rows"]
            ),
            "xticks": ",".join(str(k) for k in range(len(bw["rows"]))),
            "xmax": len(bw["rows"]) - 0.5,
            "plot_ours": " ".join(
                f"({k},{r['ours_copies']:.4f})" for k, r in enumerate(bw["rows"])
            ),
            "plot_torch": " ".join(
                f"({k},{r['torch_copies']:.4f})" for k, r in enumerate(bw["rows"])
            ),
            "floor": f"{COPIES_FLOOR:g}",
            "goal": f"{COPIES_MAX:g}",
            "max_rounds": MAX_ROUNDS,
            "budget": f"{BUDGET_S:g}",
        }
    fam = results.get("family")
    if fam:
        ctx["family"] = {
            "repeats": fam["repeats"],
            "rows": [
                {
                    "name": FAMILY_NAMES[r["module"]]
                    + (f", {r['groups']} groups" if r.get("groups") else ""),
                    **_timing_cells(r, r["ours_b_s"], r["torch_b_s"]),
                    "forward": f"{r['ratio_forward']:.2f}",
                    "forward_median": f"{r['ratio_forward_median']:.2f}",
                    "copies": f"{r['ours_copies']:.2f}",
                    "memory": f"{r['ours_tracemalloc_arrays']:.2f}",
                }
                for r in fam["rows"]
            ],
            "goal": f"{FAMILY_RATIO_MAX:g}",
        }
    dbl = results.get("double_backward")
    if dbl:
        ctx["double"] = {
            "repeats": dbl["repeats"],
            "rows": [
                {
                    **_timing_cells(r, r["ours_s"], r["torch_s"]),
                    "err": f"{max(r['max_rel_err'].values()):.1e}",
                }
                for r in dbl["rows"]
            ],
            "goal": f"{DOUBLE_RATIO_MAX:g}",
        }
    mem = results.get("memory")
    if mem:
        ctx["memory"] = {
            "rows": [
                {
                    "shape": _tex_shape(r["shape"]),
                    "dtype": r["dtype"],
                    "tm": f"{r['ours_tracemalloc_arrays']:.3f}",
                    "ours_rss": "--"
                    if r["ours_rss_arrays"] is None
                    else f"{r['ours_rss_arrays']:.2f}",
                    "torch_rss": "--"
                    if r["torch_rss_arrays"] is None
                    else f"{r['torch_rss_arrays']:.2f}",
                }
                for r in mem["rows"]
            ],
            "goal": f"{MEMORY_MAX:g}",
        }
    return ctx


def render_tex(results: dict) -> str:
    from derive.report import latex_environment

    # tex_context already escapes every string, so values print as they are
    env = latex_environment(TEMPLATE.parent, finalize=None)
    return env.get_template(TEMPLATE.name).render(**tex_context(results))


def build_pdf(tex: Path, build_dir: Path) -> Path:
    """Compile with the reports' latexmk build; the PDF lands beside the .tex."""
    from derive.report import build_pdfs

    (pdf,) = build_pdfs([tex], build_dir)
    return pdf


# ------------------------------------------------------------------ table


def print_goals(goals, out=sys.stdout) -> None:
    print("Goals:", file=out)
    for g in goals:
        print(f"  [{goal_word(g['met']):>9}] {g['text']}: {g['value']}", file=out)


# ------------------------------------------------------------------- main


def run(
    *,
    mode: str,
    ns,
    seed_range,
    cap_s: float,
    verify_repeats: int,
    shapes,
    dtypes,
    repeats: int,
    threads: int,
    rss: bool = True,
    sections=("verification", "backward", "memory", "family", "double"),
    family=(),
    double=(),
    log=print,
) -> dict:
    thread_info = set_threads(threads)
    results = {
        "schema": SCHEMA,
        "mode": mode,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "settings": {
            "ns": list(ns),
            "seed_range": list(seed_range),
            "naive_cap_s": cap_s,
            "verify_repeats": verify_repeats,
            "shapes": [list(s) for s in shapes],
            "dtypes": list(dtypes),
            "repeats": repeats,
            "threads": thread_info,
        },
    }
    if "verification" in sections:
        log("Verification time (seconds; min over repeats, SymPy cache cleared before each):")
        results["verification"] = verification_section(
            ns, cap_s, verify_repeats, seed_range, log=log
        )
    if "backward" in sections:
        log(f"Backward (min of {repeats} after a warm-up; {threads} thread(s) each):")
        results["backward"] = backward_section(shapes, dtypes, repeats, log=log)
    if "memory" in sections:
        log("Peak extra memory of the backward (input arrays, dx included):")
        results["memory"] = memory_section(shapes, dtypes, threads, rss=rss, log=log)
    if "family" in sections and family:
        log(f"LayerNorm, RMSNorm, GroupNorm (min of {repeats}; {threads} thread(s) each):")
        results["family"] = family_section(family, dtypes, repeats, log=log)
    if "double" in sections and double:
        log(f"Batch-norm double backward (min of {repeats}; {threads} thread(s) each):")
        results["double_backward"] = double_backward_section(double, dtypes, repeats, log=log)
    results["goals"] = evaluate_goals(results)
    return results


def write_outputs(results: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, tex = out / "bench.json", out / "bench.tex"
    js.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tex.write_text(render_tex(results), encoding="utf-8")
    return js, tex


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and caps, for a trial run")
    p.add_argument("--out", type=Path, default=ROOT / "reports", help="folder for bench.json/tex")
    p.add_argument("--cap", type=float, help="time cap of the naive baseline per n, in seconds")
    p.add_argument("--max-n", type=int, help="largest n of the verification timings")
    p.add_argument("--repeats", type=int, help="timed repeats of each backward")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for PyTorch and NumPy's BLAS (NumPy's ufuncs use one); default 1",
    )
    p.add_argument("--no-pdf", action="store_true", help="do not compile bench.tex")
    p.add_argument(
        "--only",
        choices=("double-backward",),
        help="run this section alone, print it, and write nothing",
    )
    p.add_argument("--naive-child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.naive_child is not None:
        naive_child(args.naive_child)
        return 0
    if args.rss_child is not None:
        impl, configs = args.rss_child
        rss_child(impl, json.loads(configs), args.threads)
        return 0
    preset = dict(QUICK if args.quick else FULL)
    if args.only == "double-backward":
        set_threads(args.threads)
        print(f"Batch-norm double backward ({args.threads} thread(s) each):")
        repeats = args.repeats if args.repeats is not None else preset["repeats"]
        double_backward_section(preset["double_backward"], preset["dtypes"], repeats)
        return 0
    ns = preset["ns"]
    if args.max_n is not None:
        ns = tuple(n for n in ns if n <= args.max_n)
    results = run(
        mode="quick" if args.quick else "full",
        ns=ns,
        seed_range=preset["seed_range"],
        cap_s=args.cap if args.cap is not None else preset["cap_s"],
        verify_repeats=preset["verify_repeats"],
        shapes=preset["shapes"],
        dtypes=preset["dtypes"],
        repeats=args.repeats if args.repeats is not None else preset["repeats"],
        threads=args.threads,
        family=preset["family"],
        double=preset["double_backward"],
    )
    js, tex = write_outputs(results, args.out)
    print_goals(results["goals"])
    print(f"wrote {js} and {tex}")
    if not args.no_pdf and shutil.which("latexmk"):
        pdf = build_pdf(tex, args.out / "_build")
        print(f"built {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
