"""derive.generated.softmax (softmax, log-softmax and cross-entropy, forward and backward)
against oracles that share no code with it, on both backends (the numba kernels and the
NumPy path).

Oracles: PyTorch (autograd through torch.softmax, torch.log_softmax and
F.cross_entropy in float64, and the native backward kernels
torch._softmax_backward_data and torch._log_softmax_backward_data), plain-NumPy
formulas written here (torch's definitions of label smoothing, ignore_index and class
weights), and central finite differences in float64.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKENDS, eps_of, load_generated, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st

# Each result is a handful of roundings plus a sum over the class axis: a sum of n terms
# carries about eps * sqrt(n) relative error (pairwise or blocked sums much less); 64x
# that covers both dtypes with margin while catching any wrong term (an error of O(1)).
ULPS = 64
# The cross-entropy / softmax condition number: x_i - max(x) is rounded with an absolute
# error eps * |x_i - max(x)|, which exp turns into a relative error of the same size.
# Tests multiply the tolerance by 1 + max|x - max(x)| (see cond()).
#
# central differences with step FD_STEP: truncation O(h^2) ~ 1e-10 and rounding
# O(eps64 / h) ~ 1e-11 for inputs of order one, so 1e-7 relative leaves a wide margin and
# still rejects any wrong term.
FD_STEP = 1e-5
FD_RTOL = 1e-7
# the backends run the same formulas, in a different order of operations (fused loops
# against NumPy reductions): they agree to a few ulps times sqrt(n), never more than
# this many ulps for the small rows used in the agreement test.
BACKEND_ULPS = 256
# a probability row that sums to 1: sum(softmax) - 1 is a sum of n rounded terms
SUM_ULPS = 8
# answers exact but for a couple of roundings (1/C, log C, 1 - sum(y), dy - 1 * dy)
EXACT_ULPS = 4
# two float64 computations of the same small sums (the oracles checked on each other)
ORACLE_RTOL = 1e-12
# overflow, invalid and divide-by-zero raise; underflow is the right answer (exp of
# -2e4 is 0) and stays quiet, as it is by default
NO_WARNINGS = dict(all="raise", under="ignore")
EXAMPLES = 20
BIG_C = 50257  # GPT-2's vocabulary
LONG_ROW = 100_000


@functools.cache
def _module(backend):
    return load_generated("softmax", backend)


@pytest.fixture(scope="module", params=BACKENDS)
def sm(request):
    return _module(request.param)


def both():
    return [_module(b) for b in BACKENDS]


def tolerance(dtype, n, cond=1.0):
    """ULPS ulps of dtype, times sqrt(n) for a sum of n terms, times a condition number."""
    return ULPS * eps_of(dtype) * np.sqrt(max(n, 1)) * cond


def cond(x, axis=-1):
    x = np.asarray(x, np.float64)
    finite = np.where(np.isfinite(x), x, np.nan)
    spread = np.nanmax(finite, axis=axis, keepdims=True) - finite
    return 1.0 + float(np.nanmax(spread))


def rel_err(got, want, scale=None):
    """max |got - want| relative to scale (by default max |want| over its finite values);
    inf where the two disagree about an infinity or a NaN (see elem_err)."""
    if scale is None:
        w = np.asarray(want, np.float64)
        scale = float(np.max(np.abs(np.where(np.isfinite(w), w, 0.0)), initial=0.0))
    return elem_err(got, want, scale + 1e-300)


def elem_err(got, want, bound):
    """max over elements of |got - want| / bound; inf where the two disagree about an
    infinity or a NaN (equal infinities count as no error)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if np.any(np.isnan(got)) or np.any(np.isinf(got) != np.isinf(want)):
        return float("inf")
    if np.any(got[np.isinf(want)] != want[np.isinf(want)]):
        return float("inf")
    finite = np.isfinite(want)
    diff = np.abs(np.where(finite, got, 0.0) - np.where(finite, want, 0.0))
    return float(np.max(diff / bound, initial=0.0))


def shifted(x, axis):
    """|x - max(x)| along axis, 0 at the -inf masks (for error bounds)."""
    x = np.asarray(x, np.float64)
    finite = np.where(np.isfinite(x), x, np.nan)
    z = np.nanmax(finite, axis=axis, keepdims=True) - finite
    return np.where(np.isfinite(z), z, 0.0)


def softmax_bound(x, axis, dtype, want):
    """exp(x_i - max) is off by eps * (1 + |x_i - max|) relative, the row sum by about
    eps * sqrt(n) (in the tolerance) and its reciprocal by eps * log n at most; the floor
    is float's smallest normal, for probabilities that underflow."""
    n = np.shape(x)[axis]
    z = shifted(x, axis)
    return tolerance(dtype, n) * np.abs(want) * (1 + z + np.log(n)) + np.finfo(dtype).tiny


def log_softmax_bound(x, axis, dtype):
    """x_i - max - log(sum): absolute error eps * (|x_i - max| + log n), plus the sum's
    error, whose p-weighted size is at most eps * log n again."""
    n = np.shape(x)[axis]
    return tolerance(dtype, n) * (1 + shifted(x, axis) + 2 * np.log(n))


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def logits(shape, dtype, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def grad_out(shape, dtype, seed):
    return np.random.default_rng(seed + 1000).standard_normal(shape).astype(dtype)


def assert_array_of(a, dtype, shape):
    assert isinstance(a, np.ndarray), type(a)
    assert a.dtype == dtype, a.dtype
    assert a.shape == tuple(shape), a.shape


# -- plain NumPy formulas -----------------------------------------------------------------
def ref_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def ref_softmax(x, axis=-1):
    return np.exp(ref_log_softmax(x, axis))


def ref_softmax_backward(dy, y, axis=-1):
    dy, y = np.asarray(dy, np.float64), np.asarray(y, np.float64)
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def ref_log_softmax_backward(dy, y, axis=-1):
    dy, y = np.asarray(dy, np.float64), np.asarray(y, np.float64)
    return dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True)


def ref_cross_entropy(x, target, reduction="mean", ls=0.0, ignore_index=-100, weight=None):
    """torch.nn.functional.cross_entropy, from its documented definition."""
    x = np.asarray(x, np.float64)
    one_d = x.ndim == 1
    x2 = x[None, :] if one_d else x
    n, c = x2.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    logp = ref_log_softmax(x2)
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        t = target.reshape(n)
        keep = t != ignore_index
        tt = np.where(keep, t, 0)
        with np.errstate(invalid="ignore"):
            nll = -logp[np.arange(n), tt] * w[tt]
            smooth = -np.sum(np.where(w > 0, logp * w, 0.0), axis=1) if ls else 0.0
        per = np.where(keep, (1 - ls) * nll + ls / c * smooth, 0.0)
        divisor = float(np.sum(w[tt] * keep))
    else:
        q = np.asarray(target, np.float64).reshape(n, c) * (1 - ls) + ls / c
        with np.errstate(invalid="ignore"):
            per = -np.sum(np.where(q * w > 0, logp * w * q, 0.0), axis=1)
        divisor = float(n)
    if reduction == "none":
        return per[0] if one_d else per
    total = float(np.sum(per))
    return total / divisor if reduction == "mean" else total


def ref_ce_weights(n, c, target, ls, ignore_index, weight):
    """(a, the mean's divisor): a = the smoothed, class-weighted target of each row."""
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        t = target.reshape(n)
        keep = t != ignore_index
        tt = np.where(keep, t, 0)
        a = ls / c * np.tile(w, (n, 1))
        a[np.arange(n), tt] += (1 - ls) * w[tt]
        a *= keep[:, None]
        return a, float(np.sum(w[tt] * keep))
    q = np.asarray(target, np.float64).reshape(n, c) * (1 - ls) + ls / c
    return q * w, float(n)


def ref_cross_entropy_backward(
    dloss, x, target, reduction="mean", ls=0.0, ignore_index=-100, weight=None
):
    """Each row's loss is sum_c a_c * (-log p_c) for weights a (the smoothed, class-
    weighted target), whose gradient in the logits is (sum_c a_c) p - a."""
    x = np.asarray(x, np.float64)
    one_d = x.ndim == 1
    x2 = x[None, :] if one_d else x
    n, c = x2.shape
    a, divisor = ref_ce_weights(n, c, target, ls, ignore_index, weight)
    g = np.broadcast_to(np.asarray(dloss, np.float64).reshape(-1), (n,))
    if reduction == "mean":
        g = g / divisor
    p = ref_softmax(x2)
    dx = g[:, None] * (a.sum(axis=1, keepdims=True) * p - a)
    return dx[0] if one_d else dx


# -- torch oracles --------------------------------------------------------------------------
def torch_ce(x, target, dloss, reduction, ls, ignore_index, weight):
    """(loss, dlogits) from F.cross_entropy and autograd in float64."""
    tx = t64(x, grad=True)
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        tt = torch.tensor(target.astype(np.int64))
    else:
        tt = t64(target)
    tw = None if weight is None else t64(weight)
    loss = F.cross_entropy(
        tx, tt, weight=tw, reduction=reduction, label_smoothing=ls, ignore_index=ignore_index
    )
    loss.backward(t64(dloss))
    return loss.detach().numpy(), tx.grad.numpy()


def torch_softmax(x, dy, axis, log=False):
    tx = t64(x, grad=True)
    ty = (torch.log_softmax if log else torch.softmax)(tx, dim=axis)
    ty.backward(t64(dy))
    return ty.detach().numpy(), tx.grad.numpy()


# -- softmax and log-softmax against torch ----------------------------------------------------
AXIS_CASES = [
    ((7,), -1),
    ((7,), 0),
    ((5, 9), -1),
    ((5, 9), 1),
    ((5, 9), 0),
    ((6, 1), -1),  # C = 1: softmax 1, log-softmax 0, both gradients 0
    ((1, 1), -1),
    ((3, 4, 6), -1),
    ((3, 4, 6), 0),
    ((3, 4, 6), 1),
    ((3, 4, 6), -2),
    ((2, 3, 2, 5), 2),
]


@pytest.mark.parametrize(("shape", "axis"), AXIS_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_matches_torch_autograd(sm, shape, axis, dtype):
    x, dy = logits(shape, dtype, seed=1), grad_out(shape, dtype, seed=1)
    want_y, want_dx = torch_softmax(x, dy, axis)
    y = sm.softmax_forward(x, axis=axis)
    assert_array_of(y, dtype, shape)
    n = shape[axis]
    assert elem_err(y, want_y, softmax_bound(x, axis, dtype, want_y)) < 1
    dx = sm.softmax_backward(dy, y, axis=axis)
    assert_array_of(dx, dtype, shape)
    scale = float(np.max(want_y) * np.max(np.abs(dy)))
    assert rel_err(dx, want_dx, scale) < tolerance(dtype, n, cond(x, axis))


@pytest.mark.parametrize(("shape", "axis"), AXIS_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_matches_torch_autograd(sm, shape, axis, dtype):
    x, dy = logits(shape, dtype, seed=2), grad_out(shape, dtype, seed=2)
    want_y, want_dx = torch_softmax(x, dy, axis, log=True)
    y = sm.log_softmax_forward(x, axis=axis)
    assert_array_of(y, dtype, shape)
    n = shape[axis]
    assert elem_err(y, want_y, log_softmax_bound(x, axis, dtype)) < 1
    c = cond(x, axis) + np.log(n)
    dx = sm.log_softmax_backward(dy, y, axis=axis)
    assert_array_of(dx, dtype, shape)
    scale = float(np.max(np.abs(dy))) * (1 + n)
    assert rel_err(dx, want_dx, scale) < tolerance(dtype, n, c)


@pytest.mark.parametrize(("shape", "axis"), [((4, 9), -1), ((4, 9), 0), ((3, 4, 5), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backwards_match_native_kernels(sm, shape, axis, dtype):
    """The backwards on the same (dy, y), against torch's own backward kernels run in
    float64 on the same values."""
    x, dy = logits(shape, dtype, seed=3), grad_out(shape, dtype, seed=3)
    tdy = t64(dy)
    y = ref_softmax(x, axis).astype(dtype)
    want = torch._softmax_backward_data(tdy, t64(y), axis, torch.float64).numpy()
    scale = float(np.max(y) * np.max(np.abs(dy)))
    assert rel_err(sm.softmax_backward(dy, y, axis=axis), want, scale) < tolerance(
        dtype, shape[axis]
    )
    ly = ref_log_softmax(x, axis).astype(dtype)
    want = torch._log_softmax_backward_data(tdy, t64(ly), axis, torch.float64).numpy()
    scale = float(np.max(np.abs(dy))) * (1 + shape[axis])
    assert rel_err(sm.log_softmax_backward(dy, ly, axis=axis), want, scale) < tolerance(
        dtype, shape[axis]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_inputs(sm, dtype):
    x = logits((6, 10), dtype, seed=25)
    dy = grad_out((6, 10), dtype, seed=25)
    for view, dview in ((x.T, dy.T), (x[:, ::2], dy[:, ::2])):
        assert not view.flags.c_contiguous
        want_y, want_dx = torch_softmax(view, dview, -1)
        y = sm.softmax_forward(view)
        assert elem_err(y, want_y, softmax_bound(view, -1, dtype, want_y)) < 1
        scale = float(np.max(want_y) * np.max(np.abs(dview)))
        assert rel_err(sm.softmax_backward(dview, y), want_dx, scale) < tolerance(
            dtype, 10, cond(view)
        )
        want_ly = ref_log_softmax(view)
        ly = sm.log_softmax_forward(view)
        assert elem_err(ly, want_ly, log_softmax_bound(view, -1, dtype)) < 1


def test_c_equal_one_is_exact(sm):
    x = logits((5, 1), np.float64, seed=4)
    dy = grad_out((5, 1), np.float64, seed=4)
    assert np.all(sm.softmax_forward(x) == 1.0)
    assert np.all(sm.log_softmax_forward(x) == 0.0)
    assert np.all(sm.softmax_backward(dy, np.ones_like(x)) == 0.0)
    assert np.max(np.abs(sm.log_softmax_backward(dy, np.zeros_like(x)))) <= EXACT_ULPS * eps_of(
        np.float64
    )


# -- large rows ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpt2_vocabulary_rows(sm, dtype):
    x, dy = logits((3, BIG_C), dtype, seed=5), grad_out((3, BIG_C), dtype, seed=5)
    want_y, want_dx = torch_softmax(x, dy, -1)
    tol = tolerance(dtype, BIG_C, cond(x))
    y = sm.softmax_forward(x)
    assert_array_of(y, dtype, x.shape)
    assert elem_err(y, want_y, softmax_bound(x, -1, dtype, want_y)) < 1
    scale = float(np.max(want_y) * np.max(np.abs(dy)))
    assert rel_err(sm.softmax_backward(dy, y), want_dx, scale) < tol
    want_ly, want_ldx = torch_softmax(x, dy, -1, log=True)
    ly = sm.log_softmax_forward(x)
    assert elem_err(ly, want_ly, log_softmax_bound(x, -1, dtype)) < 1
    scale = float(np.max(np.abs(want_ldx)))
    assert rel_err(sm.log_softmax_backward(dy, ly), want_ldx, scale) < tol


def test_float32_rows_of_1e5_elements(sm):
    x = logits((2, LONG_ROW), np.float32, seed=6, scale=4.0)
    dy = grad_out(x.shape, np.float32, seed=6)
    want_y, want_dx = torch_softmax(x, dy, -1)
    tol = tolerance(np.float32, LONG_ROW, cond(x))
    y = sm.softmax_forward(x)
    assert_array_of(y, np.float32, x.shape)
    assert np.all(y >= 0)
    assert elem_err(y, want_y, softmax_bound(x, -1, np.float32, want_y)) < 1
    row_sums = y.astype(np.float64).sum(axis=1)
    assert np.max(np.abs(row_sums - 1)) < tolerance(np.float32, LONG_ROW)
    scale = float(np.max(want_y) * np.max(np.abs(dy)))
    assert rel_err(sm.softmax_backward(dy, y), want_dx, scale) < tol
    ly = sm.log_softmax_forward(x)
    want_ly = ref_log_softmax(x)
    assert elem_err(ly, want_ly, log_softmax_bound(x, -1, np.float32)) < 1


# -- stress: huge logits, equal rows, -inf masks ---------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_of_1e4_give_finite_results(sm, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4, -1e4 + 2, -1e4]], dtype)
    dy = grad_out(x.shape, dtype, seed=7)
    with warnings.catch_warnings(), np.errstate(**NO_WARNINGS):
        warnings.simplefilter("error")
        y = sm.softmax_forward(x)
        ly = sm.log_softmax_forward(x)
        dx = sm.softmax_backward(dy, y)
        ldx = sm.log_softmax_backward(dy, ly)
    for a in (y, ly, dx, ldx):
        assert a.dtype == dtype and np.isfinite(a).all()
    want_y, want_dx = torch_softmax(x, dy, -1)
    assert elem_err(y, want_y, softmax_bound(x, -1, dtype, want_y)) < 1
    assert rel_err(dx, want_dx, float(np.max(np.abs(dy)))) < tolerance(dtype, 4)
    want_ly, want_ldx = torch_softmax(x, dy, -1, log=True)
    assert elem_err(ly, want_ly, log_softmax_bound(x, -1, dtype)) < 1
    assert rel_err(ldx, want_ldx, float(np.max(np.abs(dy)))) < tolerance(dtype, 4)
    # never log(softmax): the -1e4 beside 0 is finite, about -1e4 (not log(0) = -inf)
    z = sm.log_softmax_forward(np.array([0.0, -1e4], dtype))
    assert np.isfinite(z).all()
    assert abs(float(z[1]) + 1e4) <= 1e4 * tolerance(dtype, 2)
    assert abs(float(z[0])) <= tolerance(dtype, 2)


@pytest.mark.parametrize("value", [0.0, -3.5, 1e4, -1e4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_equal_rows(sm, value, dtype):
    c = 7
    x = np.full((3, c), value, dtype)
    y = sm.softmax_forward(x)
    assert np.max(np.abs(y.astype(np.float64) - 1 / c)) <= EXACT_ULPS * eps_of(dtype) / c
    ly = sm.log_softmax_forward(x)
    assert np.max(np.abs(ly.astype(np.float64) + np.log(c))) <= EXACT_ULPS * eps_of(dtype) * np.log(
        c
    )
    dy = np.ones_like(x)  # a constant dy changes nothing: softmax sums to 1
    assert np.max(np.abs(sm.softmax_backward(dy, y))) <= EXACT_ULPS * eps_of(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minus_inf_entries_are_masks(sm, dtype):
    inf = np.inf
    x = np.array([[0.5, -inf, 1.0, -inf], [-inf, 2.0, -inf, -inf], [0.0, 1.0, 2.0, 3.0]], dtype)
    dy = grad_out(x.shape, dtype, seed=8)
    mask = np.isneginf(x)
    y = sm.softmax_forward(x)
    assert y.dtype == dtype and np.all(y[mask] == 0) and np.isfinite(y).all()
    assert y[1, 1] == 1.0
    want_y, want_dx = torch_softmax(x, dy, -1)
    assert elem_err(y, want_y, softmax_bound(x, -1, dtype, want_y)) < 1
    dx = sm.softmax_backward(dy, y)
    assert np.all(dx[mask] == 0) and np.isfinite(dx).all()
    assert rel_err(dx, want_dx, float(np.max(np.abs(dy)))) < tolerance(dtype, 4, 4.0)
    # the native kernel on the same y agrees
    native = torch._softmax_backward_data(t64(dy), t64(y), -1, torch.float64).numpy()
    assert rel_err(dx, native, float(np.max(np.abs(dy)))) < tolerance(dtype, 4)
    ly = sm.log_softmax_forward(x)
    assert ly.dtype == dtype and np.all(np.isneginf(ly[mask])) and np.isfinite(ly[~mask]).all()
    want_ly, want_ldx = torch_softmax(x, dy, -1, log=True)
    assert elem_err(ly, want_ly, log_softmax_bound(x, -1, dtype)) < 1
    ldx = sm.log_softmax_backward(dy, ly)
    assert np.isfinite(ldx).all()
    native = torch._log_softmax_backward_data(t64(dy), t64(ly), -1, torch.float64).numpy()
    assert rel_err(ldx, native, float(np.max(np.abs(dy)))) < tolerance(dtype, 4)
    assert rel_err(ldx, want_ldx, float(np.max(np.abs(dy)))) < tolerance(dtype, 4, 4.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minus_inf_mask_along_axis_0(sm, dtype):
    x = logits((4, 3), dtype, seed=9)
    x[1, 0] = x[3, 0] = x[0, 2] = -np.inf
    dy = grad_out(x.shape, dtype, seed=9)
    want_y, want_dx = torch_softmax(x, dy, 0)
    y = sm.softmax_forward(x, axis=0)
    assert np.all(y[np.isneginf(x)] == 0)
    assert elem_err(y, want_y, softmax_bound(x, 0, dtype, want_y)) < 1
    dx = sm.softmax_backward(dy, y, axis=0)
    assert rel_err(dx, want_dx, float(np.max(np.abs(dy)))) < tolerance(dtype, 4, cond(x, 0))


# -- cross-entropy against torch -------------------------------------------------------------
REDUCTIONS = ("none", "mean", "sum")
TARGET_KINDS = ("index", "ignored", "probs")


def ce_case(kind, n, c, dtype, seed, weighted):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 2).astype(dtype)
    if kind == "probs":
        t = rng.gamma(0.5, size=(n, c)) + 1e-3
        t = (t / t.sum(axis=1, keepdims=True)).astype(dtype)
        t = t / t.sum(axis=1, keepdims=True, dtype=dtype)  # sums to 1 within rounding in dtype
    else:
        t = rng.integers(0, c, size=n)
        if kind == "ignored":
            t[::2] = -100 if n > 1 else t[0]
    w = rng.uniform(0.2, 2.0, c).astype(dtype) if weighted else None
    return x, t, w


def dloss_for(reduction, n, seed, dtype):
    if reduction == "none":
        return np.random.default_rng(seed + 7).standard_normal(n).astype(dtype)
    return 0.7


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_matches_torch_autograd(sm, reduction, ls, weighted, kind, dtype):
    n, c = 6, 5
    x, t, w = ce_case(kind, n, c, dtype, seed=10, weighted=weighted)
    dloss = dloss_for(reduction, n, 10, dtype)
    want_loss, want_dx = torch_ce(x, t, dloss, reduction, ls, -100, w)
    kw = dict(reduction=reduction, label_smoothing=ls, ignore_index=-100, weight=w)
    loss = sm.cross_entropy_forward(x, t, **kw)
    assert_array_of(loss, dtype, (n,) if reduction == "none" else ())
    tol = tolerance(dtype, n * c, cond(x))
    assert rel_err(loss, want_loss, max(float(np.max(np.abs(want_loss))), 1.0)) < tol
    dx = sm.cross_entropy_backward(dloss, x, t, **kw)
    assert_array_of(dx, dtype, x.shape)
    assert rel_err(dx, want_dx) < tol
    # the plain-NumPy formulas agree with torch (a check of the oracles themselves)
    assert rel_err(ref_cross_entropy(x, t, reduction, ls, -100, w), want_loss) < ORACLE_RTOL
    ref_dx = ref_cross_entropy_backward(dloss, x, t, reduction, ls, -100, w)
    assert rel_err(ref_dx, want_dx) < ORACLE_RTOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_1d_logits(sm, reduction, kind, dtype):
    c = 6
    x = logits((c,), dtype, seed=11)
    if kind == "index":
        t = np.array(4, dtype=np.int64)  # a 0-d integer target
    else:
        t = np.random.default_rng(11).dirichlet(np.ones(c)).astype(dtype)
        t = t / t.sum(dtype=dtype)
    dloss = np.array(-1.3, dtype) if reduction == "none" else 1.3
    want_loss, want_dx = torch_ce(x, t, dloss, reduction, 0.1, -100, None)
    kw = dict(reduction=reduction, label_smoothing=0.1)
    loss = sm.cross_entropy_forward(x, t, **kw)
    assert_array_of(loss, dtype, ())
    tol = tolerance(dtype, c, cond(x))
    assert rel_err(loss, want_loss) < tol
    dx = sm.cross_entropy_backward(dloss, x, t, **kw)
    assert_array_of(dx, dtype, (c,))
    assert rel_err(dx, want_dx) < tol


def test_cross_entropy_dloss_as_0d_array_or_float(sm):
    x, t, w = ce_case("index", 4, 3, np.float64, seed=12, weighted=True)
    a = sm.cross_entropy_backward(np.array(2.5), x, t, weight=w)
    b = sm.cross_entropy_backward(2.5, x, t, weight=w)
    _, want = torch_ce(x, t, 2.5, "mean", 0.0, -100, w)
    assert rel_err(a, want) < tolerance(np.float64, 12) and rel_err(b, want) < tolerance(
        np.float64, 12
    )


@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_ignore_index(sm, ls, weighted, reduction):
    """Rows whose target is ignore_index add nothing and get a zero gradient; "mean"
    divides by the weight of the rows kept. A custom ignore_index (3, a valid class)."""
    x, t, w = ce_case("index", 7, 5, np.float64, seed=13, weighted=weighted)
    t[[1, 4, 5]] = 3
    dloss = dloss_for(reduction, 7, 13, np.float64)
    want_loss, want_dx = torch_ce(x, t, dloss, reduction, ls, 3, w)
    kw = dict(reduction=reduction, label_smoothing=ls, ignore_index=3, weight=w)
    loss = sm.cross_entropy_forward(x, t, **kw)
    dx = sm.cross_entropy_backward(dloss, x, t, **kw)
    tol = tolerance(np.float64, 35, cond(x))
    assert rel_err(loss, want_loss) < tol and rel_err(dx, want_dx) < tol
    assert np.all(dx[t == 3] == 0)
    if reduction == "none":
        assert np.all(loss[t == 3] == 0)


@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_gpt2_vocabulary(sm, ls, dtype):
    x = logits((3, BIG_C), dtype, seed=14)
    t = np.array([17, BIG_C - 1, 0])
    want_loss, want_dx = torch_ce(x, t, 1.0, "mean", ls, -100, None)
    tol = tolerance(dtype, BIG_C, cond(x))
    loss = sm.cross_entropy_forward(x, t, label_smoothing=ls)
    assert rel_err(loss, want_loss) < tol
    dx = sm.cross_entropy_backward(1.0, x, t, label_smoothing=ls)
    assert rel_err(dx, want_dx) < tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_logits_of_1e4(sm, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, -1e4, 1e4]], dtype)
    t = np.array([1, 2, 0])  # row 0's target at -1e4: loss 2e4
    for ls in (0.0, 0.1):
        with warnings.catch_warnings(), np.errstate(**NO_WARNINGS):
            warnings.simplefilter("error")
            loss = sm.cross_entropy_forward(x, t, reduction="none", label_smoothing=ls)
            dx = sm.cross_entropy_backward(np.ones(3, dtype), x, t, "none", ls)
        assert np.isfinite(loss).all() and np.isfinite(dx).all()
        want_loss, want_dx = torch_ce(x, t, np.ones(3), "none", ls, -100, None)
        assert rel_err(dx, want_dx) < tolerance(dtype, 3)
        if ls:
            assert rel_err(loss, want_loss) < tolerance(dtype, 3)
        else:  # -log p_t, with the error of log_softmax at the target
            bound = log_softmax_bound(x, -1, dtype)[np.arange(3), t]
            assert elem_err(loss, want_loss, bound) < 1


@pytest.mark.parametrize("offset", [0.0, 1e4, -1e4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_accurate_far_from_zero(sm, offset, dtype):
    """Logits of order one plus an offset: the loss is -log_softmax at the target, whose
    error grows with |x_t - max(x)|, not with the offset (torch's is that small). All
    equal rows give log C."""
    x = (logits((4, 7), np.float64, seed=24) + offset).astype(dtype)
    t = np.array([0, 3, 6, 2])
    want_loss, _ = torch_ce(x, t, np.ones(4), "none", 0.0, -100, None)
    loss = sm.cross_entropy_forward(x, t, reduction="none")
    bound = log_softmax_bound(x, -1, dtype)[np.arange(4), t]
    assert elem_err(loss, want_loss, bound) < 1
    equal = np.full((3, 7), offset, dtype)
    loss = sm.cross_entropy_forward(equal, t[:3])
    assert abs(float(loss) - np.log(7)) <= EXACT_ULPS * eps_of(dtype) * np.log(7)


def test_cross_entropy_masked_non_target_class(sm):
    """A -inf logit that is not the target: probability 0, a finite loss, gradient 0
    there (without label smoothing, which would put mass on the masked class)."""
    for dtype in (np.float32, np.float64):
        x = np.array([[0.5, -np.inf, 1.0, 2.0], [-np.inf, 1.0, -np.inf, 0.0]], dtype)
        t = np.array([2, 3])
        for reduction in REDUCTIONS:
            dloss = np.array([0.5, 2.0], dtype) if reduction == "none" else 1.5
            want_loss, want_dx = torch_ce(x, t, dloss, reduction, 0.0, -100, None)
            loss = sm.cross_entropy_forward(x, t, reduction=reduction)
            dx = sm.cross_entropy_backward(dloss, x, t, reduction=reduction)
            assert np.isfinite(loss).all() and np.isfinite(dx).all()
            assert np.all(dx[np.isneginf(x)] == 0)
            assert rel_err(loss, want_loss) < tolerance(dtype, 8, 3.0)
            assert rel_err(dx, want_dx) < tolerance(dtype, 8, 3.0)


def test_cross_entropy_probability_target_zero_on_a_masked_class(sm):
    """Probability 0 on a -inf logit: 0 * log 0 counts 0, so the loss is finite (torch's
    sum of target * log_softmax gives 0 * -inf = nan there); its gradient is torch's."""
    x = np.array([[0.5, -np.inf, 1.0, 2.0], [0.0, 1.0, -np.inf, 3.0]])
    t = np.array([[0.0, 0.0, 1.0, 0.0], [0.25, 0.25, 0.0, 0.5]])
    loss = sm.cross_entropy_forward(x, t)
    assert np.isfinite(loss) and rel_err(loss, ref_cross_entropy(x, t)) < tolerance(np.float64, 8)
    _, want_dx = torch_ce(x, t, 1.0, "mean", 0.0, -100, None)
    dx = sm.cross_entropy_backward(1.0, x, t)
    assert np.all(dx[np.isneginf(x)] == 0)
    assert rel_err(dx, want_dx) < tolerance(np.float64, 8)


def test_cross_entropy_with_weight_on_a_masked_class_is_an_error(sm):
    """A target (or label smoothing) that gives weight to a -inf logit: the loss is
    infinite (torch returns inf), which the module reports instead of returning."""
    x = np.array([[0.5, 1.0, 2.0], [0.5, -np.inf, 2.0]])
    with pytest.raises(ValueError, match=r"logits.*row 1|row 1.*logits"):
        sm.cross_entropy_forward(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"logits.*row 1|row 1.*logits"):
        sm.cross_entropy_forward(x, np.array([0, 2]), label_smoothing=0.1)


def test_cross_entropy_int32_targets(sm):
    x, t, w = ce_case("index", 5, 4, np.float64, seed=15, weighted=False)
    want_loss, want_dx = torch_ce(x, t, 1.0, "sum", 0.0, -100, None)
    t32 = t.astype(np.int32)
    assert rel_err(sm.cross_entropy_forward(x, t32, "sum"), want_loss) < tolerance(np.float64, 20)
    got = sm.cross_entropy_backward(1.0, x, t32, "sum")
    assert rel_err(got, want_dx) < tolerance(np.float64, 20)


# -- plain NumPy formulas on hypothesis shapes; and the backends against each other ----------
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    axis_pick=st.integers(0, 2),
    negative=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_softmax_family_matches_plain_numpy_on_both_backends(
    shape, axis_pick, negative, dtype, seed
):
    shape = tuple(shape)
    axis = axis_pick % len(shape)
    if negative:
        axis -= len(shape)
    x, dy = logits(shape, dtype, seed), grad_out(shape, dtype, seed)
    n = shape[axis]
    tol = tolerance(dtype, n, cond(x, axis) + np.log(n))
    want_y, want_ly = ref_softmax(x, axis), ref_log_softmax(x, axis)
    for mod in both():
        y = mod.softmax_forward(x, axis=axis)
        assert_array_of(y, dtype, shape)
        assert elem_err(y, want_y, softmax_bound(x, axis, dtype, want_y)) < 1
        scale = float(np.max(want_y) * np.max(np.abs(dy)))
        assert (
            rel_err(
                mod.softmax_backward(dy, y, axis=axis), ref_softmax_backward(dy, y, axis), scale
            )
            < tol
        )
        ly = mod.log_softmax_forward(x, axis=axis)
        assert elem_err(ly, want_ly, log_softmax_bound(x, axis, dtype)) < 1
        scale = float(np.max(np.abs(dy))) * (1 + n)
        got = mod.log_softmax_backward(dy, ly, axis=axis)
        assert rel_err(got, ref_log_softmax_backward(dy, ly, axis), scale) < tol


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 7),
    kind=st.sampled_from(TARGET_KINDS),
    reduction=st.sampled_from(REDUCTIONS),
    ls=st.sampled_from([0.0, 0.1, 0.5]),
    weighted=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_cross_entropy_matches_plain_numpy_on_both_backends(
    n, c, kind, reduction, ls, weighted, dtype, seed
):
    x, t, w = ce_case(kind, n, c, dtype, seed, weighted)
    if kind == "ignored" and reduction == "mean" and np.all(t == -100):
        t[0] = 0  # "mean" over no rows is an error, tested below
    want = ref_cross_entropy(x, t, reduction, ls, -100, w)
    tol = tolerance(dtype, n * c, cond(x))
    dloss = dloss_for(reduction, n, seed, dtype)
    want_dx = ref_cross_entropy_backward(dloss, x, t, reduction, ls, -100, w)
    # the gradient's terms are dloss * w * p and dloss * w * q over the divisor: with one
    # class (or p = q) they cancel to 0, so measure against their size
    wmax = 1.0 if w is None else float(np.max(w))
    scale = float(np.max(np.abs(dloss))) * wmax / (n if reduction == "mean" else 1)
    scale = max(float(np.max(np.abs(want_dx))), scale)
    kw = dict(reduction=reduction, label_smoothing=ls, weight=w)
    for mod in both():
        loss = mod.cross_entropy_forward(x, t, **kw)
        assert rel_err(loss, want, max(float(np.max(np.abs(want))), 1.0)) < tol
        dx = mod.cross_entropy_backward(dloss, x, t, **kw)
        assert rel_err(dx, want_dx, scale) < tol


AGREE_CASES = [((4, 9), -1), ((3, 5, 2), 1), ((2, 3000), -1), ((1,), 0)]


@pytest.mark.parametrize(("shape", "axis"), AGREE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree(shape, axis, dtype):
    numba_mod, numpy_mod = both()
    x, dy = logits(shape, dtype, seed=16), grad_out(shape, dtype, seed=16)
    n = shape[axis]
    tol = BACKEND_ULPS * eps_of(dtype) * np.sqrt(n) * cond(x, axis)
    for f in ("softmax", "log_softmax"):
        a = getattr(numba_mod, f + "_forward")(x, axis=axis)
        b = getattr(numpy_mod, f + "_forward")(x, axis=axis)
        assert a.dtype == b.dtype == dtype
        assert rel_err(a, b, max(float(np.max(np.abs(b))), 1.0)) < tol
        da = getattr(numba_mod, f + "_backward")(dy, b, axis=axis)
        db = getattr(numpy_mod, f + "_backward")(dy, b, axis=axis)
        assert rel_err(da, db, float(np.max(np.abs(dy))) * (1 + n)) < tol
    if len(shape) == 2:
        t = np.arange(shape[0]) % shape[1]
        w = np.linspace(0.5, 1.5, shape[1]).astype(dtype)
        kw = dict(reduction="mean", label_smoothing=0.1, weight=w)
        a = numba_mod.cross_entropy_forward(x, t, **kw)
        b = numpy_mod.cross_entropy_forward(x, t, **kw)
        assert rel_err(a, b) < tol
        da = numba_mod.cross_entropy_backward(1.0, x, t, **kw)
        db = numpy_mod.cross_entropy_backward(1.0, x, t, **kw)
        assert rel_err(da, db) < tol


# -- oracle: central finite differences -------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 0])
def test_backwards_match_finite_differences(sm, axis):
    x = logits((3, 4, 5), np.float64, seed=17, scale=1.0)
    dy = grad_out(x.shape, np.float64, seed=17)
    y = sm.softmax_forward(x, axis=axis)
    want = numeric_grad(lambda v: ref_softmax(v, axis), x, dy, FD_STEP)
    assert rel_err(sm.softmax_backward(dy, y, axis=axis), want) < FD_RTOL
    ly = sm.log_softmax_forward(x, axis=axis)
    want = numeric_grad(lambda v: ref_log_softmax(v, axis), x, dy, FD_STEP)
    assert rel_err(sm.log_softmax_backward(dy, ly, axis=axis), want) < FD_RTOL


@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_backward_matches_finite_differences(sm, kind, weighted):
    x, t, w = ce_case(kind, 4, 5, np.float64, seed=18, weighted=weighted)
    for reduction in REDUCTIONS:
        dloss = dloss_for(reduction, 4, 18, np.float64)
        kw = dict(reduction=reduction, label_smoothing=0.1, weight=w)
        want = numeric_grad(
            lambda v, r=reduction: np.asarray(ref_cross_entropy(v, t, r, 0.1, -100, w)),
            x,
            dloss,
            FD_STEP,
        )
        assert rel_err(sm.cross_entropy_backward(dloss, x, t, **kw), want) < FD_RTOL


# -- bad input: ValueError naming the argument --------------------------------------------------
def test_an_all_minus_inf_row_is_an_error(sm):
    x = np.array([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    with pytest.raises(ValueError, match=r"\bx\b.*row 1|row 1.*\bx\b"):
        sm.softmax_forward(x)
    with pytest.raises(ValueError, match=r"\bx\b.*row 1|row 1.*\bx\b"):
        sm.log_softmax_forward(x)
    with pytest.raises(ValueError, match=r"logits.*row 1|row 1.*logits"):
        sm.cross_entropy_forward(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"logits.*row 1|row 1.*logits"):
        sm.cross_entropy_backward(1.0, x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.softmax_forward(np.full(4, -np.inf))


def test_nan_inputs_are_errors(sm):
    x = logits((3, 4), np.float64, seed=19)
    y = ref_softmax(x)
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.softmax_forward(bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.log_softmax_forward(bad)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        sm.softmax_backward(bad, y)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        sm.log_softmax_backward(bad, np.log(y))
    bad_y = y.copy()
    bad_y[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\by\b"):
        sm.softmax_backward(x, bad_y)
    with pytest.raises(ValueError, match=r"\by\b"):
        sm.log_softmax_backward(x, bad_y)
    t = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="logits"):
        sm.cross_entropy_forward(bad, t)
    with pytest.raises(ValueError, match="logits"):
        sm.cross_entropy_backward(1.0, bad, t)
    bad_t = y.copy()
    bad_t[2, 1] = np.nan
    with pytest.raises(ValueError, match="target"):
        sm.cross_entropy_forward(x, bad_t)
    with pytest.raises(ValueError, match="target"):
        sm.cross_entropy_backward(1.0, x, bad_t)
    with pytest.raises(ValueError, match="weight"):
        sm.cross_entropy_forward(x, t, weight=np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match="dloss"):
        sm.cross_entropy_backward(np.nan, x, t)
    with pytest.raises(ValueError, match="dloss"):
        sm.cross_entropy_backward(np.array([1.0, np.nan, 1.0]), x, t, reduction="none")


def test_plus_inf_is_an_error(sm):
    x = np.array([[0.0, np.inf, 1.0]])
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.softmax_forward(x)
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.log_softmax_forward(x)
    with pytest.raises(ValueError, match="logits"):
        sm.cross_entropy_forward(x, np.array([0]))


def test_class_index_out_of_range_is_an_error(sm):
    x = logits((3, 4), np.float64, seed=20)
    for t in ([0, 4, 1], [0, -1, 1], [0, 1, 7]):
        with pytest.raises(ValueError, match="target"):
            sm.cross_entropy_forward(x, np.array(t))
        with pytest.raises(ValueError, match="target"):
            sm.cross_entropy_backward(1.0, x, np.array(t))
    with pytest.raises(ValueError, match="target"):
        sm.cross_entropy_forward(x[0], np.array(4))


def test_probability_rows_must_sum_to_one(sm):
    x = logits((3, 4), np.float64, seed=21)
    t = np.array([[0.25, 0.25, 0.25, 0.25], [0.5, 0.4, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"target.*row 1|row 1.*target"):
        sm.cross_entropy_forward(x, t)
    with pytest.raises(ValueError, match=r"target.*row 1|row 1.*target"):
        sm.cross_entropy_backward(1.0, x, t)
    # float32 targets normalised in float32 sum to 1 only within rounding: accepted
    rng = np.random.default_rng(21)
    x32 = logits((4, 1000), np.float32, seed=21)
    t32 = rng.uniform(size=(4, 1000)).astype(np.float32)
    t32 /= t32.sum(axis=1, keepdims=True, dtype=np.float32)
    want, want_dx = torch_ce(x32, t32, 1.0, "mean", 0.0, -100, None)
    assert rel_err(sm.cross_entropy_forward(x32, t32), want) < tolerance(
        np.float32, 4000, cond(x32)
    )
    got = sm.cross_entropy_backward(1.0, x32, t32)
    assert rel_err(got, want_dx) < tolerance(np.float32, 4000, cond(x32))


def test_bad_options_are_errors(sm):
    x = logits((3, 4), np.float64, seed=22)
    t = np.array([0, 1, 2])
    for bad in ("avg", "Mean", None):
        with pytest.raises(ValueError, match="reduction"):
            sm.cross_entropy_forward(x, t, reduction=bad)
        with pytest.raises(ValueError, match="reduction"):
            sm.cross_entropy_backward(1.0, x, t, reduction=bad)
    for bad in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="label_smoothing"):
            sm.cross_entropy_forward(x, t, label_smoothing=bad)
        with pytest.raises(ValueError, match="label_smoothing"):
            sm.cross_entropy_backward(1.0, x, t, label_smoothing=bad)


def test_mean_over_no_rows_is_an_error(sm):
    x = logits((3, 4), np.float64, seed=23)
    t = np.array([-100, -100, -100])
    with pytest.raises(ValueError, match="target|ignore_index|reduction"):
        sm.cross_entropy_forward(x, t)
    with pytest.raises(ValueError, match="target|ignore_index|reduction"):
        sm.cross_entropy_backward(1.0, x, t)
    # "sum" and "none" over no rows are zeros, as torch gives
    assert float(sm.cross_entropy_forward(x, t, reduction="sum")) == 0.0
    assert np.all(sm.cross_entropy_backward(np.ones(3), x, t, reduction="none") == 0)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.complex128, bool])
def test_other_dtypes_are_errors(sm, dtype):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    y = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.softmax_forward(x)
    with pytest.raises(ValueError, match=r"\bx\b"):
        sm.log_softmax_forward(x)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        sm.softmax_backward(x, y)
    with pytest.raises(ValueError, match=r"\by\b"):
        sm.softmax_backward(y, x)
    with pytest.raises(ValueError, match="logits"):
        sm.cross_entropy_forward(x, np.array([0, 1, 2]))


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_an_ignored_row_may_hold_masks_whatever_the_smoothing(sm, ls):
    """An ignore_index row's loss is 0: its -inf logits are not refused, as torch's."""
    x = np.array([[-np.inf, 1.0, 2.0], [0.5, 0.2, -1.0]])
    target = np.array([-100, 1])
    want = F.cross_entropy(t64(x), torch.tensor(target), label_smoothing=ls).item()
    assert sm.cross_entropy_forward(x, target, label_smoothing=ls) == pytest.approx(want)
    dx = sm.cross_entropy_backward(1.0, x, target, label_smoothing=ls)
    np.testing.assert_array_equal(dx[0], 0.0)
    # the same mask in a row that counts, with smoothing, makes the loss infinite
    if ls:
        with pytest.raises(ValueError, match=r"logits: row 0 masks class 0 \(-inf\)"):
            sm.cross_entropy_forward(x, np.array([2, 1]), label_smoothing=ls)


@pytest.mark.parametrize("scale", [1e-40, 1e-46, 1e39])
def test_weights_are_taken_in_the_logits_dtype_on_both_paths(scale):
    """float32 logits: weights rounded to float32 first (torch requires them so), so
    both paths agree where a weight is subnormal, underflows or overflows there."""
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], np.float32)
    target = np.array([0, 2])
    weight = np.full(3, scale)
    outcomes = []
    for module in both():
        try:
            outcomes.append(float(module.cross_entropy_forward(x, target, weight=weight)))
        except ValueError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]
    if scale == 1e-40:  # subnormal in float32, all equal: the mean is the unweighted loss
        want = F.cross_entropy(torch.from_numpy(x).double(), torch.tensor(target)).item()
        assert outcomes[0] == pytest.approx(want, rel=1e-6)
    elif scale == 1e-46:
        assert "weights sum to 0" in outcomes[0]
    else:
        assert "weight: expected finite values in the logits' dtype float32" in outcomes[0]


def test_a_log_probability_below_the_dtype_is_an_overflow_not_minus_inf(sm):
    """float32 logits 3e38 and -3e38: log-softmax -6e38 does not fit (an error, never a
    silent -inf, which would read as a mask); softmax's 0 does, without warnings."""
    x = np.array([3e38, -3e38], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="y: the result overflows float32"):
            sm.log_softmax_forward(x)
        np.testing.assert_array_equal(sm.softmax_forward(x), [1.0, 0.0])
        np.testing.assert_array_equal(sm.log_softmax_forward(np.array([3e38, -3e38])), [0, -6e38])
        masked = sm.log_softmax_forward(np.array([0.0, -np.inf], np.float32))
        np.testing.assert_array_equal(masked, [0.0, -np.inf])


# Element-wise error of dlogits = g (p Σa − a): a few ulps of each of the two terms'
# magnitudes, widened by the rounding of x − c (absolute eps·(|x| + |c|), relative in
# exp) and of the row sum (√C eps relative): measured worst 0.97 in float32 and 1.6 in
# float64 (numba path), 0.5 and 0.75 (NumPy path).
CE_ELEM_ULPS = 4.0


@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_gradient_is_close_element_by_element(sm, ls, weighted, kind, dtype):
    """Not only relative to the largest entry: the class element p − 1 of a confident row,
    and every small entry, each within its own bound."""
    n, c = 8, 300
    x, t, w = ce_case(kind, n, c, dtype, seed=3, weighted=weighted)
    x[0, :] *= 4  # a confident row: its class element p - 1 cancels
    if kind != "probs":
        t[0] = int(np.argmax(x[0]))
    kw = dict(reduction="sum", label_smoothing=ls, weight=w)
    dx = sm.cross_entropy_backward(1.0, x, t, **kw)
    want = ref_cross_entropy_backward(1.0, x, t, "sum", ls, -100, w)
    x64 = np.asarray(x, np.float64)
    a, _ = ref_ce_weights(n, c, t, ls, -100, w)
    shift = x64.max(axis=1, keepdims=True)
    sums = ref_softmax(x64) * np.sum(a, axis=1, keepdims=True)  # the terms p Σa and a
    bound = eps_of(dtype) * (sums * (np.sqrt(c) + np.abs(x64) + np.abs(shift)) + a) + 1e-300
    assert elem_err(dx, want, CE_ELEM_ULPS * bound) <= 1.0
    # the bound bites: 1% off on the smallest probability's entry is refused
    off = dx.copy()
    j = int(np.argmin(x64[0]))
    off[0, j] *= 1.01
    assert elem_err(off, want, CE_ELEM_ULPS * bound) > 1.0
