"""The exact engine on exp and log: generators are shared where the identities
are sound, kept apart where they are not, and constraints are substituted."""

import pytest

from derive.exact import Field
from derive.language import parse
from derive.model import Model
from derive.nodes import Undefined
from derive.spec import from_table


def _field(table, n=2):
    model = Model(from_table(table), n)
    return model, Field(model)


def _equal(field, model, a, b):
    return field.equal(field.form(parse(a, model, {})), field.form(parse(b, model, {})))


def test_exponentials_of_sums_and_rational_multiples_share_generators():
    model, field = _field({"scalars": ["a", "b"]})
    assert _equal(field, model, "exp(a + b)", "exp(a)*exp(b)")
    assert _equal(field, model, "exp(0.044715*a)**3", "exp(0.134145*a)")
    gens = [r for r in field.roots if r.key[0] == "exp"]
    # exp(a), exp(b), exp(0.044715 a): not exp(a/200000) to the 8943rd power
    assert len(gens) == 3
    assert not _equal(field, model, "exp(a)", "exp(b)")


def test_logs_split_only_through_absolute_values():
    model, field = _field({"scalars": ["x", "y"], "positive": ["c"]})
    # log(x y) = log|x| + log|y|: equal to log(x) + log(y) wherever both are defined
    assert _equal(field, model, "log(x*y)", "log(x) + log(y)")
    assert _equal(field, model, "log(c**3)", "3*log(c)")
    assert _equal(field, model, "log(exp(x)*c)", "x + log(c)")
    assert _equal(field, model, "log(6)", "log(2) + log(3)")
    # exp(log f) = f needs f > 0: for a real x it is |x|, a new generator
    assert not _equal(field, model, "exp(log(x**2)/2)", "x")
    assert _equal(field, model, "exp(log(c**2)/2)", "c")


def test_roots_of_positive_squares_come_out_and_others_stay():
    model, field = _field({"scalars": ["x", "z"], "positive": ["c"]})
    assert _equal(field, model, "sqrt((exp(z) + c)**2)", "exp(z) + c")
    assert _equal(field, model, "sqrt(exp(2*z)*(x**2 + exp(z))**2)", "exp(z)*(x**2 + exp(z))")
    assert not _equal(field, model, "sqrt((exp(z) - c)**2)", "exp(z) - c")
    assert not _equal(field, model, "sqrt(x**2*exp(2*z))", "x*exp(z)")


def test_constraints_are_substituted_and_keep_the_vector_uncentred():
    table = {
        "vectors": ["t"],
        "constraints": ["sum(t[k], k) = 1"],
        "nodes": ["m = sum(t[k], k)/n"],  # a mean node: t would be centred without the constraint
    }
    model, field = _field(table, n=3)
    assert field.centred == {}
    assert _equal(field, model, "t[3]", "1 - t[1] - t[2]")
    assert _equal(field, model, "m", "1/3")
    free = Model(from_table({"vectors": ["t"], "nodes": table["nodes"]}), 3)
    assert Field(free).centred == {"t": "m"}
    assert not _equal(Field(free), free, "m", "1/3")


def test_a_log_or_root_of_a_value_negative_everywhere_is_undefined():
    model, field = _field({"scalars": ["z", "x"]})
    for text in ("log(-exp(z) - x**2)", "log(-1 - exp(z))"):
        with pytest.raises(Undefined):
            field.form(parse(text, model, {}))
    assert field.form(parse("log(x**2 + exp(z))", model, {}))  # positive: defined


def test_lifting_to_a_ring_with_new_generators_is_sympys_set_ring():
    model, field = _field({"scalars": ["a", "b"]})
    old = field.form(parse("a*b/(3*a**2 + 1)", model, {}))
    ring = field.ring
    field.form(parse("sqrt(a**2 + 1) + exp(b)", model, {}))  # two new generators
    assert field.ring.ngens == ring.ngens + 2
    for p in old:
        assert field._lift(p) == p.set_ring(field.ring)
    # a remembered subexpression comes back in the current ring, equal to a fresh one
    again = field.form(parse("a*b/(3*a**2 + 1)", model, {}))
    assert all(p.ring is field.ring for p in again)
    assert field.equal(again, field.lift(old))


def test_lifting_from_a_ring_of_another_domain_or_order_is_sympys_set_ring():
    from sympy import QQ, ZZ
    from sympy.polys.rings import ring

    model, field = _field({"scalars": ["a", "b"]})
    field.form(parse("sqrt(a**2 + 1)", model, {}))
    symbols = field.ring.symbols
    for syms, domain in ((symbols, ZZ), (symbols[::-1], QQ), (symbols[1:], ZZ)):
        _, *gens = ring(syms, domain)
        p = 2 * gens[0] ** 2 * gens[-1] + 3
        assert field._lift(p) == p.set_ring(field.ring)
        assert field._lift(p).ring is field.ring


def test_a_denominator_that_divides_the_other_gives_the_same_verdicts():
    # _common keeps the larger denominator where one divides the other (softmax sides):
    # the same verdict as cross-multiplying, for true and false pairs alike.
    from derive.exact import _common

    model, field = _field({"vectors": ["y"], "nodes": ["L = 1"]}, n=3)
    z = "(y[1]**2 + y[2]**2 + 1)"
    pairs = [
        (f"y[1]/{z}**3 + y[2]/{z}", f"(y[1] + y[2]*{z}**2)/{z}**3", True),
        (f"y[1]/{z}**3", f"y[1]*{z}/{z}**4", True),
        (f"y[1]/{z}**3", f"y[1]/{z}**2", False),
        (f"(y[1] + 1)/{z}**2", f"y[1]/{z}**2 + 1/{z}**3", False),
    ]
    for a, b, holds in pairs:
        fa, fb = (field.form(parse(t, model, {})) for t in (a, b))
        assert field.equal(fa, fb) is holds, (a, b)
        (na, da), (nb, db) = fa, fb
        assert (field.reduce(na * db - nb * da) == 0) is holds
        ka, kb, d = _common(da, db)
        assert da * ka == d and db * kb == d
