"""PyTorch's own OpInfo sample inputs for the normalization ops, run against the
generated functions: every sample they cover gives torch's outputs and gradients,
every sample they refuse is refused with a ValueError (never a wrong number), and
the number covered does not shrink.  Both backends, float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BACKENDS, load_generated
from torch.testing._internal.common_methods_invocations import op_db

# float64 against torch's float64 kernels on tiny inputs (at most 125 values).
RTOL64 = 1e-10
OPS = {
    "nn.functional.layer_norm": "layernorm",
    "nn.functional.rms_norm": "rmsnorm",
    "nn.functional.group_norm": "groupnorm",
    "nn.functional.batch_norm": "batchnorm",
    "nn.functional.instance_norm": "groupnorm",
}
# Samples covered at 2026-12 (torch 2.13.0: 56 of 66; the others have a negative eps
# or a 1-d input): the floor this test keeps.
COVERED_AT_LEAST = 56


def _samples():
    out = []
    for op in op_db:
        if op.name in OPS:
            for k, s in enumerate(op.sample_inputs("cpu", torch.float64, requires_grad=False)):
                out.append((f"{op.name}.{op.variant_test_name or ''}[{k}]", op, s))
    return out


SAMPLES = _samples()


def _np(t):
    return None if t is None else t.detach().numpy().copy()


def _plan(name, s):
    """For a sample: our forward (name, args, kwargs), our backward (name, the arguments
    between x and gamma, those after gamma (None: the forward's statistics), kwargs),
    torch's call, its parameters, how many parameter gradients our backward returns,
    and the running statistics both update (ours, torch's); or why it is not generated."""
    F = torch.nn.functional
    x, a, kw = s.input, list(s.args), dict(s.kwargs)
    eps = kw.get("eps")
    if name == "nn.functional.rms_norm":
        shape, w = a[0], (a[1:] + [None])[0]
        shaped = {"normalized_shape": shape}

        def call(t, w, b):
            return F.rms_norm(t, shape, w, eps)

        fwd = ("rmsnorm_forward", (_np(x), _np(w), eps), shaped)
        return fwd, ("rmsnorm_backward", (), None, shaped), call, (w, None), 1, ()
    eps = 1e-5 if eps is None else eps
    if name == "nn.functional.layer_norm":
        shape, w, b = a[0], *(a[1:] + [None, None])[:2]
        shaped = {"normalized_shape": shape}

        def call(t, w, b):
            return F.layer_norm(t, shape, w, b, eps)

        fwd = ("layernorm_forward", (_np(x), _np(w), _np(b), eps), shaped)
        return fwd, ("layernorm_backward", (), None, shaped), call, (w, b), 2, ()
    if name == "nn.functional.group_norm":
        groups, w, b = a[0], kw.get("weight"), kw.get("bias")

        def call(t, w, b):
            return F.group_norm(t, groups, w, b, eps)

        fwd = ("groupnorm_forward", (_np(x), groups, _np(w), _np(b), eps), {})
        return fwd, ("groupnorm_backward", (groups,), None, {}), call, (w, b), 2, ()
    if name == "nn.functional.instance_norm":
        w, b = kw.get("weight"), kw.get("bias")
        if not kw.get("use_input_stats", True):  # batch norm's eval mode, per channel
            return _eval(x, kw.get("running_mean"), kw.get("running_var"), w, b, eps)

        def call(t, w, b):
            return F.instance_norm(t, weight=w, bias=b, eps=eps)

        fwd = ("instancenorm_forward", (_np(x), _np(w), _np(b), eps), {})
        return fwd, ("instancenorm_backward", (), None, {}), call, (w, b), 2, ()
    # batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    rm, rv, w, b = (a + [None] * 4)[:4]
    if not kw.get("training", False):
        return _eval(x, rm, rv, w, b, eps)
    momentum = kw.get("momentum", 0.1)
    ours = {"running_mean": _np(rm), "running_var": _np(rv), "momentum": momentum}
    theirs = [None if r is None else r.detach().clone() for r in (rm, rv)]

    def call(t, w, b):
        return F.batch_norm(t, *theirs, w, b, True, momentum, eps)

    fwd = ("batchnorm_forward", (_np(x), _np(w), _np(b), eps), ours)
    names = ("running_mean", "running_var")
    updated = [(ours[k], t) for k, t in zip(names, theirs, strict=True) if t is not None]
    return fwd, ("batchnorm_backward", (), None, {}), call, (w, b), 2, updated


def _eval(x, rm, rv, w, b, eps):
    """Batch norm's eval mode: normalized with the running statistics."""
    F = torch.nn.functional

    def call(t, w, b):
        return F.batch_norm(t, rm, rv, w, b, False, 0.1, eps)

    stats = (_np(rm), _np(rv), eps)
    fwd = ("batchnorm_eval_forward", (_np(x), _np(w), _np(b), *stats), {})
    return fwd, ("batchnorm_eval_backward", (), stats, {}), call, (w, b), 2, ()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def modules(backend):
    return {name: load_generated(name, backend) for name in set(OPS.values())}


def _torch_reference(call, x, params, dy):
    tx = x.detach().clone().requires_grad_(True)
    tp = [None if p is None else p.detach().clone().requires_grad_(True) for p in params]
    y = call(tx, *tp)
    wanted = [tx] + [p for p in tp if p is not None]
    grads = torch.autograd.grad(y, wanted, torch.tensor(dy)) if y.numel() else [None] * 3
    return _np(y), grads


def _close(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert float(np.max(np.abs(got - want), initial=0.0)) <= RTOL64 * scale


def _run(modules, label, op, s):
    """'covered', or the reason the sample is refused."""
    plan = _plan(op.name, s)
    if isinstance(plan, str):
        return plan
    (fname, args, kwargs), (bname, between, after, bkwargs), call, params, nparams, updated = plan
    m = modules[OPS[op.name]]
    try:
        out = getattr(m, fname)(*args, **kwargs)
    except ValueError as exc:  # refused, with the reason
        return f"refused: {exc}"
    dy = np.random.default_rng(0).standard_normal(s.input.shape)
    want_y, grads = _torch_reference(call, s.input, params, dy)
    out = out if isinstance(out, tuple) else (out,)
    _close(out[0], want_y)
    for ours, theirs in updated:  # running statistics, updated in place by both
        _close(ours, _np(theirs))
    w = None if params[0] is None else _np(params[0])
    stats = out[1:] if after is None else after
    mine = getattr(m, bname)(dy, _np(s.input), *between, w, *stats, **bkwargs)
    if s.input.numel():
        _close(mine[0], grads[0].numpy())
        present = list(grads[1:])
        if params[0] is None:  # no weight: no parameter gradients at all
            assert all(g is None for g in mine[1 : 1 + nparams]), label
        for k, p in enumerate(params[:nparams]):
            if p is not None:  # a bias torch lacks has no gradient to compare with
                _close(mine[1 + k], present.pop(0).numpy())
    return "covered"


def test_every_sample_is_covered_or_refused_and_coverage_does_not_shrink(modules):
    outcomes = {label: _run(modules, label, op, s) for label, op, s in SAMPLES}
    covered = [k for k, v in outcomes.items() if v == "covered"]
    refused = {k: v for k, v in outcomes.items() if v != "covered"}
    # Every refusal is for a reason torch's own sample shows: a negative eps, or an
    # input with no channel axis or no value per channel.
    allowed = ("eps: expected", "expected shape (N, C)", "at least one value")
    for label, reason in refused.items():
        assert any(a in reason for a in allowed), (label, reason)
    assert len(covered) >= COVERED_AT_LEAST, (len(covered), len(SAMPLES), refused)
