"""The memoised chain rule agrees with SymPy's diff, exactly, and its check can fail."""

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import chainrule
from derive.claims import load
from derive.model import Model
from tests.conftest import DOCUMENTS

x = sp.IndexedBase("x", real=True)
eps = sp.Symbol("eps", positive=True)
a = sp.Symbol("a", real=True)
k = sp.Symbol("k", integer=True)
N = sp.Symbol("N", integer=True, positive=True)
ATOMS = [x[1], x[2], x[3], eps, a, sp.Integer(2), sp.Rational(-1, 3)]


def _same(mine, theirs) -> bool:
    """Exact: the difference is 0 as a rational function of the atoms and exponentials
    (the two group a product's terms differently, so expanding alone is not enough)."""
    d = sp.expand(mine - theirs)
    return d == 0 or sp.cancel(sp.together(d)) == 0


def _expressions():
    leaves = st.sampled_from(ATOMS)

    def grow(inner):
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: p[0] + p[1]),
            st.tuples(inner, inner).map(lambda p: p[0] * p[1]),
            st.tuples(inner, st.sampled_from([-2, -1, 2, 3, sp.S.Half, -sp.S.Half])).map(
                lambda p: p[0] ** p[1]
            ),
            inner.map(sp.exp),
            inner.map(lambda u: sp.log(u**2 + 1)),
            st.tuples(inner, inner).map(lambda p: (p[0] ** 2 + 1) ** p[1]),
            inner.map(lambda u: u * sp.KroneckerDelta(k, 2)),
        )

    return st.recursive(leaves, grow, max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(_expressions(), st.sampled_from([x[1], x[2], eps, a]))
def test_random_expressions_agree_with_sympy(e, v):
    assert _same(chainrule.diff(e, v), sp.diff(e, v))


def _shipped_models():
    for path in sorted(DOCUMENTS.glob("*.toml")):
        document = load(path)
        for n in (2, 3):
            yield pytest.param(document, n, id=f"{path.stem}-{n}")


@pytest.mark.parametrize(("document", "n"), list(_shipped_models()))
def test_every_shipped_node_body_agrees_with_sympy(document, n):
    model = Model(document.model_for(n).spec, n)
    inputs = [
        model.families[v][c]
        for v in model.spec.indexed_inputs
        for c in (model.positions(v)[0], model.positions(v)[-1])
    ]
    inputs += [model.scalars[s] for s in model.spec.all_scalars]
    memo: dict = {}
    for node in model.nodes.values():
        if node.undefined:
            continue
        first = model.positions(node.name)[0] if node.indices else None
        body = model._substitute_indexed(node.body_at(first), model.node_bases_by_name)
        for v in inputs:
            shared = chainrule.diff(body, v, memo.setdefault(v, {}))
            assert _same(shared, sp.diff(body, v)), (node.name, v)
            assert shared == chainrule.diff(body, v)  # a shared memo changes nothing


def test_what_it_has_no_rule_for_goes_to_sympy():
    j = sp.Symbol("j", integer=True)
    total = sp.Sum(x[k] ** 2, (k, 1, N))
    assert chainrule.diff(total, x[j]) == sp.diff(total, x[j])
    assert chainrule.diff(x[k] * a, x[j]) == sp.diff(x[k] * a, x[j])  # a symbolic position
    assert chainrule.diff(sp.Abs(a) * eps, a) == sp.diff(sp.Abs(a) * eps, a)


def test_other_positions_and_constants_are_zero():
    assert chainrule.diff(x[2] * eps + sp.KroneckerDelta(k, 1), x[1]) == 0
    assert chainrule.diff(x[1] ** 2, x[1]) == 2 * x[1]
    assert chainrule.diff(a**eps, eps) == sp.diff(a**eps, eps)


def test_the_check_catches_a_wrong_rule(monkeypatch):
    e = sp.exp(x[1] ** 2 + eps) * sp.log(x[1] + 3)
    right = chainrule.diff(e, x[1])
    assert _same(right, sp.diff(e, x[1]))
    # exp's rule without the inner derivative: the comparison must notice.
    original = chainrule._Diff._rule

    def forgetful(self, node):
        if isinstance(node, sp.exp):
            return node
        return original(self, node)

    monkeypatch.setattr(chainrule._Diff, "_rule", forgetful)
    assert not _same(chainrule.diff(e, x[1]), sp.diff(e, x[1]))


def test_a_symbolic_model_keeps_sympy_s_diff():
    document = load(DOCUMENTS / "bn_backward.toml")
    model = document.model_for("n")
    assert model.symbolic
    e = model.families["x"][1] ** 2
    v = model.families["x"][1]
    assert model._diff(e, v) == sp.diff(e, v)
    assert not model._diff_memo  # nothing memoised for the general-n prover
