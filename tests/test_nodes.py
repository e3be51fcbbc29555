"""The node-kind table: each kind's chain rule agrees with SymPy's derivative
of its function, and a kind whose rule is 0.05% wrong is caught by the
verifier, with a counterexample (as autograd's test_tests.py does for VJPs)."""

import dataclasses

import pytest
import sympy as sp

from derive import model as model_module
from derive import nodes
from derive.checking import verify_document
from derive.claims import from_dict, model_for
from derive.results import FAILS, HOLDS, UNDECIDED

u = sp.Symbol("u", positive=True)
x = sp.Symbol("x", real=True)
# A rule this far off is wrong; the checker must see it (autograd's bar).
SLIGHTLY_WRONG = 1 + sp.Rational(1, 2000)


@pytest.mark.parametrize("kind", list(nodes.KINDS.values()), ids=list(nodes.KINDS))
def test_chain_rule_is_the_derivative_of_the_function(kind):
    body = u**2 + x
    value = kind.function(body)
    s = sp.Symbol("s")
    chained = kind.chain(s, body, sp.diff(body, x)).subs(s, value)
    assert sp.simplify(chained - sp.diff(value, x)) == 0
    assert sp.simplify(kind.relation(value, body)) == 0


# kind name, node definition, a true claim about its derivative
DERIVATIVES = {
    "sqrt": ("q = sqrt(x[1]**2 + 1)", "x[1]/sqrt(x[1]**2 + 1)"),
    "exp": ("q = exp(x[1]**2)", "2*x[1]*exp(x[1]**2)"),
    "log": ("q = log(x[1]**2 + 1)", "2*x[1]/(x[1]**2 + 1)"),
}


def _document(definition, rhs, lhs="D(q, x[1])"):
    return from_dict(
        {
            "document": {"id": "t", "title": "T"},
            "model": {"vectors": ["x"], "nodes": [definition]},
            "claims": [
                {
                    "id": "c",
                    "title": "c",
                    "latex": "x",
                    "for": "all",
                    "lhs": lhs,
                    "rhs": rhs,
                }
            ],
        },
        "<test>",
    )


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_a_slightly_wrong_chain_rule_is_caught(name, monkeypatch):
    definition, rhs = DERIVATIVES[name]
    (right,) = verify_document(_document(definition, rhs), (1, 2)).claims
    assert right.status == HOLDS
    kind = nodes.KINDS[name]
    wrong = dataclasses.replace(
        kind, chain=lambda s, b, db, chain=kind.chain: chain(s, b, db) * SLIGHTLY_WRONG
    )
    monkeypatch.setitem(model_module._CALL_KINDS, name, wrong)
    model_for.cache_clear()  # models are cached per declaration
    (c,) = verify_document(_document(definition, rhs), (1, 2)).claims
    assert c.status == FAILS
    cx = c.first_failure.first_failure.counterexample
    assert cx is not None and cx.lhs != cx.rhs


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_a_wrong_value_is_caught_by_the_two_opinions(name, monkeypatch):
    # The numeric side computes a node from its kind's value; the exact side from
    # its function.  A value 0.05% off makes them disagree: never a verdict.
    definition, _ = DERIVATIVES[name]
    kind = nodes.KINDS[name]
    wrong = dataclasses.replace(
        kind,
        value=lambda m, b, value=kind.value: (
            value(m, b) * m.mpf(SLIGHTLY_WRONG.p) / SLIGHTLY_WRONG.q
        ),
    )
    monkeypatch.setitem(model_module._CALL_KINDS, name, wrong)
    model_for.cache_clear()  # models are cached per declaration
    body = definition.split("(", 1)[1][:-1]
    document = _document(definition, f"{name}({body})", lhs="q")
    (c,) = verify_document(document, (1,)).claims
    assert c.status == UNDECIDED, c.summary()
    assert "please report" in c.verdicts[0].reason


@pytest.fixture(autouse=True)
def _fresh_models():
    yield
    model_for.cache_clear()  # no model with a patched kind outlives its test
