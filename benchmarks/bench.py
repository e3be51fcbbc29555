"""Benchmarks: verification speed and generated-code speed, beside their baselines.

    python benchmarks/bench.py [--quick] [--out reports]

One driver over the subjects, each in its own module beside this one:

- ``verification_bench``: verification time against n, against a naive SymPy baseline;
- ``norm_bench``: the batch-norm backward (seconds, array copies, peak memory) and the
  LayerNorm, RMSNorm and GroupNorm kernels, against PyTorch's CPU kernels;
- ``double_backward_bench``: the batch-norm double backward against PyTorch's;
- ``timing``: the machine, the thread settings (``--threads``, default 1, for PyTorch,
  NumPy's BLAS and numba alike) and the one interleaved timer they all use;
- ``bench_report``: the goals, and the LaTeX tables and charts.

``softmax_bench``, ``core_speed`` and ``build_bench`` are run by ``make bench`` after
this one, with the same timer; ``docs_page`` then writes docs/benchmarks.md from the
JSON they all write.

Writes ``<out>/bench.json`` (machine information and every measurement),
``<out>/bench.tex`` (tables and pgfplots charts) and, where latexmk exists,
``<out>/_build/bench.pdf``; prints a table and the goals, met or missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import build_pdf, evaluate_goals, print_goals, render_tex  # noqa: E402
from double_backward_bench import double_backward_section  # noqa: E402
from norm_bench import backward_section, family_section, memory_section  # noqa: E402
from timing import ROOT, machine_info, set_threads  # noqa: E402
from verification_bench import verification_section  # noqa: E402

SCHEMA = 1


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
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
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
