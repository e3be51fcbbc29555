"""The double-backward documents: PyTorch's batchnorm_double_backward and
layer_norm_double_backward (torch/csrc/autograd/FunctionsManual.cpp).

Each document loads, every claim holds for n = 1..5 and is proved for all n;
mutants a person could write (3 r^2 -> r^2, a dropped ddgamma term,
S_gh -> S_g S_h / n, a dropped ddbeta, a wrong power) are rejected with a
counterexample.  A last check ties the transcription to PyTorch itself: the
documents' PyTorch-form sides, evaluated at a point, equal what torch's
autograd returns for the double backward there.
"""

from __future__ import annotations

import random
import tomllib
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from derive.checking import verify_document
from derive.claims import from_dict, load
from derive.language import parse
from derive.model import Model
from derive.numeric import Numeric
from derive.results import EXIT_OK, HOLDS
from tests.conftest import DOCUMENTS, assert_mutant_rejected, one_claim_mutant

NS = tuple(range(1, 6))
MUTANT_NS = (2, 3, 4)
BN = "batchnorm_double_backward"
LN = "layernorm_double_backward"
NAMES = (BN, LN)

# The three outputs of each double backward, as adjoints of Phi.
OUTPUTS = {
    BN: {"gI": "D(Phi, x[i])", "gG": "D(Phi, gamma)", "ggO": "D(Phi, dy[i])"},
    LN: {"gI": "D(Phi, x[i])", "gG": "D(Phi, gamma[i])", "ggO": "D(Phi, dy[i])"},
}


def path_of(name: str):
    return DOCUMENTS / f"{name}.toml"


def data_of(name: str) -> dict:
    return tomllib.loads(path_of(name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=NAMES)
def verified(request):
    name = request.param
    return name, verify_document(load(path_of(name)), NS, all_n=True)


@pytest.mark.parametrize("name", NAMES)
def test_document_loads_and_states_the_three_outputs(name):
    document = load(path_of(name))
    assert document.id == name
    assert document.model == "declared"
    claims = {c.id: c for c in document.claims}
    for output, lhs in OUTPUTS[name].items():
        assert claims[output].cases[0].sides[0] == lhs, (name, output)
        # the derive-and-compare chain starts at the same adjoint
        chain = claims[f"{output}-derived"]
        assert chain.kind == "chain" and chain.cases[0].sides[0] == lhs, (name, output)
    assert "noweight-outputs" in claims


def test_every_claim_holds_and_is_proved_for_all_n(verified):
    name, result = verified
    for c in result.claims:
        assert {v.n: v.status for v in c.verdicts} == dict.fromkeys(NS, HOLDS), (name, c.claim.id)
        assert not c.vacuous, (name, c.claim.id)
        assert c.proved_all_n, (name, c.claim.id, [p.reason for p in c.proofs])
    assert result.exit_code == EXIT_OK


# document, claim, field, old, new, case (1-based, cases only).
MUTANTS = [
    # batch norm
    (BN, "gI", "rhs", "3*r**2*Sgx*Shx", "r**2*Sgx*Shx", None),
    (BN, "gI", "rhs", " - xt[i]*r**3*Sgx/M)", ")", None),  # a dropped ddgamma term
    (BN, "gI", "rhs", "Sh*Sg/M - Sgh", "Sh*Sg/M - Sg*Sh/M", None),
    (BN, "ggO", "rhs", " + ddgamma*xt[i]*r", "", None),
    (BN, "gI-derived", "steps[3]", "3*sum(ddx[k]*xhat[k], k)", "sum(ddx[k]*xhat[k], k)", None),
    (BN, "eval-outputs", "rhs", "ddgamma*rinvstd*dy[i]", "ddgamma*dy[i]", 1),
    (BN, "noweight-outputs", "rhs", " + ddbeta", "", 2),  # what PyTorch returns
    # layer norm
    (LN, "gI", "rhs", "3*r**2*Sgx*Shx", "r**2*Sgx*Shx", None),
    (LN, "gI", "rhs", " - xt[i]*r**3*Scx/n)", ")", None),  # a dropped ddgamma term
    (LN, "gI", "rhs", "Sh*Sg/n - Sgh", "Sh*Sg/n - Sg*Sh/n", None),
    (LN, "gI", "rhs", "xt[i]*r**3/n", "xt[i]*r**2/n", None),  # a wrong power
    (LN, "ggO", "rhs", " + ddbeta[i]", "", None),  # a dropped ddbeta
    (LN, "noweight-outputs", "rhs", " + ddbeta[i]", "", 2),  # PyTorch, issue #79705
    (LN, "noweight-ddbeta", "rhs", "ddbeta[i]", "0", 1),
]


@pytest.mark.parametrize(
    "name, claim_id, field, old, new, case",
    MUTANTS,
    ids=[f"{m[0].split('_')[0]}:{m[1]}:{m[3].strip()[:24]}" for m in MUTANTS],
)
def test_mutant_is_rejected(name, claim_id, field, old, new, case):
    data = one_claim_mutant(path_of(name), claim_id, field, old, new, case)
    document = from_dict(data, path_of(name))
    assert_mutant_rejected(verify_document(document, MUTANT_NS, all_n=True))


def test_every_kind_of_mutant_is_there():
    for name in NAMES:
        edits = [(cid, old, new) for doc, cid, _, old, new, _ in MUTANTS if doc == name]
        assert any("3*" in old and "3*" not in new for _, old, new in edits), name
        assert any("ddgamma" in old or "Scx" in old or "Sgx/M)" in old for _, old, _ in edits)
        assert any("Sgh" in old and "Sg*Sh" in new for _, old, new in edits), name
    ln = [(old, new) for doc, _, _, old, new, _ in MUTANTS if doc == LN]
    assert any("ddbeta" in old and "ddbeta" not in new for old, new in ln)
    assert any("**3" in old and "**2" in new for old, new in ln)


# ---------------------------------------------------------------- against PyTorch


def side_values(name: str, n: int, point: dict, claims: dict) -> dict:
    """The named claims' right-hand sides (claim id -> field or case) at one point,
    per position i where the side has a free index."""
    document = load(path_of(name))
    model = Model(document.spec, n)
    numeric = Numeric(model)
    values = {}
    for cid, (case, text) in claims.items():
        if "[i]" in text:
            exprs = [parse(text, model, {"i": k}) for k in range(1, n + 1)]
        else:
            exprs = [parse(text, model, {})]
        values[cid, case] = [float(numeric.evaluate(e, point)) for e in exprs]
    return values


def rhs_of(name: str, claim_id: str, case: int | None = None) -> str:
    (claim,) = [c for c in data_of(name)["claims"] if c["id"] == claim_id]
    return claim["rhs"] if case is None else claim["cases"][case - 1]["rhs"]


def rational_point(rng, names):
    return {k: Fraction(rng.randint(-30, 30), rng.randint(1, 6)) for k in names}


def assign(model_point, atoms, values):
    for atom, value in zip(atoms, values, strict=True):
        model_point[atom] = value


def tensor(values, shape):
    return torch.tensor([float(v) for v in values], dtype=torch.float64).reshape(shape)


def torch_double_backward(forward, primals, dy, ddx, dd_params, wrt):
    """Gradients of Phi = <ddx, dx> + <ddgamma, dgamma> + <ddbeta, dbeta> with
    respect to wrt, through torch's own double backward."""
    y = forward(*primals)
    firsts = torch.autograd.grad(y, primals, dy, create_graph=True)
    phi = (ddx * firsts[0]).sum() + sum(
        (d * f).sum() for d, f in zip(dd_params, firsts[1:], strict=True)
    )
    return torch.autograd.grad(phi, wrt, allow_unused=True)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_sides_match_torch(mode):
    n, rng = 4, random.Random(7)
    document = load(path_of(BN))
    model = Model(document.spec, n)
    vec = {v: rational_point(rng, range(n)) for v in ("x", "dy", "ddx")}
    sca = rational_point(rng, ("gamma", "beta", "ddgamma", "ddbeta", "rmean", "rinvstd"))
    sca["rinvstd"] = abs(sca["rinvstd"]) + 1
    eps = Fraction(3, 10)
    point = {model.scalars["eps"]: eps}
    for v, vals in vec.items():
        assign(point, [model.families[v][k + 1] for k in range(n)], vals.values())
    for s, val in sca.items():
        point[model.scalars[s]] = val

    x = tensor(vec["x"].values(), (n, 1)).requires_grad_()
    dy = tensor(vec["dy"].values(), (n, 1)).requires_grad_()
    ddx = tensor(vec["ddx"].values(), (n, 1))
    gamma = tensor([sca["gamma"]], (1,)).requires_grad_()
    beta = tensor([sca["beta"]], (1,)).requires_grad_()
    dd = (tensor([sca["ddgamma"]], (1,)), tensor([sca["ddbeta"]], (1,)))
    if mode == "train":
        claims = {cid: (None, rhs_of(BN, cid)) for cid in ("gI", "gG", "ggO")}

        def forward(x, gamma, beta):
            return F.batch_norm(x, None, None, gamma, beta, training=True, eps=float(eps))
    else:
        claims = {
            cid: (case, rhs_of(BN, "eval-outputs", case))
            for cid, case in (("gI", 1), ("gG", 2), ("ggO", 3))
        }
        # running_var chosen so that (running_var + eps)^(-1/2) is rinvstd
        rvar = tensor([1 / sca["rinvstd"] ** 2 - eps], (1,))
        rmean = tensor([sca["rmean"]], (1,))

        def forward(x, gamma, beta):
            return F.batch_norm(x, rmean, rvar, gamma, beta, training=False, eps=float(eps))

    tx, tg, tdy = torch_double_backward(forward, (x, gamma, beta), dy, ddx, dd, (x, gamma, dy))
    ours = side_values(BN, n, point, claims)
    expected = {"gI": tx.flatten(), "gG": tg.flatten(), "ggO": tdy.flatten()}
    for (cid, _case), vals in ours.items():
        assert torch.allclose(torch.tensor(vals, dtype=torch.float64), expected[cid]), (mode, cid)


def test_layernorm_sides_match_torch():
    n, rng = 4, random.Random(11)
    document = load(path_of(LN))
    model = Model(document.spec, n)
    names = ("x", "dy", "ddx", "gamma", "beta", "ddgamma", "ddbeta")
    vec = {v: rational_point(rng, range(n)) for v in names}
    eps = Fraction(3, 10)
    point = {model.scalars["eps"]: eps}
    for v, vals in vec.items():
        assign(point, [model.families[v][k + 1] for k in range(n)], vals.values())
    t = {v: tensor(vec[v].values(), (1, n)) for v in names}
    x, dy, gamma, beta = (t[v].requires_grad_() for v in ("x", "dy", "gamma", "beta"))
    dd = (t["ddgamma"].reshape(n), t["ddbeta"].reshape(n))

    def forward(x, gamma, beta):
        return F.layer_norm(x, (n,), gamma.reshape(n), beta.reshape(n), float(eps))

    tx, tg, tdy = torch_double_backward(forward, (x, gamma, beta), dy, t["ddx"], dd, (x, gamma, dy))
    claims = {cid: (None, rhs_of(LN, cid)) for cid in ("gI", "gG", "ggO")}
    ours = side_values(LN, n, point, claims)
    expected = {"gI": tx.flatten(), "gG": tg.flatten(), "ggO": tdy.flatten()}
    for (cid, _case), vals in ours.items():
        assert torch.allclose(torch.tensor(vals, dtype=torch.float64), expected[cid]), cid
