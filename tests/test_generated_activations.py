"""derive.generated.activations (GELU with the tanh approximation, SiLU, and the
backwards of sigmoid and tanh) against oracles that share no code with it, on both
backends (the numba kernels and the NumPy path).

Oracles: PyTorch (autograd through F.gelu(approximate="tanh") and F.silu in float64,
and the native backward kernels torch.ops.aten.gelu_backward, silu_backward,
sigmoid_backward and tanh_backward), plain-NumPy formulas written here (GPT-2's GELU),
and central finite differences in float64.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKENDS, eps_of, load_generated
from hypothesis import given, settings
from hypothesis import strategies as st

# Elementwise formulas of a handful of roundings each, compared per element: 64 ulps of
# the result covers every rounding with margin and rejects any wrong term.
ULPS = 64
# Where a formula's terms cancel (0.5 x (1 + tanh u) for x < 0, 1 + x (1 - sigmoid(x))
# near x = -1.28, 1 - y^2 near |y| = 1) the rounding error is ULPS ulps of the terms,
# not of the result: each bound below is ULPS ulps times the size of the terms.
#
# central differences with step FD_STEP: truncation O(h^2 f''') ~ 1e-10 and rounding
# O(eps64 / h) ~ 1e-11 for inputs of order one; 1e-7 relative leaves a wide margin.
FD_STEP = 1e-5
FD_RTOL = 1e-7
# the backends run the same formulas in a different order of operations (fused loops
# against NumPy ufuncs, possibly different exp/tanh): a few ulps of the terms.
BACKEND_ULPS = 16
# overflow, invalid and divide-by-zero raise; underflow is the right answer (exp of
# -2e4 is 0) and stays quiet, as it is by default
NO_WARNINGS = dict(all="raise", under="ignore")
EXAMPLES = 20
# tanh(u) rounds to +-1 for u beyond about 9 in float32 and 19 in float64; from there
# 1 - tanh(u)^2 is 0 exactly, and no term of GELU's derivative is rounded noise
TANH_ROUNDS_TO_ONE = {np.dtype(np.float32): 10.0, np.dtype(np.float64): 20.0}
# beyond |x| = 10, u = c (x + 0.044715 x^3) > 35: GELU is x or 0, its terms exact
GELU_SATURATED = 10.0
# an oracle at the exact y, ours at y rounded to dtype: y (1 - y) and 1 - y^2 move by at
# most a couple of ulps of 1, times |dy|
ROUNDED_Y_ULPS = 4
MANY = 100_000
TORCH_SILU_OVERFLOW = -float(np.log(np.finfo(np.float64).max))  # about -709.8
SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))
KAPPA = 0.044715
HUGE = [-1e4, -1e3, -100.0, -89.0, -20.0, -1.0, 0.0, 1.0, 20.0, 89.0, 100.0, 1e3, 1e4]


@functools.cache
def _module(backend):
    return load_generated("activations", backend)


@pytest.fixture(scope="module", params=BACKENDS)
def act(request):
    return _module(request.param)


def both():
    return [_module(b) for b in BACKENDS]


def elem_err(got, want, bound):
    """max over elements of |got - want| / bound; inf for a NaN or an infinity."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if not np.isfinite(got).all():
        return float("inf")
    return float(np.max(np.abs(got - want) / bound, initial=0.0))


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def floor(dtype):
    """Results below float's smallest normal may be flushed or rounded to subnormals."""
    return float(np.finfo(dtype).tiny)


# -- plain NumPy formulas (GPT-2 / llm.c's gelu; x * sigmoid(x)) ---------------------------
def ref_gelu(x):
    x = np.asarray(x, np.float64)
    t = np.tanh(SQRT_2_OVER_PI * (x + KAPPA * x**3))
    return 0.5 * x * (1 + t)


def ref_gelu_backward(dy, x):
    x = np.asarray(x, np.float64)
    t = np.tanh(SQRT_2_OVER_PI * (x + KAPPA * x**3))
    du = SQRT_2_OVER_PI * (1 + 3 * KAPPA * x**2)
    return np.asarray(dy, np.float64) * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)


def ref_sigmoid(x):
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def ref_silu(x):
    return np.asarray(x, np.float64) * ref_sigmoid(x)


def ref_silu_backward(dy, x):
    x = np.asarray(x, np.float64)
    s = ref_sigmoid(x)
    return np.asarray(dy, np.float64) * s * (1 + x * (1 - s))


# -- error bounds: ULPS ulps of the terms each formula adds ---------------------------------
def gelu_bound(x, dtype, want):
    # 0.5 x + 0.5 x tanh(u): terms of size |x|, cancelling for x < 0
    x = np.abs(np.asarray(x, np.float64))
    return ULPS * eps_of(dtype) * (np.abs(want) + np.minimum(x, GELU_SATURATED)) + floor(dtype)


def gelu_backward_bound(dy, x, dtype, want):
    # 0.5 (1 + t) + 0.5 x (1 - t^2) u': 1 - t^2 is off by eps absolute until tanh
    # rounds to +-1 (|u| > 9 in float32, 19 in float64), times 0.5 |x| u'
    x = np.abs(np.asarray(x, np.float64))
    du = SQRT_2_OVER_PI * (1 + 3 * KAPPA * x**2)
    u = SQRT_2_OVER_PI * (x + KAPPA * x**3)
    live = u < TANH_ROUNDS_TO_ONE[np.dtype(dtype)]
    terms = 1 + np.where(live, x * du, 0.0)
    return ULPS * eps_of(dtype) * (np.abs(want) + np.abs(dy) * terms) + floor(dtype)


def silu_bound(x, dtype, want):
    return ULPS * eps_of(dtype) * np.abs(want) + floor(dtype)


def silu_backward_bound(dy, x, dtype, want):
    # s (1 + x (1 - s)): terms s and s |x| (1 - s)
    x = np.asarray(x, np.float64)
    s = ref_sigmoid(x)
    terms = s * (1 + np.abs(x) * (1 - s))
    return ULPS * eps_of(dtype) * (np.abs(want) + np.abs(dy) * terms) + floor(dtype)


def sigmoid_backward_bound(dy, y, dtype, want):
    return ULPS * eps_of(dtype) * np.abs(want) + floor(dtype)


def tanh_backward_bound(dy, y, dtype, want):
    # 1 - y^2: terms 1 and y^2
    y = np.asarray(y, np.float64)
    return ULPS * eps_of(dtype) * (np.abs(want) + np.abs(dy) * y * y) + floor(dtype)


def elementwise_cases(x, dy, dtype):
    """(function, arguments, plain-NumPy result, error bound) for each function; the
    backwards of sigmoid and tanh at y = sigmoid(x), tanh(x) rounded to dtype."""
    y_s = ref_sigmoid(x).astype(dtype)
    y_t = np.tanh(np.asarray(x, np.float64)).astype(dtype)
    d64, s64, th64 = (np.asarray(a, np.float64) for a in (dy, y_s, y_t))
    g, dg = ref_gelu(x), ref_gelu_backward(dy, x)
    s, ds = ref_silu(x), ref_silu_backward(dy, x)
    dsig, dtanh = d64 * s64 * (1 - s64), d64 * (1 - th64 * th64)
    return [
        ("gelu_forward", (x,), g, gelu_bound(x, dtype, g)),
        ("gelu_backward", (dy, x), dg, gelu_backward_bound(dy, x, dtype, dg)),
        ("silu_forward", (x,), s, silu_bound(x, dtype, s)),
        ("silu_backward", (dy, x), ds, silu_backward_bound(dy, x, dtype, ds)),
        ("sigmoid_backward", (dy, y_s), dsig, sigmoid_backward_bound(dy, y_s, dtype, dsig)),
        ("tanh_backward", (dy, y_t), dtanh, tanh_backward_bound(dy, y_t, dtype, dtanh)),
    ]


def inputs(shape, dtype, seed, spread=False):
    """x of order one, or (spread) of scales from 1e-3 to 3e3; dy of order one."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    if spread:
        x = rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3.5, shape)
    dy = rng.standard_normal(shape)
    return x.astype(dtype), dy.astype(dtype)


# -- against torch ---------------------------------------------------------------------------
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 3, 2, 5), (1,), (4, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_matches_torch_autograd(act, shape, dtype):
    x, dy = inputs(shape, dtype, seed=1)
    tx = t64(x, grad=True)
    ty = F.gelu(tx, approximate="tanh")
    ty.backward(t64(dy))
    want_y, want_dx = ty.detach().numpy(), tx.grad.numpy()
    y = act.gelu_forward(x)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == shape
    assert elem_err(y, want_y, gelu_bound(x, dtype, want_y)) < 1
    assert np.array_equal(act.gelu_forward(x, approximate="tanh"), y)
    dx = act.gelu_backward(dy, x)
    assert dx.dtype == dtype and dx.shape == shape
    assert elem_err(dx, want_dx, gelu_backward_bound(dy, x, dtype, want_dx)) < 1
    assert np.array_equal(act.gelu_backward(dy, x, approximate="tanh"), dx)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_matches_torch_autograd(act, shape, dtype):
    x, dy = inputs(shape, dtype, seed=2)
    tx = t64(x, grad=True)
    ty = F.silu(tx)
    ty.backward(t64(dy))
    want_y, want_dx = ty.detach().numpy(), tx.grad.numpy()
    y = act.silu_forward(x)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == shape
    assert elem_err(y, want_y, silu_bound(x, dtype, want_y)) < 1
    dx = act.silu_backward(dy, x)
    assert dx.dtype == dtype and dx.shape == shape
    assert elem_err(dx, want_dx, silu_backward_bound(dy, x, dtype, want_dx)) < 1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_backward_match_torch_autograd(act, shape, dtype):
    z, dy = inputs(shape, dtype, seed=3)
    tz = t64(z, grad=True)
    ts = torch.sigmoid(tz)
    ts.backward(t64(dy))
    y = ts.detach().numpy().astype(dtype)
    dx = act.sigmoid_backward(dy, y)
    assert dx.dtype == dtype and dx.shape == shape
    # autograd's gradient is at the exact sigmoid; ours at its rounding to dtype, which
    # moves y (1 - y) by ulps of y and 1 - y
    want = tz.grad.numpy()
    bound = sigmoid_backward_bound(dy, y, dtype, want) + ROUNDED_Y_ULPS * eps_of(dtype) * np.abs(dy)
    assert elem_err(dx, want, bound) < 1
    tz.grad = None
    tt = torch.tanh(tz)
    tt.backward(t64(dy))
    y = tt.detach().numpy().astype(dtype)
    dx = act.tanh_backward(dy, y)
    assert dx.dtype == dtype and dx.shape == shape
    want = tz.grad.numpy()
    bound = tanh_backward_bound(dy, y, dtype, want) + ROUNDED_Y_ULPS * eps_of(dtype) * np.abs(dy)
    assert elem_err(dx, want, bound) < 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_values_of_every_scale_match_native_kernels(act, dtype):
    """1e5 values of scales 1e-3 to 3e3, against torch's backward kernels in float64 on
    the same values."""
    x, dy = inputs((MANY,), dtype, seed=4, spread=True)
    tx, tdy = t64(x), t64(dy)
    want = F.gelu(tx, approximate="tanh").numpy()
    assert elem_err(act.gelu_forward(x), want, gelu_bound(x, dtype, want)) < 1
    want = torch.ops.aten.gelu_backward(tdy, tx, approximate="tanh").numpy()
    got = act.gelu_backward(dy, x)
    assert elem_err(got, want, gelu_backward_bound(dy, x, dtype, want)) < 1
    # torch's x / (1 + exp(-x)) overflows exp in float64 below -709 and returns -0 for
    # what is about x exp(x) ~ 1e-306: there the plain formula is the oracle
    lost = x < TORCH_SILU_OVERFLOW
    want = np.where(lost, ref_silu(x), F.silu(tx).numpy())
    assert elem_err(act.silu_forward(x), want, silu_bound(x, dtype, want)) < 1
    want = torch.ops.aten.silu_backward(tdy, tx).numpy()
    want = np.where(lost, ref_silu_backward(dy, x), want)
    got = act.silu_backward(dy, x)
    assert elem_err(got, want, silu_backward_bound(dy, x, dtype, want)) < 1
    y = torch.sigmoid(tx).numpy().astype(dtype)
    want = torch.ops.aten.sigmoid_backward(tdy, t64(y)).numpy()
    got = act.sigmoid_backward(dy, y)
    assert elem_err(got, want, sigmoid_backward_bound(dy, y, dtype, want)) < 1
    y = torch.tanh(tx).numpy().astype(dtype)
    want = torch.ops.aten.tanh_backward(tdy, t64(y)).numpy()
    got = act.tanh_backward(dy, y)
    assert elem_err(got, want, tanh_backward_bound(dy, y, dtype, want)) < 1


def test_multidimensional_and_non_contiguous_inputs(act):
    x, dy = inputs((4, 3, 5), np.float64, seed=5)
    xt, dyt = x.transpose(2, 0, 1), dy.transpose(2, 0, 1)  # views, not C-contiguous
    assert not xt.flags.c_contiguous
    f64 = np.float64
    for name, args, want, bound in elementwise_cases(xt, dyt, f64):
        got = getattr(act, name)(*args)
        assert isinstance(got, np.ndarray) and got.shape == xt.shape, name
        assert elem_err(got, want, bound) < 1, name


def test_zero_dimensional_input(act):
    for name, args, want, bound in elementwise_cases(np.array(0.7), np.array(-1.5), np.float64):
        got = getattr(act, name)(*args)
        assert np.shape(got) == (), name
        assert elem_err(got, want, bound) < 1, name


# -- stress: huge inputs, finite results, no warnings -----------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_inputs_give_finite_results_without_warnings(act, dtype):
    x = np.array(HUGE, dtype)
    dy = np.ones_like(x)
    with warnings.catch_warnings(), np.errstate(**NO_WARNINGS):
        warnings.simplefilter("error")
        results = {
            "gelu": act.gelu_forward(x),
            "dgelu": act.gelu_backward(dy, x),
            "silu": act.silu_forward(x),
            "dsilu": act.silu_backward(dy, x),
        }
    for name, r in results.items():
        assert r.dtype == dtype and np.isfinite(r).all(), (name, r)
    tx = t64(x)
    wants = {
        "gelu": F.gelu(tx, approximate="tanh").numpy(),
        "dgelu": torch.ops.aten.gelu_backward(t64(dy), tx, approximate="tanh").numpy(),
        "silu": F.silu(tx).numpy(),
        "dsilu": torch.ops.aten.silu_backward(t64(dy), tx).numpy(),
    }
    bounds = {
        "gelu": gelu_bound(x, dtype, wants["gelu"]),
        "dgelu": gelu_backward_bound(dy, x, dtype, wants["dgelu"]),
        "silu": silu_bound(x, dtype, wants["silu"]),
        "dsilu": silu_backward_bound(dy, x, dtype, wants["dsilu"]),
    }
    for name, r in results.items():
        assert elem_err(r, wants[name], bounds[name]) < 1, name
    # the limits exactly: gelu and silu are x for x >> 0 and 0 for x << 0
    big = np.abs(x) >= 1e3
    pos, neg = big & (x > 0), big & (x < 0)
    for name in ("gelu", "silu"):
        assert np.all(results[name][pos] == x[pos]) and np.all(results[name][neg] == 0), name
    for name in ("dgelu", "dsilu"):
        assert np.all(results[name][pos] == 1) and np.all(results[name][neg] == 0), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_backward_at_saturation(act, dtype):
    y = np.array([0.0, 1.0, 0.5, 1e-30, 1 - eps_of(dtype)], dtype)
    dy = np.full_like(y, 3.0)
    with warnings.catch_warnings(), np.errstate(**NO_WARNINGS):
        warnings.simplefilter("error")
        ds = act.sigmoid_backward(dy, y)
        t = np.array([-1.0, 1.0, 0.0, 0.5, -(1 - eps_of(dtype))], dtype)
        dt = act.tanh_backward(dy, t)
    want = torch.ops.aten.sigmoid_backward(t64(dy), t64(y)).numpy()
    assert ds[0] == 0 and ds[1] == 0 and ds[2] == 0.75
    assert elem_err(ds, want, sigmoid_backward_bound(dy, y, dtype, want)) < 1
    want = torch.ops.aten.tanh_backward(t64(dy), t64(t)).numpy()
    assert dt[0] == 0 and dt[1] == 0 and dt[2] == 3.0
    assert elem_err(dt, want, tanh_backward_bound(dy, t, dtype, want)) < 1


# -- plain NumPy formulas on hypothesis shapes; the backends against each other --------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    dtype=st.sampled_from([np.float32, np.float64]),
    spread=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_activations_match_plain_numpy_on_both_backends(shape, dtype, spread, seed):
    shape = tuple(shape)
    x, dy = inputs(shape, dtype, seed, spread)
    cases = elementwise_cases(x, dy, dtype)
    for mod in both():
        for name, args, want, bound in cases:
            got = getattr(mod, name)(*args)
            assert got.dtype == dtype and got.shape == shape, name
            assert elem_err(got, want, bound) < 1, name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree(dtype):
    numba_mod, numpy_mod = both()
    x, dy = inputs((50, 40), dtype, seed=6, spread=True)
    x.ravel()[: len(HUGE)] = HUGE  # with the extremes among them
    y_s = ref_sigmoid(x).astype(dtype)
    y_t = np.tanh(x.astype(np.float64)).astype(dtype)
    e = BACKEND_ULPS * eps_of(dtype)
    ax, ady = np.abs(x.astype(np.float64)), np.abs(dy.astype(np.float64))
    pairs = [
        ("gelu_forward", (x,), np.minimum(ax, GELU_SATURATED)),
        ("gelu_backward", (dy, x), ady * (1 + np.minimum(ax, GELU_SATURATED) ** 3)),
        ("silu_forward", (x,), 0.0),
        ("silu_backward", (dy, x), ady * (1 + np.minimum(ax, GELU_SATURATED))),
        ("sigmoid_backward", (dy, y_s), 0.0),
        ("tanh_backward", (dy, y_t), ady),
    ]
    for name, args, terms in pairs:
        a = getattr(numba_mod, name)(*args)
        b = getattr(numpy_mod, name)(*args)
        assert a.dtype == b.dtype == dtype, name
        bound = e * (np.abs(b.astype(np.float64)) + terms) + floor(dtype)
        assert elem_err(a, b, bound) < 1, name


# -- oracle: central finite differences ---------------------------------------------------------
def test_backwards_match_finite_differences(act):
    x, dy = inputs((3, 7), np.float64, seed=7)
    x = np.concatenate([x, np.array([[-3.0, -1.28, -0.5, 0.0, 0.5, 1.28, 3.0]])])
    dy = np.concatenate([dy, np.ones((1, 7))])
    for fwd, bwd in ((act.gelu_forward, act.gelu_backward), (act.silu_forward, act.silu_backward)):
        numeric = dy * (fwd(x + FD_STEP) - fwd(x - FD_STEP)) / (2 * FD_STEP)
        got = bwd(dy, x)
        assert np.max(np.abs(got - numeric)) / np.max(np.abs(numeric)) < FD_RTOL
    for fwd, bwd in ((ref_sigmoid, act.sigmoid_backward), (np.tanh, act.tanh_backward)):
        numeric = dy * (fwd(x + FD_STEP) - fwd(x - FD_STEP)) / (2 * FD_STEP)
        got = bwd(dy, fwd(x))
        assert np.max(np.abs(got - numeric)) / np.max(np.abs(numeric)) < FD_RTOL


# -- bad input: ValueError naming the argument ---------------------------------------------------
def test_nan_inputs_are_errors(act):
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    bad = x.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.gelu_forward(bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.silu_forward(bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.gelu_backward(x, bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.silu_backward(x, bad)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        act.gelu_backward(bad, x)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        act.silu_backward(bad, x)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        act.sigmoid_backward(bad, x)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        act.tanh_backward(bad, x)
    with pytest.raises(ValueError, match=r"\by\b"):
        act.sigmoid_backward(x, bad)
    with pytest.raises(ValueError, match=r"\by\b"):
        act.tanh_backward(x, bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.gelu_forward(np.float32([1.0, np.nan]))


@pytest.mark.parametrize("approximate", ["none", "erf", "", None])
def test_gelu_other_approximations_are_errors(act, approximate):
    x = np.array([0.5, -1.0])
    with pytest.raises(ValueError, match="approximate"):
        act.gelu_forward(x, approximate=approximate)
    with pytest.raises(ValueError, match="approximate"):
        act.gelu_backward(x, x, approximate=approximate)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.complex128, bool])
def test_other_dtypes_are_errors(act, dtype):
    bad = np.arange(4).reshape(2, 2).astype(dtype)
    good = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.gelu_forward(bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.silu_forward(bad)
    with pytest.raises(ValueError, match=r"\bx\b"):
        act.gelu_backward(good, bad)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        act.silu_backward(bad, good)
    with pytest.raises(ValueError, match=r"\by\b"):
        act.sigmoid_backward(good, bad)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        act.tanh_backward(bad, good)
