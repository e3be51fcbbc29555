"""derive/codegen/matrices.py: sides over arrays of several sizes lowered to array code
(matrix products, reductions, broadcasting), each lowering checked against the side's
value summed out by hand at concrete sizes; reuse of earlier formulas; and the refusals:
a claim that fails, a sum that is no matrix product, a contract not met."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import sympy as sp

from derive.claims import ClaimFileError, from_dict, load
from derive.codegen import CodegenError
from derive.codegen.matrices import (
    ArrayLowering,
    _align,
    _check_contract,
    _replace,
    build,
    render_module,
)
from derive.language import N_SYMBOL, index_symbol, parse
from tests.conftest import DOCUMENTS

MASKED = DOCUMENTS / "attention_masked.toml"
# the lowered code and the summed-out side both add at most a few dozen float64
# products of O(1) numbers
TOL = 1e-12
SIZES = {"T": 3, "N": 4, "E": 2}


def _model(doc):
    return doc.model_for(N_SYMBOL)


def _by_hand(expr, model, arrays, free_values):
    """expr at concrete sizes and free indices: every Sum expanded, every array read."""
    sizes = {model.size_of(n): v for n, v in SIZES.items()}
    e = expr.xreplace({**sizes, **free_values}).doit()
    values = {}
    for a in e.atoms(sp.Indexed):
        values[a] = arrays[a.base.name][tuple(int(i) - 1 for i in a.indices)]
    scalars = {s: arrays[s.name] for s in e.free_symbols if s.name in arrays}
    return float(e.xreplace({**values, **scalars}))


SIDES = [
    # (side, free indices): a product, a transposed product, a row reduction, broadcasting
    ("c*sum(Q[i, a]*K[j, a], a)", ("i", "j")),
    ("sum(P[k, i]*dO[k, j], k)", ("i", "j")),
    ("sum(dO[i, a]*O[i, a], a)", ("i",)),
    ("P[i, j]*(sum(dO[i, a]*V[j, a], a) - sum(dO[i, a]*O[i, a], a))", ("i", "j")),
    ("c*sum(P[k, i]*(sum(dO[k, a]*V[i, a], a) - sum(dO[k, a]*O[k, a], a))*Q[k, j], k)", ("i", "j")),
    ("m[i] + log(sum(M[i, k]*exp(S[i, k] - m[i]), k))", ("i",)),
    ("sum(P[i, k]*V[k, j], k)*c + Q[i, j]", ("i", "j")),
]
NAMES = {"Q": "q", "K": "k", "V": "v", "dO": "do", "M": "mask", "m": "shift", "c": "scale"}
NAMES |= {"S": "s", "P": "p", "O": "o"}


def _arrays(rng):
    t, n, e = SIZES["T"], SIZES["N"], SIZES["E"]
    shapes = {"Q": (t, e), "K": (n, e), "V": (n, e), "dO": (t, e), "M": (t, n), "m": (t,)}
    shapes |= {"S": (t, n), "P": (t, n), "O": (t, e)}
    arrays = {name: rng.uniform(0.5, 1.5, shape) for name, shape in shapes.items()}
    arrays["c"] = 0.7
    return arrays


@pytest.mark.parametrize(("side", "free"), SIDES)
def test_lowered_code_computes_the_side(side, free):
    doc = load(MASKED)
    model = _model(doc)
    idx = tuple(index_symbol(v) for v in free)
    expr = parse(side, model, dict(zip(free, idx, strict=True)))
    code = ArrayLowering(model, NAMES).lower(expr, idx)
    arrays = _arrays(np.random.default_rng(1))
    env = {NAMES[k]: v for k, v in arrays.items()}
    env |= {"_mT": lambda x: np.swapaxes(x, -1, -2), "_exp": np.exp, "_log": np.log}
    got = np.asarray(eval(code, env))  # noqa: S307 (code printed by derive, not read)
    assert got.ndim == len(free)
    for point in np.ndindex(got.shape):
        at = {i: sp.Integer(p + 1) for i, p in zip(idx, point, strict=True)}
        assert got[point] == pytest.approx(_by_hand(expr, model, arrays, at), rel=TOL, abs=TOL)


def test_the_shipped_helpers_are_matrix_products():
    doc = load(MASKED)
    built = {}
    for spec in doc.emit.formulas:
        built[spec.name] = build(spec, doc, built)
    code = {name: f.code for name, f in built.items()}
    assert code["_dv"] == "_mT(p) @ do"
    assert code["_dp"] == "do @ _mT(v)"
    assert code["_dk"] == "(_mT(ds) @ q) * scale"
    # dS and dQ read dp, drow and ds by name instead of recomputing them
    assert code["_ds"] == "p * (-drow[..., :, None] + dp)"
    assert code["_dq"] == "(ds @ k) * scale"


def test_reuse_replaces_a_product_inside_a_larger_one():
    a, b, c, d = sp.symbols("a b c d")
    assert _replace(a * b * c + c, a * b, d) == c * d + c
    assert _replace(a * c, a * b, d) == a * c  # not every factor there: unchanged


def test_align_refuses_what_it_cannot_lay_out():
    i, j, k = sp.symbols("i j k", integer=True)
    assert _align("x", (j, i), (i, j)) == "_mT(x)"
    assert _align("x", (j,), (i, j)) == "x[..., None, :]"
    with pytest.raises(CodegenError, match="cannot lay out"):
        _align("x", (i, j), (i, k))


def test_a_sum_that_is_no_matrix_product_is_refused():
    doc = load(MASKED)
    model = _model(doc)
    i, j = index_symbol("i"), index_symbol("j")
    # Σ_k P_ik S_jk M_ik: the factors over (i, k) and (j, k) meet, but so do both with k
    expr = parse("sum(P[i, k]*S[j, k]*M[j, k]*S[i, k], k)", model, {"i": i, "j": j})
    code = ArrayLowering(model, NAMES).lower(expr, (i, j))
    assert "@" in code  # (P∘S) @ (S∘M)ᵀ: still a product of two groups
    # Σ_k P_ik Σ_a Q_ia K_ka V_ja: the inner sum is over (i, k, j), three axes
    three = parse("sum(P[i, k]*sum(Q[i, a]*K[k, a]*V[j, a], a), k)", model, {"i": i, "j": j})
    with pytest.raises(CodegenError, match="not a matrix product"):
        ArrayLowering(model, NAMES).lower(three, (i, j))


def _masked_data():
    return tomllib.loads(MASKED.read_text())


def test_a_failing_claim_is_not_emitted():
    data = _masked_data()
    for c in data["claims"]:
        if c["id"] == "dS":
            c["rhs"] = c["rhs"].replace(" - sum(dO[i, a]*O[i, a], a)", "")
    doc = from_dict(data, MASKED)
    with pytest.raises(CodegenError, match="refusing to emit code, claim"):
        render_module([doc])


def test_names_that_swap_what_the_template_passes_are_refused():
    data = _masked_data()
    data["emit"]["names"] |= {"dO": "o", "O": "do"}
    doc = from_dict(data, MASKED)
    built = {}
    for spec in doc.emit.formulas:
        built[spec.name] = build(spec, doc, built)
    with pytest.raises(CodegenError, match="template passes"):
        _check_contract(doc, "matrices", built)


def test_a_missing_formula_is_refused():
    data = _masked_data()
    data["emit"]["formulas"] = [f for f in data["emit"]["formulas"] if f["name"] != "_dk"]
    doc = from_dict(data, MASKED)
    with pytest.raises(CodegenError, match="needs formula"):
        render_module([doc])


def test_the_layout_is_for_several_sizes_only():
    data = tomllib.loads((DOCUMENTS / "softmax.toml").read_text())
    data["emit"]["layout"] = "matrices"
    with pytest.raises(ClaimFileError) as err:
        from_dict(data)
    assert err.value.field == "emit.layout"
