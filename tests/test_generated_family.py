"""derive.generated.layernorm, rmsnorm and groupnorm against oracles that share no code
with them, on both backends (the numba kernels and the NumPy path).

Oracles: PyTorch (autograd through torch.nn.functional, in float64, and the native
CPU kernels), plain-NumPy formulas written here from the papers, and central finite
differences in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKENDS, load_generated, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st

# float64 against another float64 computation of sums of at most a few hundred terms of
# order one: agreement to ~1e3 ulps with room to spare.
RTOL64 = 1e-11
# float32 against a float64 oracle: each sum of n terms carries about eps32 * sqrt(n)
# relative error, times the conditioning of centring (1 + max|x| / sigma); 64x covers
# the worst observed case with margin.
F32_FACTOR = 64 * float(np.finfo(np.float32).eps)
# central differences with step FD_STEP: truncation O(h^2) and rounding O(eps64 / h),
# about 1e-10 relative for h = 1e-5 at these magnitudes.
FD_STEP = 1e-5
FD_RTOL = 1e-7
EPS = 1e-5
RMS_EPS = 1e-6
EXAMPLES = 20


@pytest.fixture(scope="module", params=BACKENDS)
def mods(request):
    return {
        name: load_generated(name, request.param) for name in ("layernorm", "rmsnorm", "groupnorm")
    }


# The inputs here are of order one, so results are measured relative to at least 1: a
# gradient that cancels to ~0 (one feature, one value per group) is then judged by its
# absolute error instead of by an error relative to rounding noise.
SCALE_FLOOR = 1.0


def rel_err(got, want, scale=None):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want))), SCALE_FLOOR) if scale is None else scale
    return float(np.max(np.abs(got - want)) / (scale + 1e-300))


def tolerance(dtype, n, cond=1.0):
    return RTOL64 * cond if dtype == np.float64 else F32_FACTOR * np.sqrt(n) * cond


def inputs(shape, pshape, dtype, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2) + offset
    dy = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    return [a.astype(dtype) for a in (x, dy, gamma, beta)]


def t64(*arrays):
    return [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]


# -- plain NumPy formulas, from the papers --------------------------------------------------
def ref_layernorm(x, dy, gamma, beta, eps):
    axes = tuple(range(x.ndim - gamma.ndim, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    std = np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - mu) / std
    g = gamma * dy
    n = gamma.size
    dx = (n * g - g.sum(axes, keepdims=True) - xhat * (g * xhat).sum(axes, keepdims=True)) / (
        n * std
    )
    batch = tuple(range(x.ndim - gamma.ndim))
    return gamma * xhat + beta, dx, (dy * xhat).sum(batch), dy.sum(batch)


def ref_rmsnorm(x, dy, gamma, eps):
    axes = tuple(range(x.ndim - gamma.ndim, x.ndim))
    r = np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
    g = gamma * dy
    dx = (g - x * (g * x).mean(axes, keepdims=True) / r**2) / r
    return gamma * x / r, dx, (dy * x / r).sum(tuple(range(x.ndim - gamma.ndim)))


def ref_groupnorm(x, dy, groups, gamma, beta, eps):
    n_, c = x.shape[:2]
    xg = x.reshape(n_, groups, -1)
    mu = xg.mean(2, keepdims=True)
    std = np.sqrt(xg.var(2, keepdims=True) + eps)
    xhat = ((xg - mu) / std).reshape(x.shape)
    cshape = (1, c) + (1,) * (x.ndim - 2)
    g = (gamma.reshape(cshape) * dy).reshape(n_, groups, -1)
    xh = xhat.reshape(n_, groups, -1)
    n = xg.shape[2]
    dx = (n * g - g.sum(2, keepdims=True) - xh * (g * xh).sum(2, keepdims=True)) / (n * std)
    axes = (0,) + tuple(range(2, x.ndim))
    y = gamma.reshape(cshape) * xhat + beta.reshape(cshape)
    return y, dx.reshape(x.shape), (dy * xhat).sum(axes), dy.sum(axes)


# -- oracle: PyTorch autograd and native kernels ---------------------------------------------
LN_SHAPES = [((7, 5), (5,)), ((3, 4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((4, 1), (1,))]


@pytest.mark.parametrize(("shape", "pshape"), LN_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_matches_torch_autograd(mods, shape, pshape, dtype):
    x, dy, gamma, beta = inputs(shape, pshape, dtype, seed=1)
    tx, tg, tb = t64(x, gamma, beta)
    F.layer_norm(tx, pshape, tg, tb, EPS).backward(torch.tensor(dy, dtype=torch.float64))
    ln = mods["layernorm"]
    y, mean, invstd = ln.layernorm_forward(x, gamma, beta, EPS)
    assert mean.shape == invstd.shape == shape[: len(shape) - len(pshape)]
    dx, dgamma, dbeta = ln.layernorm_backward(dy, x, gamma, mean, invstd)
    tol = tolerance(dtype, gamma.size, 1 + float(np.max(np.abs(x) * np.max(invstd))))
    want_y = F.layer_norm(tx, pshape, tg, tb, EPS).detach().numpy()
    for got, want in ((y, want_y), (dx, tx.grad), (dgamma, tg.grad), (dbeta, tb.grad)):
        assert got.dtype == dtype
        assert rel_err(got, np.asarray(want)) < tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_matches_native_kernels(mods, dtype):
    x, dy, gamma, beta = inputs((6, 8), (8,), dtype, seed=2)
    tx, tdy, tg, tb = (torch.from_numpy(a) for a in (x, dy, gamma, beta))
    ty, tmean, trstd = torch.ops.aten.native_layer_norm(tx, [8], tg, tb, EPS)
    ln = mods["layernorm"]
    y, mean, invstd = ln.layernorm_forward(x, gamma, beta, EPS)
    tol = tolerance(dtype, 8, 10.0)
    assert rel_err(mean, tmean.numpy().ravel()) < tol
    assert rel_err(invstd, trstd.numpy().ravel()) < tol
    grads = torch.ops.aten.native_layer_norm_backward(
        tdy, tx, [8], tmean, trstd, tg, tb, [True, True, True]
    )
    for got, want in zip(ln.layernorm_backward(dy, x, gamma, mean, invstd), grads, strict=True):
        assert rel_err(got, want.numpy()) < tol


RMS_SHAPES = [((7, 5), (5,)), ((3, 4, 6), (4, 6)), ((4, 1), (1,))]


@pytest.mark.parametrize(("shape", "pshape"), RMS_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsnorm_matches_torch_autograd(mods, shape, pshape, dtype):
    x, dy, gamma, _ = inputs(shape, pshape, dtype, seed=3)
    tx, tg = t64(x, gamma)
    ty = F.rms_norm(tx, pshape, tg, RMS_EPS)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    rms = mods["rmsnorm"]
    y, invrms = rms.rmsnorm_forward(x, gamma, RMS_EPS)
    dx, dgamma = rms.rmsnorm_backward(dy, x, gamma, invrms)
    tol = tolerance(dtype, gamma.size)
    for got, want in ((y, ty.detach()), (dx, tx.grad), (dgamma, tg.grad)):
        assert got.dtype == dtype
        assert rel_err(got, np.asarray(want)) < tol


GN_CASES = [((4, 6, 3, 5), 1), ((4, 6, 3, 5), 3), ((4, 6, 3, 5), 6), ((5, 4), 2), ((2, 4, 7), 4)]


@pytest.mark.parametrize(("shape", "groups"), GN_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groupnorm_matches_torch_autograd(mods, shape, groups, dtype):
    x, dy, gamma, beta = inputs(shape, (shape[1],), dtype, seed=4)
    tx, tg, tb = t64(x, gamma, beta)
    ty = F.group_norm(tx, groups, tg, tb, EPS)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    gn = mods["groupnorm"]
    y, mean, invstd = gn.groupnorm_forward(x, groups, gamma, beta, EPS)
    assert mean.shape == invstd.shape == (shape[0], groups)
    dx, dgamma, dbeta = gn.groupnorm_backward(dy, x, groups, gamma, mean, invstd)
    tol = tolerance(dtype, x.size // (shape[0] * groups), 1 + np.max(np.abs(x)) * np.max(invstd))
    for got, want in ((y, ty.detach()), (dx, tx.grad), (dgamma, tg.grad), (dbeta, tb.grad)):
        assert got.dtype == dtype
        assert rel_err(got, np.asarray(want)) < tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_instancenorm_is_groupnorm_with_one_channel_per_group(mods, dtype):
    x, dy, gamma, beta = inputs((3, 4, 5, 2), (4,), dtype, seed=5)
    tx, tg, tb = t64(x, gamma, beta)
    ty = F.instance_norm(tx, weight=tg, bias=tb, eps=EPS)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    gn = mods["groupnorm"]
    y, mean, invstd = gn.groupnorm_forward(x, 4, gamma, beta, EPS)
    grads = gn.groupnorm_backward(dy, x, 4, gamma, mean, invstd)
    tol = tolerance(dtype, 10, 10.0)
    assert rel_err(y, ty.detach().numpy()) < tol
    for got, want in zip(grads, (tx.grad, tg.grad, tb.grad), strict=True):
        assert rel_err(got, want.numpy()) < tol
    assert "InstanceNorm" in gn.groupnorm_forward.__doc__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groupnorm_matches_native_kernels(mods, dtype):
    x, dy, gamma, beta = inputs((3, 6, 4, 4), (6,), dtype, seed=6)
    tx, tdy, tg, tb = (torch.from_numpy(a) for a in (x, dy, gamma, beta))
    _, tmean, trstd = torch.ops.aten.native_group_norm(tx, tg, tb, 3, 6, 16, 2, EPS)
    gn = mods["groupnorm"]
    _, mean, invstd = gn.groupnorm_forward(x, 2, gamma, beta, EPS)
    tol = tolerance(dtype, 48, 10.0)
    assert rel_err(mean, tmean.numpy()) < tol and rel_err(invstd, trstd.numpy()) < tol
    grads = torch.ops.aten.native_group_norm_backward(
        tdy, tx, tmean, trstd, tg, 3, 6, 16, 2, [True, True, True]
    )
    for got, want in zip(gn.groupnorm_backward(dy, x, 2, gamma, mean, invstd), grads, strict=True):
        assert rel_err(got, want.numpy()) < tol


# -- oracle: plain NumPy, on hypothesis shapes; and the backends against each other --------
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    lead=st.lists(st.integers(1, 5), min_size=1, max_size=2),
    tail=st.lists(st.integers(1, 5), min_size=1, max_size=2),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_family_matches_plain_numpy_on_both_backends(lead, tail, dtype, seed):
    shape, pshape = (*lead, *tail), tuple(tail)
    x, dy, gamma, beta = inputs(shape, pshape, dtype, seed)
    x64, dy64, g64, b64 = (a.astype(np.float64) for a in (x, dy, gamma, beta))
    n = int(np.prod(pshape))
    for backend in BACKENDS:
        ln = load_generated("layernorm", backend)
        y, mean, invstd = ln.layernorm_forward(x, gamma, beta, EPS)
        got = (y, *ln.layernorm_backward(dy, x, gamma, mean, invstd))
        cond = 1 + float(np.max(np.abs(x64)) * np.max(invstd))
        want = ref_layernorm(x64, dy64, g64, b64, EPS)
        scale = float(np.max(np.abs(g64)) * np.max(invstd) * np.max(np.abs(dy64)))
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            assert rel_err(a, b, scale if k == 1 else None) < tolerance(dtype, n, cond)
        rms = load_generated("rmsnorm", backend)
        y, invrms = rms.rmsnorm_forward(x, gamma, RMS_EPS)
        got = (y, *rms.rmsnorm_backward(dy, x, gamma, invrms))
        for a, b in zip(got, ref_rmsnorm(x64, dy64, g64, RMS_EPS), strict=True):
            assert rel_err(a, b) < tolerance(dtype, n, 10.0)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    n=st.integers(1, 4),
    groups=st.integers(1, 3),
    per_group=st.integers(1, 3),
    spatial=st.lists(st.integers(1, 4), max_size=2),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_groupnorm_matches_plain_numpy_on_both_backends(n, groups, per_group, spatial, dtype, seed):
    shape = (n, groups * per_group, *spatial)
    x, dy, gamma, beta = inputs(shape, (shape[1],), dtype, seed)
    x64, dy64, g64, b64 = (a.astype(np.float64) for a in (x, dy, gamma, beta))
    size = x.size // (n * groups)
    for backend in BACKENDS:
        gn = load_generated("groupnorm", backend)
        y, mean, invstd = gn.groupnorm_forward(x, groups, gamma, beta, EPS)
        got = (y, *gn.groupnorm_backward(dy, x, groups, gamma, mean, invstd))
        cond = 1 + float(np.max(np.abs(x64)) * np.max(invstd))
        scale = float(np.max(np.abs(g64)) * np.max(invstd) * np.max(np.abs(dy64)))
        want = ref_groupnorm(x64, dy64, groups, g64, b64, EPS)
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            assert rel_err(a, b, scale if k == 1 else None) < tolerance(dtype, size, cond)


# -- oracle: central finite differences -----------------------------------------------------
def test_family_dx_matches_finite_differences(mods):
    x, dy, gamma, beta = inputs((3, 4, 2), (4, 2), np.float64, seed=7)
    ln, rms, gn = mods["layernorm"], mods["rmsnorm"], mods["groupnorm"]
    _, mean, invstd = ln.layernorm_forward(x, gamma, beta, EPS)
    want = numeric_grad(lambda v: ln.layernorm_forward(v, gamma, beta, EPS)[0], x, dy, FD_STEP)
    assert rel_err(ln.layernorm_backward(dy, x, gamma, mean, invstd)[0], want) < FD_RTOL
    _, invrms = rms.rmsnorm_forward(x, gamma, RMS_EPS)
    want = numeric_grad(lambda v: rms.rmsnorm_forward(v, gamma, RMS_EPS)[0], x, dy, FD_STEP)
    assert rel_err(rms.rmsnorm_backward(dy, x, gamma, invrms)[0], want) < FD_RTOL
    g4, b4 = gamma[:, 0], beta[:, 0]
    _, mean, invstd = gn.groupnorm_forward(x, 2, g4, b4, EPS)
    want = numeric_grad(lambda v: gn.groupnorm_forward(v, 2, g4, b4, EPS)[0], x, dy, FD_STEP)
    assert rel_err(gn.groupnorm_backward(dy, x, 2, g4, mean, invstd)[0], want) < FD_RTOL


# -- float32 stress: large offsets, constant rows ---------------------------------------------
@pytest.mark.parametrize("offset", [1e4, 1e5, 1e6, 1e7])
def test_float32_large_offset_no_worse_than_torch(mods, offset):
    x, dy, gamma, beta = inputs((8, 64), (64,), np.float32, seed=8, offset=offset)
    x64, dy64, g64, b64 = (a.astype(np.float64) for a in (x, dy, gamma, beta))
    _, want_dx, _, _ = ref_layernorm(x64, dy64, g64, b64, EPS)
    ln = mods["layernorm"]
    _, mean, invstd = ln.layernorm_forward(x, gamma, beta, EPS)
    ours = rel_err(ln.layernorm_backward(dy, x, gamma, mean, invstd)[0], want_dx)
    tx = torch.from_numpy(x).requires_grad_()
    F.layer_norm(tx, (64,), torch.from_numpy(gamma), torch.from_numpy(beta), EPS).backward(
        torch.from_numpy(dy)
    )
    theirs = rel_err(tx.grad.numpy(), want_dx)
    assert ours <= 1.25 * theirs + F32_FACTOR  # ties are rounding noise in the last bits


@pytest.mark.parametrize("value", [0.0, 1e7])
def test_float32_constant_rows_give_zero_xhat(mods, value):
    x = np.full((3, 16), value, np.float32)
    dy = np.random.default_rng(9).standard_normal(x.shape).astype(np.float32)
    gamma, beta = np.ones(16, np.float32), np.zeros(16, np.float32)
    ln, gn = mods["layernorm"], mods["groupnorm"]
    y, mean, invstd = ln.layernorm_forward(x, gamma, beta, EPS)
    assert np.all(y == 0) and np.all(mean == value)
    dx, dgamma, _ = ln.layernorm_backward(dy, x, gamma, mean, invstd)
    assert np.isfinite(dx).all() and np.all(dgamma == 0)
    y, _, _ = gn.groupnorm_forward(x.reshape(3, 4, 4), 2, gamma[:4], beta[:4], EPS)
    assert np.all(y == 0)
    with pytest.raises(ValueError, match="row 0 has zero variance and eps is 0"):
        ln.layernorm_forward(x, gamma, beta, 0.0)


# -- bad input: ValueError naming the argument ------------------------------------------------
def test_bad_input_names_the_argument(mods):
    ln, rms, gn = mods["layernorm"], mods["rmsnorm"], mods["groupnorm"]
    x = np.ones((3, 4)) + np.arange(4.0)
    g = np.ones(4)
    with pytest.raises(ValueError, match="gamma: expected the trailing shape"):
        ln.layernorm_forward(x, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="x: expected a float32 or float64"):
        ln.layernorm_forward(x.astype(int), g, g)
    with pytest.raises(ValueError, match="eps: expected a finite number"):
        rms.rmsnorm_forward(x, g, -1.0)
    with pytest.raises(ValueError, match="dy: expected the dtype of x"):
        rms.rmsnorm_backward(x.astype(np.float32), x, g, np.ones(3))
    with pytest.raises(ValueError, match="invrms: expected values > 0"):
        rms.rmsnorm_backward(x, x, g, -np.ones(3))
    with pytest.raises(ValueError, match="groups: expected a divisor of the 4 channels"):
        gn.groupnorm_forward(x, 3, g, g)
    with pytest.raises(ValueError, match=r"mean: expected shape \(3, 2\)"):
        gn.groupnorm_backward(x, x, 2, g, np.zeros(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="dy and x: expected finite values"):
        ln.layernorm_backward(np.full_like(x, np.nan), x, g, np.zeros(3), np.ones(3))


def test_a_dx_that_does_not_fit_is_an_error(mods):
    x = np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)
    dy = np.full_like(x, 3e38)
    g = np.full(4, 10.0, np.float32)
    ln = mods["layernorm"]
    _, mean, invstd = ln.layernorm_forward(x, g, g, EPS)
    with pytest.raises(ValueError, match="overflows float32"):
        ln.layernorm_backward(dy, x, g, mean, invstd)


def test_an_inverse_root_that_does_not_fit_is_an_error(mods):
    """float32 values 1e-44 apart (subnormal) with eps = 0: sigma is about 5e-45, so
    1/sigma does not fit float32. Each forward says so, never returning inf."""
    ln, rms, gn = mods["layernorm"], mods["rmsnorm"], mods["groupnorm"]
    x = np.array([[0.0, 1e-44]], np.float32)
    one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    match = r"x: (row|group) 0 has a spread so small that its inverse root, [0-9.e+]+, overflows"
    with pytest.raises(ValueError, match=match + " float32"):
        ln.layernorm_forward(x, one, zero, 0.0)
    with pytest.raises(ValueError, match=match + " float32"):
        rms.rmsnorm_forward(x, one, 0.0)
    with pytest.raises(ValueError, match=match + " float32"):
        gn.groupnorm_forward(x.reshape(1, 2, 1), 1, one, zero, 0.0)
    y, _, invstd = ln.layernorm_forward(x, one, zero, 1e-5)  # eps > 0 is the way out
    assert np.isfinite(y).all() and np.isfinite(invstd).all()


# -- float32 block sums that overflow where the float64 result fits ---------------------------
# The fused kernels sum float32 values in float32 over blocks (rows of dgamma and dbeta,
# runs of a row's values), then in float64. Each case below overflows such a block sum in
# float32 while every true result fits float32: the kernel must notice and redo the call
# in float64, never returning inf and never calling a finite result an overflow. The
# results are compared with the float64 formulas, relative to max|dy| (the size of the
# terms that cancel).
F32_BIG = 3e37  # twelve of them overflow float32 (max about 3.4e38)


def _cancelling_rows(rows=24):
    """dy rows of +F32_BIG then as many of -F32_BIG: dbeta cancels to 0 exactly."""
    return np.repeat([F32_BIG, -F32_BIG], rows // 2)[:, None]


def test_float32_block_sums_that_overflow_are_redone_in_float64(mods):
    ln, rms, gn = mods["layernorm"], mods["rmsnorm"], mods["groupnorm"]
    one4 = np.ones(4, np.float32)

    # LayerNorm: the rows' dbeta block sum reaches 12 * 3e37; every row is the same, so
    # dgamma cancels too
    x = np.tile(np.float32([0, 1, 2, 3]), (24, 1))
    dy = np.broadcast_to(_cancelling_rows(), x.shape).astype(np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(np.float32(F32_BIG) * 12)  # a float32 block sum would overflow
    _, mean, invstd = ln.layernorm_forward(x, one4, 0 * one4, EPS)
    got = ln.layernorm_backward(dy, x, one4, mean, invstd)
    want = ref_layernorm(*(a.astype(np.float64) for a in (x, dy, one4, 0 * one4)), EPS)[1:]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32 and np.isfinite(g).all()
        assert rel_err(g, w, F32_BIG) < 1e-6

    # LayerNorm, one row of 48: the row's own float32 sum of dy * gamma overflows (so the
    # float32 dx is nan and must be replaced by the float64 one)
    x48 = np.tile(np.arange(12, dtype=np.float32), 4)[None, :]
    dy48 = np.repeat(np.float32([1.5e38, -1.5e38]), 24)[None, :]
    g48 = np.ones(48, np.float32)
    _, mean, invstd = ln.layernorm_forward(x48, g48, 0 * g48, EPS)
    got = ln.layernorm_backward(dy48, x48, g48, mean, invstd)
    want = ref_layernorm(*(a.astype(np.float64) for a in (x48, dy48, g48, 0 * g48)), EPS)[1:]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32 and np.isfinite(g).all()
        assert rel_err(g, w, 1.5e38) < 1e-6

    # RMSNorm: constant rows, xhat = 1 nearly, so the dgamma block sum overflows
    x = np.ones((24, 4), np.float32)
    (invrms,) = rms.rmsnorm_forward(x, one4, RMS_EPS)[1:]
    dx, dgamma = rms.rmsnorm_backward(dy, x, one4, invrms)
    want = ref_rmsnorm(*(a.astype(np.float64) for a in (x, dy, one4)), RMS_EPS)[1:]
    for g, w in zip((dx, dgamma), want, strict=True):
        assert g.dtype == np.float32 and np.isfinite(g).all()
        assert rel_err(g, w, F32_BIG) < 1e-6

    # GroupNorm: one group of 1024 spatial values, +1e38 then -1e38 on the same x values;
    # every accumulator of a vectorised float32 sum sees at least four +1e38 first
    half = np.arange(512, dtype=np.float32)
    x = np.concatenate([half, half]).reshape(1, 1, 1024)
    dy = np.repeat(np.float32([1e38, -1e38]), 512).reshape(1, 1, 1024)
    _, mean, invstd = gn.groupnorm_forward(x, 1, one4[:1], 0 * one4[:1], EPS)
    got = gn.groupnorm_backward(dy, x, 1, one4[:1], mean, invstd)
    want = ref_groupnorm(*(a.astype(np.float64) for a in (x, dy)), 1, np.ones(1), np.zeros(1), EPS)
    for g, w in zip(got, want[1:], strict=True):
        assert g.dtype == np.float32 and np.isfinite(g).all()
        assert rel_err(g, w, 1e38) < 1e-6


@pytest.mark.parametrize(("n", "groups", "spatial"), [(2500, None, None), (1025, 2, 1025)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_blocks_match_plain_numpy(mods, n, groups, spatial, dtype):
    """The fused forward sums rows (LayerNorm) and channels' spatial values (GroupNorm)
    in blocks of 1024 with a part block last; far from zero, so that the statistics are
    taken about a rounded mean."""
    rng = np.random.default_rng(8)
    if groups is None:
        x = (rng.standard_normal((3, n)) + 1e3).astype(dtype)
        gamma, beta = (rng.standard_normal(n).astype(dtype) for _ in range(2))
        got = mods["layernorm"].layernorm_forward(x, gamma, beta, EPS)
        want = ref_layernorm(*(a.astype(np.float64) for a in (x, x, gamma, beta)), EPS)[0]
        rms = mods["rmsnorm"].rmsnorm_forward(x, gamma, RMS_EPS)[0]
        rms_want = ref_rmsnorm(*(a.astype(np.float64) for a in (x, x, gamma)), RMS_EPS)[0]
        assert rel_err(rms, rms_want) < tolerance(dtype, n)
    else:
        x = (rng.standard_normal((2, 4, spatial)) + 1e3).astype(dtype)
        gamma, beta = (rng.standard_normal(4).astype(dtype) for _ in range(2))
        got = mods["groupnorm"].groupnorm_forward(x, groups, gamma, beta, EPS)
        x64, g64, b64 = (a.astype(np.float64) for a in (x, gamma, beta))
        want = ref_groupnorm(x64, x64, groups, g64, b64, EPS)[0]
    cond = 1 + 1e3  # |x| / sigma
    assert got[0].dtype == dtype
    assert rel_err(got[0], want) < tolerance(dtype, x.size // x.shape[0], cond)


def test_float32_forward_sums_that_overflow_are_redone_in_float64(mods):
    """x - shift and x * x overflow float32 for values of 3e38, though mean, sigma and y
    all fit: the fused forward redoes the call in float64 instead of calling x not
    finite."""
    x = np.float32([[-3e38, 3e38, -3e38, 3e38]])
    one, zero = np.ones(4, np.float32), np.zeros(4, np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(x[0, 1] - x[0, 0]) and np.isinf(x[0, 0] * x[0, 0])
    want = np.float32([[-1, 1, -1, 1]])
    y, mean, invstd = mods["layernorm"].layernorm_forward(x, one, zero, EPS)
    assert y.dtype == np.float32 and mean == 0 and np.isfinite(invstd).all()
    assert rel_err(y, want) < 1e-5
    y, invrms = mods["rmsnorm"].rmsnorm_forward(x, one, RMS_EPS)
    assert rel_err(y, want) < 1e-5 and np.isfinite(invrms).all()
    gn = mods["groupnorm"]
    y, mean, invstd = gn.groupnorm_forward(x.reshape(1, 1, 4), 1, one[:1], zero[:1], EPS)
    assert rel_err(y.reshape(1, 4), want) < 1e-5 and mean == 0
