"""The generated NumPy module against oracles that share no code with it.

Oracles: central finite differences in float64, a plain-NumPy formula written
here, PyTorch (autograd through ``torch.nn.functional.batch_norm`` and
``native_batch_norm_backward``), and, for small n, the verified per-element
Jacobian of the seed document turned into a function with ``lambdify``.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from conftest import BACKENDS, load_generated
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.claims import load
from derive.codegen import SEED_DOCUMENT
from derive.generated.batchnorm import batchnorm_backward, batchnorm_forward, xhat_backward
from derive.language import parse

# float64 against another float64 computation: sums of at most a few hundred
# terms of order one, so agreement to ~1e3 ulps with room to spare.
RTOL64 = 1e-11
# float32 against a float64 oracle: each reduction of n terms carries about
# eps32 * sqrt(n) relative error, amplified by the conditioning of centring,
# 1 + max|x| / sigma (x - mean loses digits when the spread is small next to
# the values); 64x covers the worst observed case with margin.
F32_FACTOR = 64 * float(np.finfo(np.float32).eps)
# central differences with step FD_STEP have truncation error O(h^2) and rounding
# error O(eps64 / h): about 1e-10 relative for h = 1e-5 at these magnitudes.
FD_STEP = 1e-5
FD_RTOL = 1e-7
# "no worse than PyTorch": ties are decided by rounding noise in the last bits,
# so ours may exceed PyTorch's error by this factor.
STABILITY_SLACK = 1.25
EPS = 1e-5
EXAMPLES = 25


def rel_err(got, want, scale=None):
    """Largest error, relative to scale (default: the largest magnitude of the reference)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.max(np.abs(want)) if scale is None else scale
    return float(np.max(np.abs(got - want)) / (scale + 1e-300))


def dx_scale(dya, gamma, invstd):
    """The size of the terms dx is made of, gamma * invstd * dy: dx itself can cancel to
    nearly 0 (for n = 2 it is exactly 0 without eps), so errors are measured against this."""
    return float(np.max(np.abs(gamma))) * float(np.max(invstd)) * float(np.max(np.abs(dya)))


def tolerance(dtype, n, xa=None):
    """Relative tolerance for n values per channel; xa gives the centring condition."""
    if dtype == np.float64:
        return RTOL64 if xa is None else RTOL64 * condition(xa)
    return F32_FACTOR * np.sqrt(n) * (1.0 if xa is None else condition(xa))


def condition(xa):
    """1 + max|x| / smallest per-channel standard deviation (with EPS)."""
    _, _, invstd = ref_forward(*as64(xa, np.ones(xa.shape[1]), np.zeros(xa.shape[1])), EPS)
    return 1.0 + float(np.max(np.abs(xa))) * float(np.max(invstd))


# -- an independent plain-NumPy batch norm, written from the textbook formulas ------
def reduce_axes(a):
    return (0,) + tuple(range(2, a.ndim))


def ref_forward(xa, gamma, beta, eps):
    axes = reduce_axes(xa)
    mean = xa.mean(axis=axes)
    var = xa.var(axis=axes)
    bshape = (1, -1) + (1,) * (xa.ndim - 2)
    xhat = (xa - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    return gamma.reshape(bshape) * xhat + beta.reshape(bshape), mean, 1 / np.sqrt(var + eps)


def ref_backward(dya, xa, gamma, eps):
    axes = reduce_axes(xa)
    n = xa.size // xa.shape[1]
    bshape = (1, -1) + (1,) * (xa.ndim - 2)
    mean = xa.mean(axis=axes, keepdims=True)
    std = np.sqrt(xa.var(axis=axes, keepdims=True) + eps)
    xhat = (xa - mean) / std
    g = gamma.reshape(bshape) * dya
    dx = n * g - g.sum(axis=axes, keepdims=True) - xhat * (g * xhat).sum(axis=axes, keepdims=True)
    dx = dx / (n * std)
    return dx, (dya * xhat).sum(axis=axes), dya.sum(axis=axes)


def ref_xhat_backward(g, xa, axis):
    mean = xa.mean(axis=axis, keepdims=True)
    std = xa.std(axis=axis, keepdims=True)
    xhat = (xa - mean) / std
    n = xa.shape[axis]
    s1 = g.sum(axis=axis, keepdims=True)
    s2 = (xhat * g).sum(axis=axis, keepdims=True)
    return (n * g - s1 - xhat * s2) / (n * std)


# -- inputs ------------------------------------------------------------------------------
shapes = st.tuples(
    st.integers(2, 7),
    st.integers(1, 4),
    st.lists(st.integers(1, 4), min_size=0, max_size=2),
).map(lambda t: (t[0], t[1], *t[2]))
dtypes = st.sampled_from([np.float32, np.float64])


def make_inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    xa = (rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)).astype(dtype)
    dya = rng.standard_normal(shape).astype(dtype)
    gamma = rng.standard_normal(shape[1]).astype(dtype)
    beta = rng.standard_normal(shape[1]).astype(dtype)
    return xa, dya, gamma, beta


def as64(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


# -- oracle 1: central finite differences ---------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 2, 2), (1, 2, 3)])
def test_backward_matches_finite_differences(shape):
    xa, dya, gamma, beta = make_inputs(shape, np.float64, seed=1)

    def loss(xv, gv, bv):
        y, _, _ = ref_forward(xv, gv, bv, EPS)
        return float(np.sum(dya * y))

    def central(f, v):
        grad = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            up, down = v.copy(), v.copy()
            up[idx] += FD_STEP
            down[idx] -= FD_STEP
            grad[idx] = (f(up) - f(down)) / (2 * FD_STEP)
        return grad

    fd_dx = central(lambda v: loss(v, gamma, beta), xa)
    fd_dgamma = central(lambda v: loss(xa, v, beta), gamma)
    fd_dbeta = central(lambda v: loss(xa, gamma, v), beta)
    _, mean, invstd = batchnorm_forward(xa, gamma, beta, EPS)
    dx, dgamma, dbeta = batchnorm_backward(dya, xa, gamma, mean, invstd)
    assert rel_err(dx, fd_dx) < FD_RTOL
    assert rel_err(dgamma, fd_dgamma) < FD_RTOL
    assert rel_err(dbeta, fd_dbeta) < FD_RTOL


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_xhat_backward_matches_finite_differences(axis):
    rng = np.random.default_rng(2)
    xa, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))

    def loss(v):
        xhat = (v - v.mean(axis=axis, keepdims=True)) / v.std(axis=axis, keepdims=True)
        return float(np.sum(g * xhat))

    fd = np.zeros_like(xa)
    for idx in np.ndindex(xa.shape):
        up, down = xa.copy(), xa.copy()
        up[idx] += FD_STEP
        down[idx] -= FD_STEP
        fd[idx] = (loss(up) - loss(down)) / (2 * FD_STEP)
    assert rel_err(xhat_backward(g, xa, axis=axis), fd) < FD_RTOL


# -- oracle 2: the plain-NumPy formulas ----------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_matches_plain_numpy(shape, dtype, seed):
    xa, dya, gamma, beta = make_inputs(shape, dtype, seed)
    n = xa.size // shape[1]
    y, mean, invstd = batchnorm_forward(xa, gamma, beta, EPS)
    dx, dgamma, dbeta = batchnorm_backward(dya, xa, gamma, mean, invstd)
    ry, rmean, rinv = ref_forward(*as64(xa, gamma, beta), EPS)
    rdx, rdgamma, rdbeta = ref_backward(*as64(dya, xa, gamma), EPS)
    tol = tolerance(dtype, n, xa)
    for got, want in ((y, ry), (mean, rmean), (invstd, rinv), (dgamma, rdgamma), (dbeta, rdbeta)):
        assert got.dtype == dtype
        assert rel_err(got, want) < tol
    assert dx.dtype == dtype
    assert rel_err(dx, rdx, dx_scale(dya, gamma, rinv)) < tol


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_xhat_backward_matches_plain_numpy(shape, dtype, seed, data):
    rng = np.random.default_rng(seed)
    xa = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    if shape[axis] < 2:
        return  # a single value along the axis is constant: covered by the error tests
    got = xhat_backward(g, xa, axis=axis)
    assert got.dtype == dtype
    assert got.shape == xa.shape
    want = ref_xhat_backward(*as64(g, xa), axis)
    invstd = float(np.max(1 / np.std(xa.astype(np.float64), axis=axis)))
    cond = 1 + float(np.max(np.abs(xa))) * invstd
    scale = float(np.max(np.abs(g))) * invstd  # as dx_scale: dx may cancel to ~0
    assert rel_err(got, want, scale) < tolerance(dtype, shape[axis]) * cond


# -- oracle 3: PyTorch -----------------------------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_matches_torch_autograd(shape, dtype, seed):
    xa, dya, gamma, beta = make_inputs(shape, dtype, seed)
    tx = torch.tensor(xa, dtype=torch.float64, requires_grad=True)
    tg = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=EPS)
    ty.backward(torch.tensor(dya, dtype=torch.float64))
    y, mean, invstd = batchnorm_forward(xa, gamma, beta, EPS)
    dx, dgamma, dbeta = batchnorm_backward(dya, xa, gamma, mean, invstd)
    tol = tolerance(dtype, xa.size // shape[1], xa)
    assert rel_err(y, ty.detach().numpy()) < tol
    assert rel_err(dx, tx.grad.numpy(), dx_scale(dya, gamma, invstd)) < tol
    assert rel_err(dgamma, tg.grad.numpy()) < tol
    assert rel_err(dbeta, tb.grad.numpy()) < tol


@pytest.mark.parametrize("shape", [(16, 3), (4, 3, 5, 5), (2, 4, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_native_batch_norm(shape, dtype):
    xa, dya, gamma, beta = make_inputs(shape, dtype, seed=3)
    tx, tdy, tg, tb = (torch.from_numpy(a) for a in (xa, dya, gamma, beta))
    ty, tmean, tinvstd = torch.ops.aten.native_batch_norm(tx, tg, tb, None, None, True, 0.1, EPS)
    y, mean, invstd = batchnorm_forward(xa, gamma, beta, EPS)
    n = xa.size // shape[1]
    tol = tolerance(dtype, n, xa)
    assert rel_err(y, ty.numpy()) < tol
    assert rel_err(mean, tmean.numpy()) < tol
    assert rel_err(invstd, tinvstd.numpy()) < tol
    # the same statistics into both backward passes
    tdx, tdgamma, tdbeta = torch.ops.aten.native_batch_norm_backward(
        tdy, tx, tg, None, None, torch.from_numpy(mean), torch.from_numpy(invstd), True, EPS,
        [True, True, True],
    )  # fmt: skip
    dx, dgamma, dbeta = batchnorm_backward(dya, xa, gamma, mean, invstd)
    scale = dx_scale(dya, gamma, invstd)
    for got, want, sc in ((dx, tdx, scale), (dgamma, tdgamma, None), (dbeta, tdbeta, None)):
        assert got.dtype == dtype
        assert rel_err(got, want.numpy(), sc) < tol


def test_xhat_backward_matches_torch_autograd():
    rng = np.random.default_rng(4)
    xa, g = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    tx = torch.tensor(xa, requires_grad=True)
    xhat = (tx - tx.mean(0)) / tx.var(0, unbiased=False).sqrt()
    xhat.backward(torch.tensor(g))
    assert rel_err(xhat_backward(g, xa), tx.grad.numpy()) < RTOL64


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(9, 5), (3, 5, 7, 3), (2, 4, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_backend_matches_native_batch_norm(backend, shape, dtype):
    """The fused kernels (channels for (N, C, S), blocks of rows for (N, C)) and the
    NumPy path, each against PyTorch's kernels with the same statistics."""
    bn = load_generated("batchnorm", backend)
    xa, dya, gamma, beta = make_inputs(shape, dtype, seed=5)
    tx, tdy, tg, tb = (torch.from_numpy(a) for a in (xa, dya, gamma, beta))
    ty, tmean, tinvstd = torch.ops.aten.native_batch_norm(tx, tg, tb, None, None, True, 0.1, EPS)
    y, mean, invstd = bn.batchnorm_forward(xa, gamma, beta, EPS)
    tol = tolerance(dtype, xa.size // shape[1], xa)
    for got, want in ((y, ty), (mean, tmean), (invstd, tinvstd)):
        assert got.dtype == dtype
        assert rel_err(got, want.numpy()) < tol
    tdx, tdgamma, tdbeta = torch.ops.aten.native_batch_norm_backward(
        tdy, tx, tg, None, None, torch.from_numpy(mean), torch.from_numpy(invstd), True, EPS,
        [True, True, True],
    )  # fmt: skip
    dx, dgamma, dbeta = bn.batchnorm_backward(dya, xa, gamma, mean, invstd)
    scale = dx_scale(dya, gamma, invstd)
    for got, want, sc in ((dx, tdx, scale), (dgamma, tdgamma, None), (dbeta, tdbeta, None)):
        assert got.dtype == dtype
        assert rel_err(got, want.numpy(), sc) < tol


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_the_two_backends_agree(shape, dtype, seed):
    numpy_path, fused = load_generated("batchnorm", "numpy"), load_generated("batchnorm", "numba")
    xa, dya, gamma, beta = make_inputs(shape, dtype, seed)
    tol = tolerance(dtype, xa.size // shape[1], xa)
    got = fused.batchnorm_forward(xa, gamma, beta, EPS)
    want = numpy_path.batchnorm_forward(xa, gamma, beta, EPS)
    for a, b in zip(got, want, strict=True):
        assert rel_err(a, b) < tol
    mean, invstd = want[1], want[2]
    got = fused.batchnorm_backward(dya, xa, gamma, mean, invstd)
    want = numpy_path.batchnorm_backward(dya, xa, gamma, mean, invstd)
    scales = (dx_scale(dya, gamma, invstd), None, None)
    for a, b, sc in zip(got, want, scales, strict=True):
        assert rel_err(a, b, sc) < tol


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(3, 2, 2500), (2, 3, 1024), (2, 2, 1025), (135, 5), (7, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_blocks_match_plain_numpy(backend, shape, dtype):
    """The edges of the kernels' blocking: rows longer than _BLOCK_ELEMENTS (a part
    block last, or none), and (N, C) rows taken four at a time with 3 left over, more
    than _BLOCK_ROWS of them; against the plain-NumPy formula in float64."""
    bn = load_generated("batchnorm", backend)
    xa, dya, gamma, beta = make_inputs(shape, dtype, seed=11)
    _, mean, invstd = bn.batchnorm_forward(xa, gamma, beta, EPS)
    dx, dgamma, dbeta = bn.batchnorm_backward(dya, xa, gamma, mean, invstd)
    want = ref_backward(*as64(dya, xa, gamma), EPS)
    tol = tolerance(dtype, xa.size // shape[1], xa)
    scale = dx_scale(dya, gamma, invstd)
    for got, ref, sc in zip((dx, dgamma, dbeta), want, (scale, None, None), strict=True):
        assert got.dtype == dtype
        assert rel_err(got, ref, sc) < tol


def test_numpy_blocks_agree_with_one_block(monkeypatch):
    """The NumPy path cut into blocks of one row gives what one block gives."""
    bn = load_generated("batchnorm", "numpy")
    xa, dya, gamma, beta = make_inputs((6, 3, 4), np.float64, seed=9)
    whole = bn.batchnorm_forward(xa, gamma, beta, EPS)
    grads = bn.batchnorm_backward(dya, xa, gamma, whole[1], whole[2])
    monkeypatch.setattr(bn, "_BLOCK_BYTES", 1)
    for a, b in zip(whole, bn.batchnorm_forward(xa, gamma, beta, EPS), strict=True):
        assert rel_err(b, a) < RTOL64
    for a, b in zip(grads, bn.batchnorm_backward(dya, xa, gamma, whole[1], whole[2]), strict=True):
        assert rel_err(b, a) < RTOL64


@pytest.mark.parametrize("n", [3, 4, 5])
def test_verified_jacobian_matches_finite_differences(n):
    doc = load(SEED_DOCUMENT)
    claim = doc.claim("jacobian")
    model = doc.model_for(n)
    xs = [model.families["x"][k] for k in range(1, n + 1)]
    entries = sp.zeros(n, n)
    for case in claim.cases:
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                if (i == j) != (case.label == "i = j"):
                    continue
                entries[j - 1, i - 1] = model.expand(parse(case.sides[-1], model, {"i": i, "j": j}))
    jac = sp.lambdify(xs, entries, modules="numpy")
    rng = np.random.default_rng(n)
    point = rng.standard_normal(n)

    def xhat(v):
        return (v - v.mean()) / v.std()

    fd = np.zeros((n, n))
    for i in range(n):
        up, down = point.copy(), point.copy()
        up[i] += FD_STEP
        down[i] -= FD_STEP
        fd[:, i] = (xhat(up) - xhat(down)) / (2 * FD_STEP)
    j_verified = np.asarray(jac(*point), dtype=np.float64)
    assert rel_err(j_verified, fd) < FD_RTOL
    # the vector-Jacobian product of the verified Jacobian is the generated (F)
    g = rng.standard_normal(n)
    assert rel_err(xhat_backward(g, point), j_verified.T @ g) < RTOL64


# -- numerical stability -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4096, 4), (32, 4, 8, 8)])
def test_float32_large_mean_no_worse_than_torch(shape):
    rng = np.random.default_rng(6)
    xa = (1e4 + rng.standard_normal(shape)).astype(np.float32)
    dya = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.standard_normal(shape[1]).astype(np.float32)
    beta = np.zeros(shape[1], np.float32)
    # reference: float64 on the same float32 data
    ref, _, _ = ref_backward(*as64(dya, xa, gamma), EPS)

    def torch_dx(dtype):
        tx = torch.tensor(xa, dtype=dtype, requires_grad=True)
        ty = torch.nn.functional.batch_norm(
            tx, None, None, torch.tensor(gamma, dtype=dtype), torch.tensor(beta, dtype=dtype),
            training=True, eps=EPS,
        )  # fmt: skip
        ty.backward(torch.tensor(dya, dtype=dtype))
        return tx.grad.numpy()

    _, mean, invstd = batchnorm_forward(xa, gamma, beta, EPS)
    dx, _, _ = batchnorm_backward(dya, xa, gamma, mean, invstd)

    def err(a):
        return np.linalg.norm(np.asarray(a, np.float64) - ref) / np.linalg.norm(ref)

    assert err(torch_dx(torch.float64)) < 1e-12  # the reference is right
    assert err(dx) <= STABILITY_SLACK * err(torch_dx(torch.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_channel_far_from_zero_gives_zero_xhat(dtype):
    rng = np.random.default_rng(7)
    xa = rng.standard_normal((1001, 2)).astype(dtype)
    xa[:, 0] = 1e7
    gamma, beta = np.ones(2, dtype), np.zeros(2, dtype)
    y, mean, invstd = batchnorm_forward(xa, gamma, beta, EPS)
    assert np.all(y[:, 0] == 0)
    assert mean[0] == dtype(1e7)
    assert invstd[0] == pytest.approx(1 / np.sqrt(EPS), rel=1e-6)  # eps rounded to float32
    dx, dgamma, _ = batchnorm_backward(
        rng.standard_normal(xa.shape).astype(dtype), xa, gamma, mean, invstd
    )
    assert np.all(np.isfinite(dx))
    assert dgamma[0] == 0


def test_n_equal_one_with_eps():
    xa = np.array([[1.0, -2.0]])
    y, mean, invstd = batchnorm_forward(xa, np.ones(2), np.full(2, 0.5), EPS)
    assert np.array_equal(y, [[0.5, 0.5]])
    dx, dgamma, dbeta = batchnorm_backward(np.array([[3.0, 4.0]]), xa, np.ones(2), mean, invstd)
    assert np.array_equal(dx, [[0.0, 0.0]])
    assert np.array_equal(dbeta, [3.0, 4.0])


# -- bad input -------------------------------------------------------------------------------
X = np.arange(12.0).reshape(4, 3) ** 1.5
G1 = np.ones(3)
_, MEAN, INVSTD = batchnorm_forward(X, G1, G1)

BAD_FORWARD = [
    ((np.ones(3), G1, G1), "x: expected shape \\(N, C\\) or \\(N, C, \\*spatial\\)"),
    ((X.astype(np.int64), G1, G1), "x: expected a float32 or float64 array, got dtype int64"),
    ((X.astype(np.float16), G1, G1), "x: expected a float32 or float64 array"),
    ((np.ones((0, 3)), G1, G1), "x: expected at least one value per channel"),
    ((np.ones((4, 3, 0)), G1, G1), "x: expected at least one value per channel"),
    ((np.ones((4, 0)), np.ones(0), np.ones(0)), "x: expected at least one channel"),
    ((X, np.ones(2), G1), "gamma: expected shape \\(3,\\)"),
    ((X, G1, np.ones((3, 1))), "beta: expected shape \\(3,\\)"),
    ((X, np.array(["a", "b", "c"]), G1), "gamma: expected real numbers"),
    ((X, np.array([1.0, np.nan, 1.0]), G1), "gamma: expected finite values"),
    ((X, G1, G1, -1e-5), "eps: expected a finite number >= 0"),
    ((X, G1, G1, float("nan")), "eps: expected a finite number >= 0"),
    ((np.ones((4, 3)), G1, G1, 0.0), "x: channel 0 has zero variance and eps is 0"),
    ((np.where(np.eye(4, 3) > 0, np.inf, X), G1, G1), "x: expected finite values"),
]


@pytest.mark.parametrize(("args", "message"), BAD_FORWARD)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf/nan inputs warn, then raise
def test_forward_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        batchnorm_forward(*args)


BAD_BACKWARD = [
    (
        (np.ones((4, 2)), X, G1, MEAN, INVSTD),
        "dy: expected the shape of x \\(4, 3\\), got \\(4, 2\\)",
    ),
    ((np.ones((4, 3), np.float32), X, G1, MEAN, INVSTD), "dy: expected the dtype of x"),
    ((np.ones(3), np.ones(3), G1, MEAN, INVSTD), "x: expected shape"),
    ((X.astype(int), X.astype(int), G1, MEAN, INVSTD), "x: expected a float32 or float64 array"),
    ((np.ones((0, 3)), np.ones((0, 3)), G1, MEAN, INVSTD), "x: expected at least one value"),
    ((X, X, np.ones(4), MEAN, INVSTD), "gamma: expected shape \\(3,\\)"),
    ((X, X, G1, MEAN[:2], INVSTD), "mean: expected shape \\(3,\\)"),
    ((X, X, G1, MEAN, np.array([1.0, 0.0, 1.0])), "invstd: expected values > 0"),
    ((X, X, G1, MEAN, np.array([1.0, np.inf, 1.0])), "invstd: expected finite values"),
    ((np.full((4, 3), np.nan), X, G1, MEAN, INVSTD), "dy and x: expected finite values"),
]
# the per-channel inputs, which the fused kernel checks itself: every kind of bad value in
# each, on the (N, C) layout here and the (N, C, S) one in the test
X3 = np.stack([X, X[::-1]], axis=-1)
BAD_STATISTICS = [
    ((X, X, np.array([1.0, np.nan, 1.0]), MEAN, INVSTD), "gamma: expected finite values"),
    ((X, X, np.array([1.0, 1.0, -np.inf]), MEAN, INVSTD), "gamma: expected finite values"),
    ((X, X, G1, np.array([np.inf, 0.0, 0.0]), INVSTD), "mean: expected finite values"),
    ((X, X, G1, np.array([0.0, np.nan, 0.0]), INVSTD), "mean: expected finite values"),
    ((X, X, G1, MEAN, np.array([1.0, 1.0, np.nan])), "invstd: expected finite values"),
    ((X, X, G1, MEAN, np.array([1.0, 0.0, 1.0])), "invstd: expected values > 0"),
    ((X, X, G1, MEAN, np.array([-1.0, 1.0, 1.0])), "invstd: expected values > 0"),
    ((X, X, G1, MEAN, np.array([1.0, 1.0, -0.0])), "invstd: expected values > 0"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("args", "message"), BAD_BACKWARD + BAD_STATISTICS)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf/nan inputs warn, then raise
def test_backward_rejects_bad_input(backend, args, message):
    bn = load_generated("batchnorm", backend)
    with pytest.raises(ValueError, match=message):
        bn.batchnorm_backward(*args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("args", "message"), BAD_STATISTICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backward_rejects_bad_statistics_on_every_layout(backend, args, message, dtype):
    """The same bad per-channel inputs with x of shape (N, C, S) and in float32."""
    bn = load_generated("batchnorm", backend)
    gamma, mean, invstd = (np.asarray(a, dtype) for a in args[2:])
    with pytest.raises(ValueError, match=message):
        bn.batchnorm_backward(X3.astype(dtype), X3.astype(dtype), gamma, mean, invstd)


BAD_XHAT = [
    ((np.ones((2, 3)), X), "g: expected the shape of x"),
    ((X.astype(np.float32), X), "g: expected the dtype of x"),
    ((X.astype(int), X.astype(int)), "x: expected a float32 or float64 array"),
    ((np.float64(1.0), np.float64(2.0)), "x: expected an array with an axis"),
    ((X, X, 2), "axis: expected an axis of x \\(ndim 2\\), got 2"),
    ((X, X, 0.5), "axis: expected an integer"),
    ((np.ones((0, 3)), np.ones((0, 3))), "x: expected at least one value along axis 0"),
    ((X, np.ones((4, 3))), "x: a slice along axis 0 is constant, so sigma = 0"),
    ((X[:1], X[:1]), "x: a slice along axis 0 is constant, so sigma = 0"),
    ((np.full((4, 3), np.inf), X), "g: expected finite values"),
]


@pytest.mark.parametrize(("args", "message"), BAD_XHAT)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf/nan inputs warn, then raise
def test_xhat_backward_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        xhat_backward(*args)


# -- overflow: powers never alone, a result that does not fit is an error ------------------
def _tiny_channel(seed=0):
    """float32 x with sigma = 1e-20 per channel (invstd = 1e20, invstd**2 = inf in float32)."""
    rng = np.random.default_rng(seed)
    x = (1e-20 * rng.standard_normal((16, 3))).astype(np.float32)
    dy = rng.standard_normal((16, 3)).astype(np.float32)
    xd, dyd = x.astype(np.float64), dy.astype(np.float64)
    sd = xd.std(axis=0)
    xh = (xd - xd.mean(axis=0)) / sd
    ref = (dyd - dyd.mean(axis=0) - xh * (dyd * xh).mean(axis=0)) / sd
    with np.errstate(over="ignore"):
        assert np.isinf(np.float32(1 / sd.min()) ** 2)  # the naive power overflows
    assert np.abs(ref).max() < np.finfo(np.float32).max  # the true dx fits
    return x, dy, ref


def test_a_tiny_float32_channel_gives_a_finite_dx():
    x, dy, ref = _tiny_channel()
    ones = np.ones(3, np.float32)
    _, mean, invstd = batchnorm_forward(x, ones, np.zeros(3, np.float32), eps=0)
    dx, dgamma, _ = batchnorm_backward(dy, x, ones, mean, invstd)
    assert np.isfinite(dx).all() and np.isfinite(dgamma).all()
    assert rel_err(dx, ref) < 1e-4
    assert rel_err(xhat_backward(dy, x), ref) < 1e-4


def test_a_dx_that_does_not_fit_is_an_error():
    x, dy, _ = _tiny_channel()
    _, mean, invstd = batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), eps=0)
    huge = np.full(3, 1e30, np.float32)
    with pytest.raises(ValueError, match="dx: the result overflows float32"):
        batchnorm_backward(dy, x, huge, mean, invstd)
    with pytest.raises(ValueError, match="y: the result overflows float32"):
        batchnorm_forward(x, huge, np.zeros(3, np.float32), eps=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(64, 3), (16, 3, 4)])
def test_a_dgamma_that_does_not_fit_is_an_error(backend, shape):
    """dgamma = sum(dy * xhat) over 64 values of about 2e37 is about 1e39, above float32's
    largest; dx and dbeta stay far below it. The error names dgamma, on every path (the
    fused kernels' float32 sums overflow too, and are done again in float64)."""
    bn = load_generated("batchnorm", backend)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    _, mean, invstd = bn.batchnorm_forward(x, gamma, beta, EPS)
    xhat = x.astype(np.float64) - mean.reshape((1, 3) + (1,) * (x.ndim - 2))
    dy = (2e37 * np.sign(xhat)).astype(np.float32)
    assert np.abs(ref_backward(*as64(dy, x, gamma), EPS)[0]).max() < 3e38  # dx fits
    with pytest.raises(ValueError, match="^dgamma: the result overflows float32"):
        bn.batchnorm_backward(dy, x, gamma, mean, invstd)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(2, 1), (2, 1, 3)])
def test_an_invstd_that_does_not_fit_is_an_error(backend, shape):
    """float32 values 1e-44 apart (subnormal) with eps = 0: sigma is about 5e-45, so
    invstd = 1/sigma does not fit float32; the forward says so, never returning inf."""
    bn = load_generated("batchnorm", backend)
    x = np.zeros(shape, np.float32)
    x[1] = 1e-44
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    match = r"^x: channel 0 has a spread so small that its inverse root, [0-9.e+]+, overflows"
    with pytest.raises(ValueError, match=match + " float32"):
        bn.batchnorm_forward(x, one, zero, eps=0)
    y, _, invstd = bn.batchnorm_forward(x, one, zero, eps=EPS)
    assert np.isfinite(y).all() and np.isfinite(invstd).all()


@pytest.mark.parametrize("eps", [None, "abc", "1e-5", -1, -1e-5, float("nan"), float("inf"), True])
def test_bad_eps_names_eps(eps):
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0"):
        batchnorm_forward(X, G1, G1, eps)


@pytest.mark.parametrize("eps", [0, 1e-5, np.float32(1e-3), np.float64(0.0)])
def test_eps_of_any_real_type(eps):
    y, _, _ = batchnorm_forward(X, G1, G1, eps)
    assert np.isfinite(y).all()


# -- float32 block sums that overflow where every result fits ------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["rows", "channels"])
def test_float32_block_sums_that_overflow_are_redone_in_float64(backend, layout):
    """dy of +-BIG in halves on x values that repeat: every true sum cancels to 0 and dx =
    gamma * dy / sigma fits float32, but a float32 block sum of dy passes 3.4e38. The
    fused kernels redo the call in float64 (dx included); the NumPy path is float64."""
    bn = load_generated("batchnorm", backend)
    if layout == "rows":  # (N, C): a channel is a column of 24 rows, summed 4 at a time
        x = np.tile(np.arange(12, dtype=np.float32), 2)[:, None]
        dy = np.repeat(np.float32([3e37, -3e37]), 12)[:, None]
    else:  # (N, C, S): one channel of 2 rows of 1024, summed 1024 at a time
        x = np.tile(np.arange(512, dtype=np.float32), 4).reshape(2, 1, 1024)
        dy = np.tile(np.repeat(np.float32([1e38, -1e38]), 512), 2).reshape(2, 1, 1024)
    one = np.ones(1, np.float32)
    _, mean, invstd = bn.batchnorm_forward(x, one, 0 * one, EPS)
    got = bn.batchnorm_backward(dy, x, one, mean, invstd)
    want = ref_backward(*as64(dy, x, one), EPS)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32 and np.isfinite(g).all()
        assert rel_err(g, w, float(np.abs(dy).max())) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(24, 2), (12, 2, 2)])
def test_a_dbeta_that_does_not_fit_is_an_error(backend, shape):
    """dbeta = sum(dy) = 24 * 3e37 does not fit float32: an error naming dbeta, never inf."""
    bn = load_generated("batchnorm", backend)
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    one = np.ones(2, np.float32)
    _, mean, invstd = bn.batchnorm_forward(x, one, 0 * one, EPS)
    with pytest.raises(ValueError, match="^dbeta: the result overflows float32"):
        bn.batchnorm_backward(np.full(shape, 3e37, np.float32), x, one, mean, invstd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_coefficient_with_zero_dy_gives_zero(backend):
    """gamma * invstd = 1e40 does not fit float32, but with dy = 0 every result is 0."""
    bn = load_generated("batchnorm", backend)
    x = np.random.default_rng(5).standard_normal((6, 2)).astype(np.float32)
    gamma, invstd = np.full(2, 1e30, np.float32), np.full(2, 1e10, np.float32)
    dx, dgamma, dbeta = bn.batchnorm_backward(0 * x, x, gamma, np.zeros(2, np.float32), invstd)
    assert not dx.any() and not dgamma.any() and not dbeta.any()
