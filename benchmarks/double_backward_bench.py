"""The batch-norm double backward against PyTorch's (the gradient of Phi through a first
backward taken with create_graph=True), interleaved, min and median.  Run by ``bench.py``,
or alone (prints, writes nothing):

    python benchmarks/double_backward_bench.py [--quick] [--repeats R] [--threads T]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from norm_bench import EPS, make_inputs, rel_err  # noqa: E402
from timing import interleaved, set_threads, shape_text  # noqa: E402

SHAPES = ((65536, 256), (32, 64, 56, 56))
QUICK_SHAPES = ((8192, 64), (8, 16, 28, 28))
DTYPES = ("float32", "float64")


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
            errors = [rel_err(a, b) for a, b in zip(got, ref, strict=True)]
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
                f"  {shape_text(shape):>16} {dtype}: ours {best['ours'] * 1e3:8.2f} ms"
                f" [{median['ours'] * 1e3:8.2f}], torch {best['torch'] * 1e3:8.2f} ms"
                f" [{median['torch'] * 1e3:8.2f}], ours/torch {row['ratio_torch']:4.2f}"
                f" (medians {row['ratio_torch_median']:4.2f}); max rel. err."
                f" {max(errors):.1e}"
            )
            del args, ddx, dy, x, got, ref, theirs
            gc.collect()
    return {"rows": rows, "repeats": repeats, "eps": EPS}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes")
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    set_threads(args.threads)
    print(f"Batch-norm double backward ({args.threads} thread(s) each):")
    double_backward_section(QUICK_SHAPES if args.quick else SHAPES, DTYPES, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
