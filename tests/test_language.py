import pytest
import sympy as sp

from derive.language import LanguageError, parse, uses_literal_index
from derive.model import Model, g, x


@pytest.fixture
def model():
    return Model(3)


def test_sum_over_all_and_over_k_not_i(model):
    assert parse("sum(x[k], k)", model, {}) == x[1] + x[2] + x[3]
    assert parse("sum(x[k], k, ne=i)", model, {"i": 2}) == x[1] + x[3]


def test_sum_ne_must_name_a_free_index(model):
    with pytest.raises(LanguageError, match="must name a free index"):
        parse("sum(x[k], k, ne=q)", model, {"i": 1})


def test_numbers_are_exact_rationals(model):
    assert parse("1/2 + 1/n", model, {}) == sp.Rational(5, 6)


def test_kronecker_delta_and_free_indices(model):
    assert parse("delta(i, j)*g[j]", model, {"i": 2, "j": 2}) == g[2]
    assert parse("delta(i, j)", model, {"i": 1, "j": 2}) == 0


def test_unknown_name_is_an_error_not_a_symbol(model):
    with pytest.raises(LanguageError, match="unknown symbol 'foo'"):
        parse("x[i] + foo", model, {"i": 1})


def test_no_builtins_reachable(model):
    with pytest.raises(LanguageError, match="unknown symbol '__import__'"):
        parse("__import__('os')", model, {})
    with pytest.raises(LanguageError, match="unknown symbol 'open'"):
        parse("open('/etc/passwd')", model, {})


def test_names_follow_the_model(model):
    with pytest.raises(LanguageError, match="unknown symbol 'dy'"):
        parse("dy[i]", model, {"i": 1})
    with pytest.raises(LanguageError, match="unknown symbol 'eps'"):
        parse("sigma + eps", model, {})
    layer = Model(3, kind="layer", with_eps=True)
    assert parse("gamma*dy[i]", layer, {"i": 1}) != 0


def test_unbound_index_is_an_error(model):
    with pytest.raises(LanguageError, match=r"index j in g\[j\] is not bound by a sum"):
        parse("g[j]", model, {"i": 1})
    with pytest.raises(LanguageError, match="outside 1..3"):
        parse("x[4]", model, {})


def test_sum_needs_an_index(model):
    with pytest.raises(LanguageError, match="sum index"):
        parse("sum(x[k], 2)", model, {})


def test_syntax_error_is_reported(model):
    with pytest.raises(LanguageError, match="cannot parse"):
        parse("x[i] +", model, {"i": 1})
    with pytest.raises(LanguageError, match="non-empty"):
        parse("  ", model, {})


def test_literal_index_detection():
    assert not uses_literal_index("sum(g[j]*D(xhat[j], x[i]), j)")
    assert uses_literal_index("x[1] + x[i]")
    assert uses_literal_index("delta(i, 2)")
