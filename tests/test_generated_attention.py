"""derive/generated/attention.py against oracles that share no code with it: PyTorch's
autograd of scaled_dot_product_attention, a plain NumPy softmax written here, and central
finite differences; its blocks against one block; its bad inputs refused by name."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.generated import attention as att

# float64 against torch float64: both sum a few hundred products of O(1) numbers, so
# they agree to a few hundred ulps of 1.
TOL64 = 1e-12
# float32: the same sums in float32 (ulp 1.2e-7), over up to 512 keys, on O(1) values.
TOL32 = 2e-5
# central differences with step H: truncation H² ~ 1e-12 times third derivatives of
# O(10), rounding 1e-16/H ~ 1e-10.
H = 1e-6
TOL_FD = 1e-7


def _inputs(shape_q, n, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    *batch, t, e = shape_q
    q = rng.standard_normal((*batch, t, e))
    k = rng.standard_normal((*batch, n, e))
    v = rng.standard_normal((*batch, n, e))
    do = rng.standard_normal((*batch, t, e))
    return [x.astype(dtype) for x in (q, k, v, do)]


def _torch(q, k, v, do, scale=None, causal=False):
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    o = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal, scale=scale)
    o.backward(torch.tensor(do))
    return o.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()


def _ours(q, k, v, do, scale=None, causal=False):
    o, lse = att.attention_forward(q, k, v, scale=scale, causal=causal)
    return (o, *att.attention_backward(do, q, k, v, o, lse, scale=scale, causal=causal)), lse


def _close(ours, theirs, tol):
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


CASES = [
    ((2, 3, 5, 4), 5),  # batch and heads
    ((7, 3), 4),  # no batch axes, T > N
    ((1, 3, 8), 9),  # T < N
    ((2, 1, 4), 1),  # T = N = 1
    ((1, 1, 6), 5),  # one query
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("shape", "n"), CASES)
def test_matches_torch_float64(shape, n, causal):
    q, k, v, do = _inputs(shape, n)
    ours, lse = _ours(q, k, v, do, causal=causal)
    _close(ours, _torch(q, k, v, do, causal=causal), TOL64)
    assert lse.shape == q.shape[:-1]


@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch_float32_over_several_blocks(causal, monkeypatch):
    monkeypatch.setattr(att, "_BLOCK_ELEMENTS", 1000)  # blocks of 16 rows of 64 columns
    q, k, v, do = _inputs((2, 70, 8), 50, np.float32)
    ours, _ = _ours(q, k, v, do, causal=causal)
    _close(ours, _torch(q, k, v, do, causal=causal), TOL32)


def test_an_explicit_scale_is_the_claims_c():
    q, k, v, do = _inputs((2, 6, 3), 5)
    ours, _ = _ours(q, k, v, do, scale=0.7)
    _close(ours, _torch(q, k, v, do, scale=0.7), TOL64)
    default, _ = _ours(q, k, v, do)
    explicit, _ = _ours(q, k, v, do, scale=1 / np.sqrt(3))
    _close(default, explicit, TOL64)


def _plain(q, k, v, causal, scale):
    """softmax(c q kᵀ) v with every score and probability stored: the textbook formula."""
    s = scale * np.einsum("...ia,...ja->...ij", q, k)
    if causal:
        s = np.where(np.tri(q.shape[-2], k.shape[-2], dtype=bool), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return p @ v, p


@pytest.mark.parametrize("causal", [False, True])
def test_matches_the_plain_formula_and_its_logsumexp(causal):
    q, k, v, do = _inputs((3, 9, 4), 7)
    o, lse = att.attention_forward(q, k, v, causal=causal)
    want, p = _plain(q, k, v, causal, 0.5)
    np.testing.assert_allclose(o, want, rtol=TOL64, atol=TOL64)
    s = 0.5 * np.einsum("...ia,...ja->...ij", q, k)
    with np.errstate(divide="ignore"):
        masked = np.where(p > 0, s - np.log(p), np.nan)
    # where P_ij > 0, P_ij = exp(S_ij - lse_i): every such entry gives lse_i back
    np.testing.assert_allclose(np.nanmin(masked, -1), lse, rtol=TOL64, atol=1e-10)
    np.testing.assert_allclose(np.nanmax(masked, -1), lse, rtol=TOL64, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_backward_matches_central_differences(causal):
    q, k, v, do = _inputs((1, 4, 3), 5, seed=3)
    grads, _ = _ours(q, k, v, do, causal=causal)

    def loss(q, k, v):
        return float((att.attention_forward(q, k, v, causal=causal)[0] * do).sum())

    for pos, x in enumerate((q, k, v)):
        fd = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            args = [q, k, v]
            plus, minus = x.copy(), x.copy()
            plus[idx] += H
            minus[idx] -= H
            args[pos] = plus
            up = loss(*args)
            args[pos] = minus
            fd[idx] = (up - loss(*args)) / (2 * H)
        np.testing.assert_allclose(grads[1 + pos], fd, rtol=TOL_FD, atol=TOL_FD)


def test_causal_keys_after_every_query_get_no_gradient():
    # T = 2 queries over N = 5 keys: keys 2..4 are after both, so dk = dv = 0 there
    q, k, v, do = _inputs((1, 2, 3), 5)
    (_, _, dk, dv), _ = _ours(q, k, v, do, causal=True)
    assert not dk[:, 2:].any() and not dv[:, 2:].any()
    assert dk[:, :2].any() and dv[:, :2].any()


@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    t=st.integers(1, 9),
    n=st.integers(1, 9),
    e=st.integers(1, 5),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes_match_torch(batch, t, n, e, causal, seed):
    q, k, v, do = _inputs((*batch, t, e), n, seed=seed)
    ours, _ = _ours(q, k, v, do, causal=causal)
    _close(ours, _torch(q, k, v, do, causal=causal), TOL64)


def test_blocks_do_not_change_the_result(monkeypatch):
    q, k, v, do = _inputs((2, 40, 5), 33)
    whole, _ = _ours(q, k, v, do, causal=True)
    monkeypatch.setattr(att, "_BLOCK_ELEMENTS", 1)  # one block of _MIN_BLOCK rows
    monkeypatch.setattr(att, "_MIN_BLOCK", 3)
    blocked, _ = _ours(q, k, v, do, causal=True)
    _close(blocked, whole, TOL64)


def test_backward_extra_memory_does_not_grow_with_t_squared():
    t, e = 2048, 16
    q, k, v, do = _inputs((1, t, e), t, np.float32)
    o, lse = att.attention_forward(q, k, v)
    tracemalloc.start()
    try:
        att.attention_backward(do, q, k, v, o, lse)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = 3 * q.nbytes
    # the goal at T = 4096 is 1/8 of a T x T float32 matrix; at T = 2048 it is 2 MiB, and
    # the blocks take about 5 MiB at any T: so assert 1/2 here, a fixed budget at 4096
    assert peak - outputs <= t * t * 4 / 2


BAD = [
    (dict(q=np.zeros((3, 2), np.int64)), "q: expected a float32 or float64 array"),
    (dict(q=np.zeros(3)), "q: expected shape (..., length, E)"),
    (dict(k=np.zeros((4, 3))), "k: expected shape (-1, 2)"),
    (dict(v=np.zeros((5, 2))), "v: expected the shape of k"),
    (dict(q=np.full((3, 2), np.nan)), "q: expected finite values"),
    (dict(k=np.zeros((4, 2), np.float32)), "k, v: expected the dtype of q"),
    (dict(scale=0.0), "scale: expected a finite number > 0"),
    (dict(scale=float("inf")), "scale: expected a finite number > 0"),
    (dict(scale="1"), "scale: expected a finite number > 0"),
    (dict(causal=1), "causal: expected True or False"),
    (dict(q=np.zeros((0, 2))), "q: expected a length and an E of at least 1"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_input_is_refused_by_name(change, message):
    args = dict(q=np.zeros((3, 2)), k=np.zeros((4, 2)), v=np.zeros((4, 2)))
    args.update(change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        att.attention_forward(**args)


def test_bad_backward_input_is_refused_by_name():
    q, k, v, do = _inputs((3, 2), 4)
    o, lse = att.attention_forward(q, k, v)
    with pytest.raises(ValueError, match="do: expected shape"):
        att.attention_backward(do[:2], q, k, v, o, lse)
    with pytest.raises(ValueError, match="logsumexp: expected shape"):
        att.attention_backward(do, q, k, v, o, lse[:2])
    with pytest.raises(ValueError, match="o: expected the dtype of q"):
        att.attention_backward(do, q, k, v, o.astype(np.float32), lse)


def test_overflow_is_an_error_never_an_inf():
    q = np.full((2, 2), 1e20, np.float32)
    with pytest.raises(ValueError, match="overflows float32"):
        att.attention_forward(q, q, q)
