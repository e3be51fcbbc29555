"""Verification time against n: ``verify_document`` on the whole seed file and on its
Jacobian claim alone, against a naive baseline written here with plain SymPy (explicit
square root, every Jacobian entry differentiated and ``simplify``-ed against the claim).
The baseline runs in a subprocess per n under a time cap; a capped run reports how many
entries it finished.  Run by ``bench.py``; ``--naive-child N`` is that subprocess.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT  # noqa: E402

SEED = ROOT / "derive" / "documents" / "bn_backward.toml"


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--naive-child", type=int, required=True, help="run the baseline at this n")
    naive_child(p.parse_args(argv).naive_child)
    return 0


if __name__ == "__main__":
    sys.exit(main())
