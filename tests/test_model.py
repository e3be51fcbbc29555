import pytest
import sympy as sp

from derive.model import (
    INDEX,
    N_SYMBOL,
    Model,
    ModelError,
    mu,
    sigma,
    x,
    xhat,
)


def test_graph_partial_holds_mu_and_sigma_fixed():
    m = Model(3)
    assert m.partial(xhat[2], x[1]) == 0
    assert m.partial(xhat[1], x[1]) == 1 / sigma
    assert sp.simplify(m.partial(xhat[1], sigma) + (x[1] - mu) / sigma**2) == 0
    assert m.partial(mu, x[2]) == sp.Rational(1, 3)


def test_total_derivative_differs_from_partial():
    m = Model(3)
    total = m.to_x(m.total(xhat[2], x[1]))
    assert total != 0
    # against a finite difference of x̂ written with an explicit square root
    xs = [sp.Rational(1), sp.Rational(4), sp.Rational(-2)]
    mean = sum(xs) / 3
    sd = sp.sqrt(sum((v - mean) ** 2 for v in xs) / 3)
    values = {x[c + 1]: xs[c] for c in range(3)}
    exact = total.xreplace(values).xreplace({sigma: sd})

    def xhat2(x1):
        v = [x1, xs[1], xs[2]]
        mn = sum(v) / 3
        return (v[1] - mn) / sp.sqrt(sum((a - mn) ** 2 for a in v) / 3)

    h = sp.Rational(1, 10**8)
    fd = (xhat2(xs[0] + h) - xhat2(xs[0] - h)) / (2 * h)
    assert abs(float(exact - fd)) < 1e-12


def test_sigma_squared_is_the_biased_variance():
    m = Model(2)
    assert sp.expand(m.sigma_squared - (x[1] - x[2]) ** 2 / 4) == 0


def test_definitions_never_capture_a_claims_index():
    # d(mu, x[k]) inside a sum over k, for symbolic n: the mean's own
    # summation index must not be the claim's k (that gave Σ_k 1 = n).
    m = Model(N_SYMBOL)
    k = INDEX["k"]
    d = m.partial(mu, x[k])
    assert d.has(sp.KroneckerDelta)
    assert not sp.Sum(d, (k, 1, N_SYMBOL)).doit().has(N_SYMBOL**2)


def test_bad_model_and_variable():
    with pytest.raises(ModelError, match="unknown model kind"):
        Model(3, kind="conv")
    with pytest.raises(ModelError, match="positive"):
        Model(0)
    with pytest.raises(ModelError, match="cannot differentiate"):
        Model(3).partial(xhat[1], x[1] + x[2])
