"""What every benchmark shares: the machine's description, its thread settings, and one
way to time, so that every subject's ratios are taken alike.

``interleaved`` times in-process calls round-robin (machine drift hits every side alike);
``summary`` reduces repeated wall times of whole processes (build_bench, core_speed);
``traced_peak`` is tracemalloc's high-water mark of one call; ``baseline_tree`` unpacks a
commit of this repository from git history, for the benchmarks that time a baseline core.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import time
import tracemalloc
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "benchmarks"):  # run as a script from anywhere, or loaded by a test
    if str(_path) not in map(str, sys.path):
        sys.path.insert(0, str(_path))

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


# ------------------------------------------------------------------ timing


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


def summary(times: list[float]) -> dict:
    """Min, median and every value of repeated wall times."""
    return {"min": min(times), "median": statistics.median(times), "all": times}


def traced_peak(fn):
    """(bytes, fn's result): tracemalloc's peak while fn runs, above what was traced before it
    (NumPy reports its allocations to tracemalloc; what fn returns is included)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return int(peak), result


def baseline_tree(commit: str, folder: Path, *paths: str) -> Path:
    """This repository at commit (only paths, where given), unpacked under folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, *paths], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


# ---------------------------------------------------------------- printing


def goal_word(met) -> str:
    return {True: "met", False: "MISSED", None: "undecided"}[met]


def shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"
