"""The declared graph: definitions, the one-level partial d and the adjoint D."""

import pytest
import sympy as sp

from derive.language import N_SYMBOL, index_symbol, parse
from derive.model import Model, ModelError
from derive.spec import ModelSpec, NodeSpec, SpecError, from_table, preset

SEED = preset("xhat", False)
LAYER = preset("layer", True)

PAPER = from_table(
    {
        "size": "m",
        "vectors": ["x", "dy"],
        "scalars": ["gamma", "beta"],
        "nonnegative": ["eps"],
        "nodes": [
            "mu = sum(x[k], k)/m",
            "var = sum((x[k] - mu)**2, k)/m",
            "xhat[i] = (x[i] - mu)/sqrt(var + eps)",
            "y[i] = gamma*xhat[i] + beta",
            "L = sum(dy[k]*y[k], k)",
        ],
    }
)


def _x(model):
    return model.families["x"]


def test_graph_partial_holds_mu_and_sigma_fixed():
    m = Model(SEED, 3)
    x, xhat = _x(m), m.families["xhat"]
    mu, sigma = m.scalars["mu"], m.scalars["sigma"]
    assert m.partial(xhat[2], x[1]) == 0
    assert m.partial(xhat[1], x[1]) == 1 / sigma
    assert sp.simplify(m.partial(xhat[1], sigma) + (x[1] - mu) / sigma**2) == 0
    assert m.partial(mu, x[2]) == sp.Rational(1, 3)


def test_adjoint_against_finite_differences():
    m = Model(SEED, 3)
    x, xhat = _x(m), m.families["xhat"]
    total = m.expand(m.adjoint(xhat[2], x[1]))
    xs = [sp.Rational(1), sp.Rational(4), sp.Rational(-2)]
    exact = total.xreplace({x[c + 1]: xs[c] for c in range(3)})

    def xhat2(x1):
        v = [x1, xs[1], xs[2]]
        mn = sum(v) / 3
        return (v[1] - mn) / sp.sqrt(sum((a - mn) ** 2 for a in v) / 3)

    h = sp.Rational(1, 10**8)
    fd = (xhat2(xs[0] + h) - xhat2(xs[0] - h)) / (2 * h)
    assert abs(float(exact - fd)) < 1e-12


def test_second_derivatives_by_a_node_are_not_counted_twice():
    # D(D(sigma**2, mu), mu) = 2 and D(D(sigma, mu), mu) = 1/sigma at mu = mean(x):
    # the old chain rule added the var-through-mu path twice.
    m = Model(SEED, 4)
    mu, sigma = m.scalars["mu"], m.scalars["sigma"]
    assert sp.simplify(m.adjoint(m.adjoint(sigma**2, mu), mu)) == 2
    second = m.expand(m.adjoint(m.adjoint(sigma, mu), mu))
    x = _x(m)
    point = {x[1]: 1, x[2]: 3, x[3]: -2, x[4]: 7}
    value = second.xreplace(point)
    sd = m.expand(sigma).xreplace(point)
    assert sp.simplify(value - 1 / sd) == 0


def test_adjoint_by_a_variance_node_is_the_papers_dl_dvar():
    m = Model(PAPER, 3)
    x, dy = _x(m), m.families["dy"]
    mu, var, eps, gamma = (m.scalars[s] for s in ("mu", "var", "eps", "gamma"))
    got = m.adjoint(m.scalars["L"], var)
    want = sum(
        dy[c] * gamma * (x[c] - mu) * sp.Rational(-1, 2) * (var + eps) ** sp.Rational(-3, 2)
        for c in (1, 2, 3)
    )
    assert sp.simplify(got - want) == 0


def test_descendants_follow_the_declaration():
    m = Model(PAPER, 3)
    assert m.descendants("var") == {"xhat", "y", "L"}
    assert m.descendants("mu") == {"var", "xhat", "y", "L"}
    assert m.descendants("dy") == {"L"}
    assert m.descendants("L") == frozenset()


def test_definitions_never_capture_a_claims_index():
    # d(mu, x[k]) inside a sum over k, for symbolic n: the mean's own
    # summation index must not be the claim's k (that gave Σ_k 1 = n).
    m = Model(SEED, N_SYMBOL)
    k = index_symbol("k")
    d = m.partial(m.scalars["mu"], _x(m)[k])
    assert d.has(sp.KroneckerDelta)
    assert not sp.Sum(d, (k, 1, N_SYMBOL)).doit().has(N_SYMBOL**2)


def test_root_nodes_are_declared_by_sqrt():
    m = Model(SEED, N_SYMBOL)
    assert m.nodes["sigma"].kind.name == "sqrt"  # not split into sqrt(Sum)/sqrt(n)
    assert m.nodes["mu"].kind.name == "explicit"


def test_statistics_and_graph_form():
    m = Model(LAYER, 3)
    assert m.statistics == {"mu", "sigma"}  # sigma_p is computed from the node p
    y = m.families["y"]
    e = m.graph_form(y[1])
    assert e.free_symbols >= {m.scalars["mu"], m.scalars["sigma"], m.scalars["gamma"]}


def test_symmetric_only_without_literal_positions():
    assert Model(SEED, 3).symmetric
    first = ModelSpec(vectors=("x",), nodes=(NodeSpec("a", None, "x[1]*2", "model.nodes[1]"),))
    assert not Model(first, 3).symmetric
    shifted = ModelSpec(vectors=("x",), nodes=(NodeSpec("z", "i", "x[i] + i", "model.nodes[1]"),))
    assert not Model(shifted, 3).symmetric


def test_bad_variable_and_n():
    with pytest.raises(ModelError, match="positive"):
        Model(SEED, 0)
    m = Model(SEED, 3)
    x = _x(m)
    with pytest.raises(ModelError, match="cannot differentiate"):
        m.partial(m.families["xhat"][1], x[1] + x[2])


@pytest.mark.parametrize(
    "table, field, message",
    [
        ({"size": "n", "nodes": ["mu = foo"]}, "model.nodes[1]", "unknown symbol 'foo'"),
        ({"vectors": ["x"], "nodes": ["a = b", "b = x[1]"]}, "model.nodes[1]", "unknown"),
        ({"vectors": ["x", "x"]}, "model.vectors[2]", "already declared"),
        ({"vectors": ["sum"]}, "model.vectors[1]", "reserved"),
        ({"vectors": ["x"], "nodes": ["mu x"]}, "model.nodes[1]", "expected 'name = expr'"),
        ({"vectors": ["x"], "nodes": ["mu = x[k]"]}, "model.nodes[1]", "not bound by a sum"),
        ({"vectors": ["x"], "nodes": ["mu = D(x[1], x[1])"]}, "model.nodes[1]", "derivatives"),
        ({"colour": "red"}, "model.colour", "unknown key"),
        ({"vectors": "x"}, "model.vectors", "list of strings"),
        # n is the symbolic size's symbol whatever the size is called: an index n
        # would be that symbol, and Σ_n would run up to its own index.
        ({"size": "m", "vectors": ["x"], "nodes": ["y[n] = x[n]"]}, "model.nodes[1]", "reserved"),
        ({"size": "m", "vectors": ["x"], "nodes": ["s = sum(x[n], n)"]}, "model.nodes[1]", "re"),
    ],
)
def test_bad_declarations_name_their_field(table, field, message):
    with pytest.raises(SpecError, match=message) as info:
        Model(from_table(table), 3)
    assert info.value.field == field


def test_parse_reads_sides_over_a_declared_model():
    m = Model(PAPER, 4)
    assert parse("sum(x[k], k)/m", m, {}) == sum(_x(m)[c] for c in range(1, 5)) / 4


# -- exp and log nodes, positive inputs, constraints ----------------------------------------
SOFTMAX = from_table(
    {
        "vectors": ["z", "t"],
        "positive": ["c"],
        "constraints": ["sum(t[k], k) = 1"],
        "nodes": [
            "Z = sum(exp(z[k]), k)",
            "e[i] = exp(z[i])",
            "lse = log(Z)",
            "p[i] = e[i]/Z",
            "C = -sum(t[k]*log(p[k]), k)",
        ],
    }
)


def test_exp_and_log_nodes_have_their_kinds_and_derivatives():
    from derive.nodes import EXP, EXPLICIT, LOG

    m = Model(SOFTMAX, 3)
    kinds = {name: node.kind for name, node in m.nodes.items()}
    assert kinds == {"Z": EXPLICIT, "e": EXP, "lse": LOG, "p": EXPLICIT, "C": EXPLICIT}
    z, e = m.families["z"], m.families["e"]
    lse, Z = m.scalars["lse"], m.scalars["Z"]
    assert sp.simplify(m.expand(m.adjoint(e[2], z[2]) - sp.exp(z[2]))) == 0
    assert sp.simplify(m.expand(m.adjoint(lse, Z) - 1 / Z)) == 0
    assert m.nodes["lse"].kind.domain == "positive"
    assert m.nodes["p"].conditions == ()


def test_adjoint_through_exp_and_log_against_finite_differences():
    m = Model(SOFTMAX, 3)
    z, t = m.families["z"], m.families["t"]
    total = m.expand(m.adjoint(m.scalars["C"], z[1]))
    zs = [sp.Rational(1, 2), sp.Rational(-1), sp.Rational(2)]
    ts = [sp.Rational(1, 5), sp.Rational(3, 10), sp.Rational(1, 2)]
    at = {**{z[c + 1]: zs[c] for c in range(3)}, **{t[c + 1]: ts[c] for c in range(3)}}

    def loss(z1):
        v = [z1, zs[1], zs[2]]
        total = sum(sp.exp(a) for a in v)
        return -sum(tk * sp.log(sp.exp(a) / total) for tk, a in zip(ts, v, strict=True))

    h = sp.Rational(1, 10**8)
    fd = (loss(zs[0] + h) - loss(zs[0] - h)) / (2 * h)
    assert abs(sp.N(total.xreplace(at) - fd, 30)) < 1e-12


def test_positive_inputs_and_solved_constraints():
    m = Model(SOFTMAX, 3)
    assert m.scalars["c"].is_positive and m.families["t"][1].is_real
    t = m.families["t"]
    assert m.solved == ((t[3], 1 - t[1] - t[2]),)
    assert m.constrained == {"t"}
    assert m.symmetric
    pinned = from_table({"vectors": ["t"], "constraints": ["t[1] = 0"]})
    assert not Model(pinned, 3).symmetric
    vector = from_table({"vectors": ["w"], "positive": ["w"]})
    assert Model(vector, 2).families["w"][1].is_positive


@pytest.mark.parametrize(
    "table, field, message",
    [
        ({"vectors": ["t"], "constraints": ["t[1]"]}, "model.constraints[1]", "one equality"),
        ({"vectors": ["t"], "constraints": ["t[1] = 1 = 2"]}, "model.constraints[1]", "one equal"),
        ({"vectors": ["t"], "constraints": [" = 1"]}, "model.constraints[1]", "one equality"),
        (
            {"vectors": ["t"], "nodes": ["s = t[1]"], "constraints": ["s = 1"]},
            "model.constraints[1]",
            "unknown",
        ),
        ({"vectors": ["t"], "constraints": ["D(t[1], t[1]) = 1"]}, "model.constraints[1]", "deriv"),
        ({"vectors": ["t"], "constraints": ["exp(t[1]) = 1"]}, "model.constraints[1]", "polynom"),
        ({"vectors": ["t"], "constraints": ["t[1]**2 = 1"]}, "model.constraints[1]", "cannot"),
        ({"vectors": ["t"], "constraints": ["0 = 1"]}, "model.constraints[1]", "never holds"),
        ({"vectors": ["t"], "constraints": ["t[5] = 1"]}, "model.constraints[1]", "every n"),
        ({"positive": ["c", "c"]}, "model.positive[2]", "already"),
        ({"positive": ["exp"]}, "model.positive[1]", "reserved"),
        ({"scalars": ["c"], "positive": ["c"]}, "model.positive[1]", "already declared"),
        ({"vectors": ["x"], "nodes": ["q = log(0)"]}, "model.nodes[1]", "no real value"),
    ],
)
def test_bad_positive_and_constraint_declarations_name_their_field(table, field, message):
    with pytest.raises(SpecError, match=message) as info:
        Model(from_table(table), 3)
    assert info.value.field == field


def test_a_concrete_sum_instantiates_its_summand_as_xreplace_does():
    import random

    from derive.model import _at

    x, k, j = sp.IndexedBase("x"), sp.Symbol("k"), sp.Symbol("j")
    leaves = [k, j, x[k], x[j], x[2], sp.Integer(3), sp.Rational(1, 2)]
    inner = sp.Add(*[x[v] * x[j] for v in range(1, 5)])  # expanded already, no k
    rng = random.Random(7)

    def tree(depth):
        if depth == 0:
            return rng.choice([*leaves, inner])
        op = rng.choice([sp.Add, sp.Mul, sp.Pow, sp.sqrt, sp.exp, sp.KroneckerDelta])
        if op is sp.Pow:
            return tree(depth - 1) ** rng.choice([-1, 2])
        if op in (sp.sqrt, sp.exp):
            return op(tree(depth - 1))
        if op is sp.KroneckerDelta:
            return op(rng.choice([k, j, 1]), rng.choice([k, 2]))
        return op(*(tree(depth - 1) for _ in range(rng.randint(2, 3))))

    holds: dict = {}  # shared across summands, as Model.sum shares it
    for _ in range(200):
        f = tree(3)
        for v in (1, 2, 5):
            assert _at(f, k, sp.Integer(v), holds) == f.xreplace({k: sp.Integer(v)})
    model = Model(SEED, 5)
    body = "xhat[k]*sum(xhat[j]*g[j], j)"
    total = parse(f"sum({body}, k)", model, {})
    assert total == sp.Add(*[parse(body, model, {"k": v}) for v in range(1, 6)])
