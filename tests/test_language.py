"""The claim language: a whitelisted syntax tree, translated to SymPy by hand."""

import pytest
import sympy as sp

from derive.language import (
    LanguageError,
    PositionError,
    parse,
    parse_side,
    positions_by_index_only,
)
from derive.model import Model
from derive.spec import from_table, preset

SEED = Model(preset("xhat", False), 3)
LAYER = Model(preset("layer", True), 3)
x, g = SEED.families["x"], SEED.families["g"]
DECLARED = frozenset(SEED.spec.declared)


@pytest.fixture
def model():
    return SEED


def test_sum_over_all_and_over_k_not_i(model):
    assert parse("sum(x[k], k)", model, {}) == x[1] + x[2] + x[3]
    assert parse("sum(x[k], k, ne=i)", model, {"i": 2}) == x[1] + x[3]


def test_sum_ne_must_name_a_free_index(model):
    with pytest.raises(LanguageError, match="must name a free index"):
        parse("sum(x[k], k, ne=q)", model, {"i": 1})


def test_numbers_are_exact_rationals(model):
    assert parse("1/2 + 1/n", model, {}) == sp.Rational(5, 6)
    # floats are the exact rational of their decimal text
    assert parse("1./n + 0.1", model, {}) == sp.Rational(1, 3) + sp.Rational(1, 10)
    assert parse("sigma**(-1.0)", model, {}) == 1 / model.scalars["sigma"]
    assert parse("2.5e-1", model, {}) == sp.Rational(1, 4)


def test_kronecker_delta_and_free_indices(model):
    assert parse("delta(i, j)*g[j]", model, {"i": 2, "j": 2}) == g[2]
    assert parse("delta(i, j)", model, {"i": 1, "j": 2}) == 0


def test_unknown_name_is_an_error_not_a_symbol(model):
    with pytest.raises(LanguageError, match="unknown symbol 'foo'"):
        parse("x[i] + foo", model, {"i": 1})


def test_names_follow_the_model(model):
    with pytest.raises(LanguageError, match="unknown symbol 'dy'"):
        parse("dy[i]", model, {"i": 1})
    with pytest.raises(LanguageError, match="unknown symbol 'eps'"):
        parse("sigma + eps", model, {})
    assert parse("gamma*dy[i]", LAYER, {"i": 1}) != 0


def test_unbound_index_is_an_error(model):
    with pytest.raises(LanguageError, match=r"index j in g\[j\] is not bound by a sum"):
        parse("g[j]", model, {"i": 1})
    with pytest.raises(PositionError, match="position 4, which does not exist at n = 3"):
        parse("x[4]", model, {})
    with pytest.raises(LanguageError, match="positions start at 1"):
        parse("x[0]", model, {})


def test_positions_beyond_n_are_not_applicable_even_when_differentiated(model):
    with pytest.raises(PositionError):
        parse("D(mu, x[n + 1])", model, {})
    with pytest.raises(PositionError):
        parse("sum(x[k + 1], k)", model, {})


def test_a_rebound_index_is_refused(model):
    with pytest.raises(LanguageError, match="already bound"):
        parse("sum(sum(x[k], k)*x[k], k)", model, {})


def test_sum_needs_an_index(model):
    with pytest.raises(LanguageError, match="sum index"):
        parse("sum(x[k], 2)", model, {})


def test_syntax_error_is_reported(model):
    with pytest.raises(LanguageError, match="cannot parse"):
        parse("x[i] +", model, {"i": 1})
    with pytest.raises(LanguageError, match="non-empty"):
        parse("  ", model, {})


HOSTILE = [
    ("d.__globals__['__builtins__']", "not allowed"),
    ("().__class__.__base__.__subclasses__()", "attribute access"),
    ("'x[1]'", "a string"),
    ("sum('__import__(\"os\")', k)", "a string"),
    ("__import__('os')", "unknown function"),
    ("open('/etc/passwd')", "unknown function"),
    ("lambda: 1", "a lambda"),
    ("[x[1] for k in n]", "a comprehension"),
    ("[0]*10", "a list"),
    ("{1: 2}", "a dict"),
    ("x[1] if 1 else 2", "a conditional"),
    ("x[1] < 2", "a comparison"),
    ("sum(x[k], k, start=1)", "keyword start="),
    ("sum(x[k], k, **{'ne': 1})", "keyword"),
    ("D(*[x[1], x[1]])", "a starred"),
    ("10**10**10", "exponent"),
    ("sigma**(10**6)", "exponent"),
    ("x[1]**x[1]", "an exponent must be a number"),
    ("x[1]**(1/3)", "half-integer"),
    ("1" * 40, "longer than 30 digits"),
    ("1e999", "exponent beyond"),
    ("sqrt(" * 60 + "1" + ")" * 60, "nested deeper"),
    ("-" * 100 + "1", "nested deeper"),
    ("x[1] + " * 800 + "1", "too long"),
    ("1/0", "division by zero"),
    ("x[1] & 2", "operator"),
    ("not x[1]", "operator"),
    ("x[1:2]", "a slice"),
    ("x[1.5]", "not an index expression"),
    ("x", "indexed"),
    ("d", "is a function"),
    ("True", "not allowed"),
    ("1j", "not allowed"),
    ("x[1]\x00", "control characters"),
    ("sum(x[k], mu)", "sum index"),
    ("D(x[1], 2)", "cannot differentiate"),
]


@pytest.mark.parametrize("text, message", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_sides_are_refused_without_running_anything(model, text, message):
    with pytest.raises(LanguageError, match=message):
        parse(text, model, {})


def test_positions_by_index_only():
    assert positions_by_index_only("sum(g[j]*D(xhat[j], x[i]), j)", DECLARED)
    assert positions_by_index_only("delta(i, j)/n + sum(x[k], k, ne=i)", DECLARED)
    for text in ("x[1] + x[i]", "delta(i, 2)", "delta(i, n)", "x[n]", "x[i + 1]", "i*x[i]"):
        assert not positions_by_index_only(text, DECLARED), text


def test_parse_side_records_what_it_names_and_divides_by(model):
    _, touched, divisors, _ = parse_side("sum(g[k]*xhat[k], k)/sigma", model, {})
    xhat = model.families["xhat"]
    assert touched == {xhat[1], xhat[2], xhat[3], model.scalars["sigma"]}
    assert divisors == (model.scalars["sigma"],)


def test_representatives_one_per_orbit():
    from derive.language import representatives

    assert representatives("all") == [{}]
    assert representatives("all i") == [{"i": 1}]
    assert representatives("all i, j") == [{"i": 1, "j": 1}, {"i": 1, "j": 2}]
    assert representatives("i = j") == [{"i": 1, "j": 1}]
    assert representatives("i != j") == [{"i": 1, "j": 2}]


EXPLOG = Model(from_table({"vectors": ["x", "z"], "positive": ["c"]}), 3)


def test_exp_and_log_anywhere_in_an_expression():
    x, z = EXPLOG.families["x"], EXPLOG.families["z"]
    c = EXPLOG.scalars["c"]
    assert parse("exp(x[1])*log(c) + sum(exp(-z[k]), k)", EXPLOG, {}) == sp.exp(x[1]) * sp.log(
        c
    ) + sum(sp.exp(-z[k]) for k in (1, 2, 3))
    assert parse("exp(log(c))", EXPLOG, {}) == c


def test_parse_side_records_where_a_side_is_defined():
    x = EXPLOG.families["x"]
    *_, conditions = parse_side("log(x[1]) + sum(sqrt(x[k]), k) + x[2]**(3/2)", EXPLOG, {})
    assert ("positive", x[1]) in conditions
    assert {("nonnegative", x[k]) for k in (1, 2, 3)} <= set(conditions)
    # SymPy reads exp(log(x)) as x: the condition is what remembers x > 0
    expr, *_, conditions = parse_side("exp(log(x[1]))", EXPLOG, {})
    assert expr == x[1] and conditions == (("positive", x[1]),)


@pytest.mark.parametrize(
    "text, message",
    [
        ("log(0)", "no real value"),
        ("log(-2)", "no real value"),
        ("sqrt(-4)", "no real value"),
        ("sqrt(-exp(x[1]))", "no real value"),
        ("exp(x[1], 2)", "takes 1 argument"),
        ("log()", "takes 1 argument"),
        ("exp(x[1])**x[2]", "an exponent must be a number"),
        ("exp", "is a function"),
    ],
)
def test_bad_exp_and_log_are_refused(text, message):
    with pytest.raises(LanguageError, match=message):
        parse(text, EXPLOG, {})


def test_a_log_of_the_size_that_is_not_positive_is_not_applicable():
    at_1 = Model(EXPLOG.spec, 1)
    with pytest.raises(PositionError, match="logarithm of 0"):
        parse("log(n - 1)", at_1, {})
    assert parse("log(n - 1)", EXPLOG, {}) == sp.log(2)


def test_the_walk_of_a_side_meets_every_subexpression_of_the_tree():
    from derive.language import _unique_nodes

    model = Model(preset("xhat", False), 4)
    e = parse("sum(g[j]*D(xhat[j], x[1]), j)/sigma + log(2)", model, {})
    nodes = list(_unique_nodes(e))
    assert set(nodes) == set(sp.preorder_traversal(e))
    assert len(nodes) == len({id(a) for a in nodes})  # each object once
