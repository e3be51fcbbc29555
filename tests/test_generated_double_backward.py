"""batchnorm_double_backward against oracles that share no code with it.

Oracles: PyTorch autograd through ``torch.nn.functional.batch_norm`` with
``create_graph=True`` (its hand-written batchnorm_double_backward), checked itself by
``torch.autograd.gradgradcheck``; and fourth-order central differences of our own first
backward, ``batchnorm_backward``, in float64. Both backends.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKENDS, load_generated

# The acceptance bound in float64: the outputs are sums of a few hundred products of
# order one, evaluated in another order than PyTorch's, so agreement to ~1e-13 is
# expected; 1e-9 is the bound.
RTOL64 = 1e-9
# float32 inputs, float64 evaluation, float32 outputs, against float64 PyTorch on the
# same (float32-valued) inputs: the errors are the rounding of the stored results and of
# the saved mean and invstd to float32 (invstd enters up to its fifth power, and the
# offset of x from 0 amplifies the mean's rounding by the centring condition,
# 1 + |x| / sigma, about 5 here), so a few tens of float32 ulps; 64 ulps bounds it.
F32_RTOL = 64 * float(np.finfo(np.float32).eps)
# Fourth-order central differences with step h: truncation O(h^4) = 1e-12 and rounding
# O(eps64 / h) = 2e-13 relative at these magnitudes, so 1e-9 holds with margin.
FD_STEP = 1e-3
FD_RTOL = 1e-9
# the two backends evaluate the same float64 formulas in different orders of summation
BACKENDS_RTOL64 = 1e-12
EPS = 1e-5
OFFSET = 3.0  # x away from 0, so that centring matters

SHAPES = [(64, 8), (4, 6, 5, 3)]
ZEROED = [None, "ddx", "ddgamma", "ddbeta"]


@pytest.fixture(scope="module", params=BACKENDS)
def bn(request):
    return load_generated("batchnorm", request.param)


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-300))


def inputs(shape, dtype, seed, zero=None):
    rng = np.random.default_rng(seed)
    c = shape[1]
    out = {
        "ddx": rng.normal(size=shape),
        "ddgamma": rng.normal(size=c),
        "ddbeta": rng.normal(size=c),
        "dy": rng.normal(size=shape),
        "x": rng.normal(size=shape) + OFFSET,
        "gamma": rng.normal(size=c),
        "beta": rng.normal(size=c),
    }
    if zero is not None:
        out[zero] = np.zeros_like(out[zero])
    return {k: v.astype(dtype) for k, v in out.items()}


def torch_double_backward(a):
    """(gI, gG, ggO): grads of Phi through PyTorch's first backward, create_graph=True."""
    t = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in a.items()}
    x, gamma, beta, dy = (t[k].requires_grad_() for k in ("x", "gamma", "beta", "dy"))
    y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
    dx, dgamma, dbeta = torch.autograd.grad(y, (x, gamma, beta), dy, create_graph=True)
    phi = (dx * t["ddx"]).sum() + (dgamma * t["ddgamma"]).sum() + (dbeta * t["ddbeta"]).sum()
    return [g.numpy() for g in torch.autograd.grad(phi, (x, gamma, dy))]


def ours(bn, a):
    _, mean, invstd = bn.batchnorm_forward(a["x"], a["gamma"], a["beta"], EPS)
    args = (a["ddx"], a["ddgamma"], a["ddbeta"], a["dy"], a["x"], a["gamma"], mean, invstd)
    return bn.batchnorm_double_backward(*args)


@pytest.mark.parametrize("zero", ZEROED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_double_backward(bn, shape, dtype, zero):
    a = inputs(shape, dtype, seed=len(shape), zero=zero)
    got = ours(bn, a)
    want = torch_double_backward(a)
    rtol = RTOL64 if dtype == np.float64 else F32_RTOL
    for name, g, w in zip(("dx2", "dgamma2", "ddy"), got, want, strict=True):
        assert g.dtype == dtype and g.shape == w.shape, name
        assert rel_err(g, w) <= rtol, (name, rel_err(g, w))


def test_torch_double_backward_passes_gradgradcheck():
    """The oracle checked: PyTorch's double backward of the layer (training mode, weight
    and bias) against finite differences of its first backward."""
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(6, 3, 2)) + OFFSET, requires_grad=True)
    w = torch.tensor(rng.normal(size=3), requires_grad=True)
    b = torch.tensor(rng.normal(size=3), requires_grad=True)

    def layer(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True, eps=EPS)

    assert torch.autograd.gradgradcheck(layer, (x, w, b))


def phi(bn, a):
    """Phi from our first backward, with the statistics recomputed from x."""
    _, mean, invstd = bn.batchnorm_forward(a["x"], a["gamma"], a["beta"], EPS)
    dx, dgamma, dbeta = bn.batchnorm_backward(a["dy"], a["x"], a["gamma"], mean, invstd)
    return float(
        np.sum(a["ddx"] * dx) + np.sum(a["ddgamma"] * dgamma) + np.sum(a["ddbeta"] * dbeta)
    )


def fd_gradient(bn, a, key):
    grad = np.zeros_like(a[key])
    for idx in np.ndindex(a[key].shape):
        values = []
        for step in (2, 1, -1, -2):
            b = dict(a)
            b[key] = a[key].copy()
            b[key][idx] += step * FD_STEP
            values.append(phi(bn, b))
        grad[idx] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * FD_STEP)
    return grad


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
def test_matches_finite_differences_of_our_first_backward(bn, shape):
    a = inputs(shape, np.float64, seed=7)
    got = ours(bn, a)
    for key, g in zip(("x", "gamma", "dy"), got, strict=True):
        assert rel_err(g, fd_gradient(bn, a, key)) <= FD_RTOL, key


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [*SHAPES, (300, 5), (3, 4, 7)])
def test_the_two_backends_agree(shape, dtype):
    a = inputs(shape, dtype, seed=3)
    fast, ref = (ours(load_generated("batchnorm", b), a) for b in BACKENDS)
    rtol = BACKENDS_RTOL64 if dtype == np.float64 else F32_RTOL
    for g, w in zip(fast, ref, strict=True):
        assert rel_err(g, w) <= rtol


def bad_call(bn, **change):
    a = inputs((4, 3), np.float32, seed=0)
    _, mean, invstd = bn.batchnorm_forward(a["x"], a["gamma"], a["beta"], EPS)
    args = {
        "ddx": a["ddx"],
        "ddgamma": a["ddgamma"],
        "ddbeta": a["ddbeta"],
        "dy": a["dy"],
        "x": a["x"],
        "gamma": a["gamma"],
        "mean": mean,
        "invstd": invstd,
    }
    args.update(change)
    return bn.batchnorm_double_backward(*args.values())


NAN_ROWS = np.full((4, 3), np.nan, np.float32)
ZEROS = np.zeros((4, 3), np.float32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ddx": np.zeros((4, 2), np.float32)}, "ddx: expected the shape of x"),
        ({"dy": np.zeros((4, 3), np.float64)}, "dy: expected the dtype of x"),
        ({"x": np.zeros((4, 3), np.int64)}, "x: expected a float32 or float64 array"),
        ({"x": np.zeros(4, np.float32)}, "x: expected shape"),
        ({"ddgamma": np.zeros(2)}, "ddgamma: expected shape"),
        ({"ddbeta": np.array([1.0, np.inf, 0.0])}, "ddbeta: expected finite values"),
        ({"gamma": np.zeros(4)}, "gamma: expected shape"),
        ({"mean": np.array([0.0, np.nan, 0.0])}, "mean: expected finite values"),
        ({"invstd": np.array([1.0, 0.0, 1.0])}, "invstd: expected values > 0"),
        ({"ddx": NAN_ROWS}, "ddx: expected finite values"),
        ({"dy": NAN_ROWS}, "dy: expected finite values"),
        ({"x": NAN_ROWS}, "x: expected finite values"),
        ({"ddgamma": np.full(3, 3e38)}, "dx2: the result overflows"),
        (
            {"ddgamma": np.full(3, 1e36), "ddbeta": np.full(3, 3.4e38), "dy": ZEROS},
            "ddy: the result overflows",
        ),
        ({"ddgamma": np.full(3, 3e38), "ddx": np.full((4, 3), 3e38, np.float32)}, "overflows"),
    ],
)
def test_rejects_bad_input(bn, change, message):
    with pytest.raises(ValueError, match=message):
        bad_call(bn, **change)


def test_float64_sums_that_overflow_name_the_inputs(bn):
    a = inputs((4, 3), np.float64, seed=0)
    big = np.full((4, 3), 1e200)
    big[::2] *= -1
    _, mean, invstd = bn.batchnorm_forward(a["x"], a["gamma"], a["beta"], EPS)
    args = (big, a["ddgamma"], a["ddbeta"], big, a["x"], a["gamma"], mean, invstd)
    with pytest.raises(ValueError, match="dy, ddx, x: the per-channel sums"):
        bn.batchnorm_double_backward(*args)
