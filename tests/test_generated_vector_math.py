"""The exp, tanh and sigmoid the fused kernels call (derive/templates/_common.py.j2,
vector_math), against NumPy's long double: errors in ulps, subnormal results, the
special values. numba's np.exp is not used in the kernels, so these are the functions
every fused softmax and activation result goes through."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_generated

# Oracle: np.exp/np.tanh in x86 long double (64-bit significand), 11 bits beyond float64.
# exp: Cody-Waite reduction and a Taylor polynomial, 0.5 ulp of final rounding plus
# under 0.4 of reduction and truncation (measured 0.87 in float64, 0.91 in float32).
EXP_ULPS = 1.0
# tanh: 1 - 2/(e^{2|u|} + 1) for |u| >= 1/4 loses about two bits just above 1/4
# (measured 5.2 float64, 4.9 float32); the series below is within 1.
TANH_ULPS = 6.0
# sigmoid: 1/(1 + e) or e/(1 + e) with e = exp(-|x|): two roundings after exp
# (measured 2.7).
SIGMOID_ULPS = 3.0
RANGES = {np.float64: (-745.2, 709.78), np.float32: (-104.0, 88.72)}
SUBNORMAL_BELOW = {np.float64: -708.4, np.float32: -87.3}  # exp is subnormal below


@pytest.fixture(scope="module", params=["plain", "kernel-flags"])
def run(request):
    """Each function in a compiled loop: plainly, and under the fused kernels' own
    fastmath flags (reassoc, contract), into which the helpers are inlined."""
    module = load_generated("activations", "numba")  # skips without numba, fails in CI
    import numba

    ev, tv, sv = module._exp_vector, module._tanh_vector, module._sigmoid_vector
    flags = module._FASTMATH if request.param == "kernel-flags" else set()
    assert request.param == "plain" or flags == {"reassoc", "contract"}

    @numba.njit(fastmath=flags)
    def loop(x, which, out):
        for i in range(x.shape[0]):
            if which == 0:
                out[i] = ev(x[i])
            elif which == 1:
                out[i] = tv(x[i])
            else:
                out[i] = sv(x[i])

    def call(name, x):
        out = np.empty_like(x)
        loop(x, ("exp", "tanh", "sigmoid").index(name), out)
        assert out.dtype == x.dtype
        return out

    return call


def ulps(got, exact, dtype):
    """|got - exact| in units of the last place of exact rounded to dtype (subnormal
    spacing below the normal range)."""
    spacing = np.spacing(np.abs(exact.astype(dtype))).astype(np.longdouble)
    spacing = np.maximum(spacing, np.finfo(dtype).smallest_subnormal)
    return np.abs(got.astype(np.longdouble) - exact) / spacing


DTYPES = (np.float64, np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_exp_is_within_one_ulp_over_its_whole_range(run, dtype):
    lo, hi = RANGES[dtype]
    x = np.concatenate(
        [np.linspace(lo, hi, 400_001), np.random.default_rng(0).uniform(-3, 3, 100_000)]
    ).astype(dtype)
    err = ulps(run("exp", x), np.exp(x.astype(np.longdouble)), dtype)
    assert err.max() <= EXP_ULPS, x[np.argmax(err)]
    sub = x < SUBNORMAL_BELOW[dtype]
    assert sub.sum() > 1000  # the subnormal results are in the sweep
    assert (run("exp", x[sub]) > 0).any()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_tanh_and_sigmoid_are_within_a_few_ulps(run, dtype):
    small = np.geomspace(1e-30, 1.0, 20_000)
    x = np.concatenate([np.linspace(-25, 25, 400_001), small, -small]).astype(dtype)
    exact = x.astype(np.longdouble)
    err = ulps(run("tanh", x), np.tanh(exact), dtype)
    assert err.max() <= TANH_ULPS, x[np.argmax(err)]
    err = ulps(run("sigmoid", x), 1 / (1 + np.exp(-exact)), dtype)
    assert err.max() <= SIGMOID_ULPS, x[np.argmax(err)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_special_values(run, dtype):
    x = np.array([np.inf, -np.inf, np.nan, 1e4, -1e4, 0.0, -0.0], dtype)
    with np.errstate(all="raise"):  # the reference: no overflow warnings either
        np.testing.assert_array_equal(run("exp", x), [np.inf, 0, np.nan, np.inf, 0, 1, 1])
        tanh = run("tanh", x)
        np.testing.assert_array_equal(tanh, [1, -1, np.nan, 1, -1, 0, 0])
        assert np.signbit(tanh[-1]) and not np.signbit(tanh[-2])  # tanh(-0) = -0
        np.testing.assert_array_equal(run("sigmoid", x), [1, 0, np.nan, 1, 0, 0.5, 0.5])


def test_a_wrong_exp_is_caught_by_the_ulp_measure():
    """The measure can fail: exp off by one part in 1e-15 is many ulps in float64."""
    x = np.linspace(-5, 5, 1001)
    exact = np.exp(x.astype(np.longdouble))
    assert ulps(np.exp(x), exact, np.float64).max() <= EXP_ULPS
    assert ulps(np.exp(x) * (1 + 1e-15), exact, np.float64).max() > EXP_ULPS


def _half(x):
    return x * 0.5


def _three(x):
    return x * 3


def _two_to_24(x):
    return x * 16777216


def _past_2_to_24(x):
    return x * 16777217  # not a float32


def _huge(x):
    return x * 1e39  # inf as float32


def _tiny(x):
    return x * 1e-40  # subnormal as float32


@pytest.mark.parametrize(
    ("helper", "narrowed"),
    [
        (_half, True),
        (_three, True),
        (_two_to_24, True),
        (_past_2_to_24, False),
        (_huge, False),
        (_tiny, False),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_a_helper_is_narrowed_to_float32_only_where_its_numbers_keep_their_meaning(
    helper, narrowed
):
    """An integer above 2**24 or a float outside float32's normal range would change
    value (or become inf or 0) as float32: such a helper keeps its float64 numbers."""
    module = load_generated("activations", "numba")
    form = module._typed(helper, True)
    (number,) = [c for c in form.__code__.co_consts if c is not None]
    assert (type(number) is np.float32) is narrowed, number
    assert form(2.0) == helper(2.0) or not narrowed  # the same function, float32 numbers
