"""derive/spec.py: the [model] table is read as data, and every malformed entry is
refused with the field that holds it."""

from __future__ import annotations

import pytest

from derive.spec import MAX_DECLARATIONS, SpecError, from_table, preset

GOOD = {
    "size": "m",
    "vectors": ["x", "g"],
    "positive": ["c"],
    "constraints": ["sum(x[k], k) = 0"],
    "nodes": ["mu = sum(x[k], k)/m", "y[i] = c*(x[i] - mu)", "L = sum(g[k]*y[k], k)"],
}


def test_a_declared_model_keeps_what_it_declares():
    spec = from_table(GOOD)
    assert spec.size == "m" and spec.vectors == ("x", "g")
    assert spec.positive_scalars == ("c",) and spec.all_scalars == ("c",)
    assert [(n.name, n.index, n.field) for n in spec.nodes] == [
        ("mu", None, "model.nodes[1]"),
        ("y", "i", "model.nodes[2]"),
        ("L", None, "model.nodes[3]"),
    ]
    assert spec.node("y").text == "c*(x[i] - mu)"
    assert spec.constraints[0].text == "sum(x[k], k) = 0"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"matrices": ["W"]}, "model.matrices", "unknown key"),
        ({"size": "2n"}, "model.size", "expected a name"),
        ({"vectors": "x"}, "model.vectors", "list of strings"),
        ({"vectors": ["x", "1y"]}, "model.vectors[2]", "expected a name"),
        ({"vectors": ["x", "x"]}, "model.vectors[2]", "already declared"),
        ({"vectors": ["x", "exp"]}, "model.vectors[2]", "reserved"),
        ({"vectors": ["x", "_g"]}, "model.vectors[2]", "reserved"),
        ({"nodes": ["mu: sum(x[k], k)"]}, "model.nodes[1]", "expected 'name = expr'"),
        ({"nodes": ["mu = "]}, "model.nodes[1]", "empty definition"),
        ({"nodes": ["y[x] = x[x]"]}, "model.nodes[1]", "is a declared name"),
        ({"nodes": ["y[n] = 1"]}, "model.nodes[1]", "reserved for the size"),
        ({"constraints": ["a = b = c"]}, "model.constraints[1]", "one equality"),
        ({"positive": ["c", "c"]}, "model.positive[2]", "already declared"),
        ({"scalars": ["s"] * (MAX_DECLARATIONS + 1)}, "model.scalars", "at most"),
    ],
)
def test_a_malformed_entry_names_its_field(change, field, message):
    with pytest.raises(SpecError, match=message) as err:
        from_table({**GOOD, **change})
    assert err.value.field == field


def test_presets_are_declared_in_the_same_form():
    spec = preset("layer", eps=True)
    assert spec.preset == "layer" and spec.has_eps and spec.vectors == ("x", "dy")
    assert spec.node("sigma").text == "sqrt(sum((x[k] - mu)**2, k)/n + eps)"
    with pytest.raises(SpecError) as err:
        preset("attention", eps=False)
    assert err.value.field == "document.model"
