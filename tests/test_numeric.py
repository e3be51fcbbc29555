"""The numeric side: points that respect the declarations, values that are
undefined where a side has none, and separations that rounding cannot fake."""

import random
from fractions import Fraction

import mpmath
import pytest
import sympy as sp

from derive.model import Model
from derive.nodes import Undefined
from derive.numeric import CONFIRM_DPS, SPOT_DPS, Numeric
from derive.spec import from_table

POINTS = 200  # random points per property: each draw is cheap


def _numeric(table, n=3):
    model = Model(from_table(table), n)
    return model, Numeric(model)


def test_points_respect_positive_and_nonnegative_declarations():
    model, numeric = _numeric(
        {"vectors": ["x", "w"], "scalars": ["a"], "nonnegative": ["eps"], "positive": ["w", "c"]}
    )
    rng = random.Random(0)
    for _ in range(POINTS):
        point = numeric.random_point(rng)
        assert all(point[model.families["w"][k]] > 0 for k in (1, 2, 3))
        assert point[model.scalars["c"]] > 0 and point[model.scalars["eps"]] >= 0
    # the real ones take both signs
    xs = [numeric.random_point(rng)[model.families["x"][1]] for _ in range(POINTS)]
    assert min(xs) < 0 < max(xs)


def test_points_meet_every_constraint_and_keep_declared_signs():
    table = {
        "vectors": ["t", "x"],
        "positive": ["t"],
        "scalars": ["a"],
        "constraints": ["sum(t[k], k) = 1", "a + x[1] = 2*x[2]"],
    }
    model, numeric = _numeric(table, n=4)
    rng = random.Random(1)
    t = model.families["t"]
    x = model.families["x"]
    for _ in range(POINTS):
        point = numeric.random_point(rng)
        assert sum(point[t[k]] for k in range(1, 5)) == 1
        assert all(point[t[k]] > 0 for k in range(1, 5))
        assert point[model.scalars["a"]] + point[x[1]] == 2 * point[x[2]]


def test_a_side_has_no_value_where_a_log_or_root_argument_is_not_positive():
    model, numeric = _numeric({"vectors": ["x"], "nodes": ["q = log(x[1])"]})
    x1 = model.families["x"][1]
    q = model.scalars["q"]
    assert numeric.evaluate(q, _all(model, 1)) == 0
    with pytest.raises(Undefined):
        numeric.evaluate(q, {**_all(model, 1), x1: -2})
    # SymPy reads exp(log(x)) as x: the condition keeps its domain
    with pytest.raises(Undefined):
        numeric.evaluate(x1, {**_all(model, 1), x1: -2}, conditions=(("positive", x1),))
    assert numeric.evaluate(x1, {**_all(model, 1), x1: -2}) == -2


def _all(model, value):
    from fractions import Fraction

    n = model.n
    atoms = [model.families[v][k] for v in model.spec.vectors for k in range(1, n + 1)]
    return {a: Fraction(value) for a in atoms}


def test_exp_log_and_abs_values():
    model, numeric = _numeric({"scalars": ["a"]}, n=1)
    a = model.scalars["a"]
    point = {a: 2}
    with mpmath.workdps(SPOT_DPS):
        assert numeric.agree(
            numeric.evaluate(sp.exp(a) * sp.log(a) + sp.Abs(-a), point),
            mpmath.exp(2) * mpmath.log(2) + 2,
        )
        assert numeric.agree(numeric.evaluate(sp.E, point), mpmath.e)


def test_rounding_cannot_fake_a_separation():
    # (e^z + 1)(e^z - 1) - e^(2z) is -1; at z = 80 the product is ~1e69 and 50
    # digits lose the 1, so the spot precision alone would call the sides unequal.
    model, numeric = _numeric({"scalars": ["z"]}, n=1)
    z = model.scalars["z"]
    lhs = (sp.exp(z) + 1) * (sp.exp(z) - 1) - sp.exp(2 * z)
    assert lhs.has(sp.exp) and sp.expand(lhs) == -1
    at = {z: 80}
    assert not numeric.agree(numeric.evaluate(lhs, at), -1)  # the spot value is spoiled
    assert numeric.separates(lhs, sp.Integer(-1), at) is None
    # at z = 130 both precisions are spoiled, by different amounts: still no separation
    far = {z: 130}
    assert not numeric.agree(numeric.evaluate(lhs, far, CONFIRM_DPS), -1)
    assert numeric.separates(lhs, sp.Integer(-1), far) is None
    # a true difference is found and certified; and agreement is seen through the rounding
    assert numeric.separates(lhs, sp.Integer(0), {z: 2}) is not None
    assert numeric.agree_at(lhs, sp.Integer(-1), at)
    assert not numeric.agree_at(lhs, sp.Integer(0), {z: 2})


def test_an_enclosure_that_is_not_certainly_defined_has_no_value():
    # log(3x - 1) just right of x = 1/3: at 100 digits the enclosure of 3x - 1
    # holds 0, so the side is not certainly defined there; at 400 it is.
    model, numeric = _numeric({"scalars": ["x"]}, n=1)
    x = model.scalars["x"]
    at = {x: Fraction(1, 3) + Fraction(1, 10**300)}
    side = sp.log(3 * x - 1)
    with pytest.raises(Undefined):
        numeric.enclose(side, at, 100)
    assert numeric.enclose(side, at, 400) < 0
