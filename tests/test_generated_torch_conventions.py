"""The generated normalization functions take PyTorch's conventions where users meet
them: no affine parameters (gamma=None, beta=None), rms_norm's eps=None, an empty
batch.  Oracles: torch.nn.functional and its autograd, in float64, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKENDS, load_generated

# float64 against torch's float64 kernels: sums of a few dozen terms of order one,
# agreement to ~1e3 ulps with room to spare.
RTOL64 = 1e-11
# float32 against torch's float32 kernel, both rounding each sum of a handful of terms:
# a few ulps of float32, 64 with margin.
RTOL32 = 64 * float(np.finfo(np.float32).eps)
# x = 1e-5 rounded to float32 moves mean(x**2), and so invrms, by about 1e-7 relative.
RTOL_ROUNDED_INPUT = 1e-6
MODULES = ("batchnorm", "layernorm", "rmsnorm", "groupnorm")


@pytest.fixture(scope="module", params=BACKENDS)
def mods(request):
    return {name: load_generated(name, request.param) for name in MODULES}


def close(got, want, rtol=RTOL64):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert float(np.max(np.abs(got - want), initial=0.0)) <= rtol * scale


def _torch_grads(f, x, dy):
    """(y, dx) of torch's f at x, by autograd, in float64."""
    tx = torch.tensor(x, requires_grad=True)
    y = f(tx)
    (dx,) = torch.autograd.grad(y, tx, torch.tensor(dy))
    return y.detach().numpy(), dx.numpy()


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 2 + 0.5, rng.standard_normal(shape)


@pytest.mark.parametrize("shape,normalized", [((4, 5), None), ((2, 3, 4), (3, 4)), ((6,), 6)])
def test_layernorm_without_affine_is_torch_s_elementwise_affine_false(mods, shape, normalized):
    m = mods["layernorm"]
    x, dy = _data(shape)
    dims = shape[-1:] if normalized is None else np.atleast_1d(normalized).tolist()
    want_y, want_dx = _torch_grads(lambda t: F.layer_norm(t, dims, None, None, 1e-5), x, dy)
    y, mean, invstd = m.layernorm_forward(x, None, None, normalized_shape=normalized)
    close(y, want_y)
    dx, dgamma, dbeta = m.layernorm_backward(dy, x, None, mean, invstd)
    close(dx, want_dx)
    assert dgamma is None and dbeta is None
    # stating normalized_shape in the backward gives the same; a gamma of ones, the same dx
    again = m.layernorm_backward(dy, x, None, mean, invstd, normalized_shape=normalized or dims)
    close(again[0], dx)
    ones = np.ones(dims)
    close(m.layernorm_backward(dy, x, ones, mean, invstd)[0], dx)


def test_rmsnorm_without_affine_and_with_eps_none_is_torch_s(mods):
    m = mods["rmsnorm"]
    x, dy = _data((5, 7))
    want_y, want_dx = _torch_grads(lambda t: F.rms_norm(t, (7,), None, None), x, dy)
    y, invrms = m.rmsnorm_forward(x, None, eps=None)
    close(y, want_y)
    dx, dgamma = m.rmsnorm_backward(dy, x, None, invrms)
    close(dx, want_dx)
    assert dgamma is None
    for dtype, rtol in ((np.float32, RTOL32), (np.float64, RTOL64)):
        xs, gamma = x.astype(dtype), np.linspace(0.5, 2, 7).astype(dtype)
        want = F.rms_norm(torch.tensor(xs), (7,), torch.tensor(gamma), None).numpy()
        close(m.rmsnorm_forward(xs, gamma, eps=None)[0], want, rtol)


def test_rmsnorm_eps_none_is_the_dtype_s_machine_epsilon(mods):
    m = mods["rmsnorm"]
    x = np.full((1, 4), 1e-5)  # mean(x**2) = 1e-10, of the order of eps64 * 1e6
    for dtype in (np.float32, np.float64):
        eps = float(np.finfo(dtype).eps)
        want = np.full(1, 1 / np.sqrt(1e-10 + eps))
        close(m.rmsnorm_forward(x.astype(dtype), None, eps=None)[1], want, RTOL_ROUNDED_INPUT)


def test_groupnorm_without_affine_is_torch_s_affine_false(mods):
    m = mods["groupnorm"]
    x, dy = _data((3, 6, 4))
    want_y, want_dx = _torch_grads(lambda t: F.group_norm(t, 2, None, None, 1e-5), x, dy)
    y, mean, invstd = m.groupnorm_forward(x, 2, None, None)
    close(y, want_y)
    dx, dgamma, dbeta = m.groupnorm_backward(dy, x, 2, None, mean, invstd)
    close(dx, want_dx)
    assert dgamma is None and dbeta is None


def test_batchnorm_without_affine_is_torch_s_affine_false(mods):
    m = mods["batchnorm"]
    x, dy = _data((8, 3, 5))
    want_y, want_dx = _torch_grads(
        lambda t: F.batch_norm(t, None, None, None, None, True, 0.1, 1e-5), x, dy
    )
    y, mean, invstd = m.batchnorm_forward(x, None, None)
    close(y, want_y)
    dx, dgamma, dbeta = m.batchnorm_backward(dy, x, None, mean, invstd)
    close(dx, want_dx)
    assert dgamma is None and dbeta is None


def test_batchnorm_double_backward_without_affine_is_torch_s(mods):
    m = mods["batchnorm"]
    x, dy = _data((6, 2, 3))
    ddx = np.random.default_rng(1).standard_normal(x.shape)
    tx, tdy = torch.tensor(x, requires_grad=True), torch.tensor(dy, requires_grad=True)
    y = F.batch_norm(tx, None, None, None, None, True, 0.1, 1e-5)
    (dx,) = torch.autograd.grad(y, tx, tdy, create_graph=True)
    gx, gdy = torch.autograd.grad(dx, (tx, tdy), torch.tensor(ddx))
    _, mean, invstd = m.batchnorm_forward(x, None, None)
    dx2, dgamma2, ddy = m.batchnorm_double_backward(ddx, None, None, dy, x, None, mean, invstd)
    close(dx2, gx.numpy())
    close(ddy, gdy.numpy())
    assert dgamma2 is None


@pytest.mark.parametrize(
    "name,call",
    [
        ("layernorm", lambda m, x: m.layernorm_forward(x, np.ones(4), np.zeros(4))),
        ("rmsnorm", lambda m, x: m.rmsnorm_forward(x, None, eps=None)),
    ],
)
def test_an_empty_batch_gives_empty_results_as_torch_does(mods, name, call):
    m = mods[name]
    x = np.zeros((0, 4))
    *_, last = out = call(m, x)
    want = (F.layer_norm if name == "layernorm" else F.rms_norm)(torch.tensor(x), (4,))
    assert out[0].shape == tuple(want.shape) == (0, 4) and last.shape == (0,)
    back = getattr(m, f"{name}_backward")(x, x, np.ones(4), *out[1:])
    assert back[0].shape == (0, 4)
    assert all(np.array_equal(g, np.zeros(4)) for g in back[1:])


def test_an_empty_batch_of_groups(mods):
    m = mods["groupnorm"]
    x = np.zeros((0, 4, 3))
    y, mean, invstd = m.groupnorm_forward(x, 2, None, None)
    assert y.shape == tuple(F.group_norm(torch.tensor(x), 2).shape) and mean.shape == (0, 2)
    dx, dgamma, dbeta = m.groupnorm_backward(x, x, 2, np.ones(4), mean, invstd)
    assert dx.shape == x.shape and np.array_equal(dgamma, np.zeros(4))
    with pytest.raises(ValueError, match="at least one value per group"):
        m.groupnorm_forward(np.zeros((2, 4, 0)), 2, None, None)


def test_batchnorm_still_refuses_a_channel_without_values(mods):
    # torch's native_batch_norm refuses too: a mean of no values has no value.
    with pytest.raises(ValueError):
        mods["batchnorm"].batchnorm_forward(np.zeros((0, 3)), None, None)


@pytest.mark.parametrize("bad", [0, (), (4, 0), (-1,), 2.5, "4", True])
def test_a_bad_normalized_shape_is_named(mods, bad):
    with pytest.raises(ValueError, match="normalized_shape"):
        mods["layernorm"].layernorm_forward(np.zeros((2, 4)), None, None, normalized_shape=bad)


def test_normalized_shape_must_agree_with_gamma(mods):
    with pytest.raises(ValueError, match="normalized_shape: expected the shape of gamma"):
        mods["layernorm"].layernorm_forward(
            np.zeros((2, 4)), np.ones(4), None, normalized_shape=(2, 4)
        )


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_instancenorm_is_torch_s_instance_norm(mods, shape, affine):
    m = mods["groupnorm"]
    x, dy = _data(shape)
    rng = np.random.default_rng(2)
    gamma, beta = (rng.standard_normal(shape[1]) for _ in range(2)) if affine else (None, None)
    tg, tb = (torch.tensor(gamma), torch.tensor(beta)) if affine else (None, None)
    want_y, want_dx = _torch_grads(
        lambda t: F.instance_norm(t, weight=tg, bias=tb, eps=1e-5), x, dy
    )
    y, mean, invstd = m.instancenorm_forward(x, gamma, beta)
    close(y, want_y)
    assert mean.shape == invstd.shape == shape[:2]
    dx, dgamma, dbeta = m.instancenorm_backward(dy, x, gamma, mean, invstd)
    close(dx, want_dx)
    if affine:
        tgamma = torch.tensor(gamma, requires_grad=True)
        out = F.instance_norm(torch.tensor(x), weight=tgamma, bias=tb, eps=1e-5)
        (want_dgamma,) = torch.autograd.grad(out, tgamma, torch.tensor(dy))
        close(dgamma, want_dgamma.numpy())
        close(dbeta, dy.sum(axis=tuple(k for k in range(len(shape)) if k != 1)))
    else:
        assert dgamma is None and dbeta is None


def _running(c, seed=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(c), rng.uniform(0.5, 2, c)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_eval_mode_is_torch_s_training_false(mods, shape, affine):
    m = mods["batchnorm"]
    x, dy = _data(shape)
    rm, rv = _running(shape[1])
    rng = np.random.default_rng(4)
    gamma, beta = (rng.standard_normal(shape[1]) for _ in range(2)) if affine else (None, None)
    params = [torch.tensor(p, requires_grad=True) for p in (gamma, beta)] if affine else []
    tx = torch.tensor(x, requires_grad=True)
    w, b = params if affine else (None, None)
    y = F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), w, b, False, 0.1, 1e-5)
    grads = torch.autograd.grad(y, [tx, *params], torch.tensor(dy))
    close(m.batchnorm_eval_forward(x, gamma, beta, rm, rv), y.detach().numpy())
    dx, dgamma, dbeta = m.batchnorm_eval_backward(dy, x, gamma, rm, rv)
    close(dx, grads[0].numpy())
    if affine:
        close(dgamma, grads[1].numpy())
        close(dbeta, grads[2].numpy())
    else:
        assert dgamma is None and dbeta is None


@pytest.mark.parametrize("momentum", [0.1, 0.5, 0.0, -1.2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_updates_the_running_statistics_as_torch_does(mods, momentum, dtype):
    m = mods["batchnorm"]
    x, _ = _data((5, 3, 4))
    x = x.astype(dtype)
    rm, rv = (a.astype(dtype) for a in _running(3))
    trm, trv = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    want = F.batch_norm(torch.tensor(x), trm, trv, None, None, True, momentum, 1e-5)
    y, _, _ = m.batchnorm_forward(x, None, None, running_mean=rm, running_var=rv, momentum=momentum)
    rtol = RTOL64 if dtype == np.float64 else RTOL32
    close(y, want.numpy(), rtol)
    close(rm, trm.numpy(), rtol)
    close(rv, trv.numpy(), rtol)
    assert rm.dtype == rv.dtype == dtype


def test_bad_running_statistics_are_refused_and_change_nothing(mods):
    m = mods["batchnorm"]
    x = np.random.default_rng(0).standard_normal((4, 2))
    rm, rv = np.zeros(2), np.ones(2)
    for kwargs, match in [
        ({"running_mean": [0.0, 0.0]}, "running_mean: expected a float32 or float64 array"),
        ({"running_mean": np.zeros(3)}, "running_mean: expected shape"),
        ({"running_var": np.array([1.0, np.nan])}, "running_var: expected finite"),
        ({"running_mean": rm, "momentum": None}, "momentum"),
        ({"running_mean": rm, "momentum": float("inf")}, "momentum"),
    ]:
        with pytest.raises(ValueError, match=match):
            m.batchnorm_forward(x, None, None, **kwargs)
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        m.batchnorm_forward(x, None, None, running_mean=frozen)
    with pytest.raises(ValueError, match="at least 2"):
        m.batchnorm_forward(x[:1], None, None, running_var=rv)
    assert np.array_equal(rm, np.zeros(2)) and np.array_equal(rv, np.ones(2))


def test_eval_mode_refuses_running_statistics_without_a_value(mods):
    m = mods["batchnorm"]
    x = np.zeros((2, 2))
    with pytest.raises(ValueError, match="running_var: expected values >= 0"):
        m.batchnorm_eval_forward(x, None, None, np.zeros(2), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="running_var \\+ eps"):
        m.batchnorm_eval_forward(x, None, None, np.zeros(2), np.zeros(2), eps=0.0)
    with pytest.raises(ValueError, match="running_mean: expected shape"):
        m.batchnorm_eval_forward(x, None, None, np.zeros(3), np.ones(2))


def test_huge_integers_and_non_finite_input_are_value_errors(mods):
    bn, gn = mods["batchnorm"], mods["groupnorm"]
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    with pytest.raises(ValueError, match="eps"):
        bn.batchnorm_forward(x, None, None, 10**400)
    with pytest.raises(ValueError, match="momentum"):
        bn.batchnorm_forward(x, None, None, running_mean=np.zeros(2), momentum=10**400)
    bad = x.copy()
    bad[0, 0, 0] = np.inf
    rm, rv = np.zeros(2), np.ones(2)
    with pytest.raises(ValueError, match="x: expected finite"):
        bn.batchnorm_eval_forward(bad, None, None, rm, rv)
    dy = np.full_like(x, np.nan)
    for gamma in (None, np.ones(2)):
        with pytest.raises(ValueError, match="dy: expected finite"):
            bn.batchnorm_eval_backward(dy, x, gamma, rm, rv)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        gn.instancenorm_forward(x[:, :, 0], None, None)  # as torch refuses
