"""derive.emits: the [emit] table, each refusal naming the file and the field."""

from __future__ import annotations

import re
import tomllib

import pytest
from conftest import DOCUMENTS

from derive.claims import ClaimFileError, from_dict
from derive.cli import EXIT_BAD_INPUT, main
from derive.emits import LAYOUTS

LAYERNORM = DOCUMENTS / "layernorm.toml"


def data():
    return tomllib.loads(LAYERNORM.read_text(encoding="utf-8"))


def test_the_shipped_table_loads():
    doc = from_dict(data(), LAYERNORM)
    assert doc.emit.module == "layernorm" and doc.emit.template == LAYOUTS["trailing"]
    assert [f.name for f in doc.emit.formulas] == [
        "_root_squared",
        "_y",
        "_dgamma",
        "_dbeta",
        "_dx",
    ]


def edit(change):
    d = data()
    change(d["emit"])
    return d


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda e: e.update(layout="columns"), "emit.layout", "expected one of"),
        # "rows" is a layout, whose table has no mean, root or inverse
        (lambda e: e.update(layout="rows"), "emit.inverse", "unknown field"),
        (lambda e: e.update(module="../x"), "emit.module", "expected a Python name"),
        (
            lambda e: e.update(mean="x"),
            "emit.mean",
            "expected a statistic or a scalar input of the model",
        ),
        (lambda e: e.pop("inverse"), "emit.inverse", "expected a Python name"),
        (lambda e: e.update(extra=1), "emit.extra", "unknown field"),
        (lambda e: e.update(formulas=[]), "emit.formulas", "at least one"),
        (lambda e: e["formulas"][0].update(claim="nope"), "emit.formulas[1].claim", "claim id"),
        (lambda e: e["formulas"][1].update(name="y"), "emit.formulas[2].name", "start with _"),
        (
            lambda e: e["formulas"][1].update(name="_root_squared"),
            "emit.formulas[2].name",
            "already",
        ),
        (lambda e: e["formulas"][0].update(form="sum"), "emit.formulas[1].form", "expected one of"),
        (
            lambda e: e["formulas"][0].update(coefficients=["a"]),
            "emit.formulas[1].coefficients",
            "a value has no coefficients",
        ),
        (
            lambda e: e["formulas"][4].update(coefficients=[]),
            "emit.formulas[5].coefficients",
            "needs coefficient names",
        ),
        (
            lambda e: e["formulas"][4].update(coefficients=["a", "a", "m"]),
            "emit.formulas[5].coefficients",
            "must differ",
        ),
        (lambda e: e["formulas"][0].update(doc='x"""'), "emit.formulas[1].doc", "one line"),
    ],
)
def test_refusals_name_file_and_field(change, field, message):
    with pytest.raises(ClaimFileError, match=message) as info:
        from_dict(edit(change), LAYERNORM)
    assert info.value.field == field
    assert str(LAYERNORM) in str(info.value)


# -- the rows and elementwise layouts: names and constants ------------------------------
ACTIVATIONS = DOCUMENTS / "activations.toml"
SOFTMAX = DOCUMENTS / "softmax.toml"


def edit_at(path, change):
    d = tomllib.loads(path.read_text(encoding="utf-8"))
    change(d["emit"])
    return d


def test_the_shipped_names_and_constants_load():
    act = from_dict(edit_at(ACTIVATIONS, lambda e: None), ACTIVATIONS)
    assert act.emit.layout == "elementwise" and act.emit.template == LAYOUTS["elementwise"]
    assert dict(act.emit.names) == {"z": "x", "s": "s", "th": "th", "u": "u", "tu": "tu"}
    assert act.emit.constants == (("c", 0.7978845608028654),)
    assert (act.emit.mean, act.emit.root, act.emit.inverse) == ("", "", "")
    sm = from_dict(edit_at(SOFTMAX, lambda e: None), SOFTMAX)
    assert dict(sm.emit.names) == {"z": "x", "g": "dy", "p": "y", "c": "shift"}
    assert sm.emit.constants == ()  # constants are optional
    exact = from_dict(edit_at(ACTIVATIONS, lambda e: e["constants"].update(c=1)), ACTIVATIONS)
    assert exact.emit.constants == (("c", 1.0),) and isinstance(exact.emit.constants[0][1], float)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda e: e["names"].update(foo="y"), "emit.names.foo", "not an input or node"),
        (lambda e: e["names"].update(z="1x"), "emit.names.z", "expected a Python name, got '1x'"),
        (lambda e: e["names"].update(z="x-y"), "emit.names.z", "expected a Python name"),
        (lambda e: e["names"].update(z="_x"), "emit.names.z", "expected a Python name, got '_x'"),
        (lambda e: e["names"].update(z=3), "emit.names.z", "expected a Python name, got 3"),
        (lambda e: e["names"].update(z="np"), "emit.names.z", "'np' is already taken"),
        (lambda e: e["names"].update(z="row"), "emit.names.z", "'row' is already taken"),
        (lambda e: e["names"].update(z="n"), "emit.names.z", "'n' is already taken"),
        (lambda e: e["names"].update(s="x"), "emit.names.s", "'x' is already taken"),  # z's
        (lambda e: e["names"].update(c="k"), "emit.names.c", "also in emit.constants"),
        (lambda e: e.update(names={}), "emit.names", "expected a table"),
        (lambda e: e.update(names="x"), "emit.names", "expected a table"),
        (lambda e: e.pop("names"), "emit.names", "expected a table"),
        (lambda e: e["constants"].update(z=1.0), "emit.constants.z", "not a scalar input"),
        (lambda e: e["constants"].update(s=1.0), "emit.constants.s", "not a scalar input"),
        (lambda e: e["constants"].update(q=1.0), "emit.constants.q", "not a scalar input"),
        (
            lambda e: e["constants"].update(c=float("nan")),
            "emit.constants.c",
            "expected a finite number, got nan",
        ),
        (
            lambda e: e["constants"].update(c=float("inf")),
            "emit.constants.c",
            "expected a finite number, got inf",
        ),
        (
            lambda e: e["constants"].update(c=float("-inf")),
            "emit.constants.c",
            "expected a finite number, got -inf",
        ),
        (
            lambda e: e["constants"].update(c="0.79"),
            "emit.constants.c",
            "expected a finite number, got '0.79'",
        ),
        (
            lambda e: e["constants"].update(c=True),
            "emit.constants.c",
            "expected a finite number, got True",
        ),
        (lambda e: e.update(constants=[0.5]), "emit.constants", "expected a table"),
        # the norm layouts' fields are not the rows layouts'
        (lambda e: e.update(mean="u"), "emit.mean", "unknown field"),
        (lambda e: e.update(root="u"), "emit.root", "unknown field"),
        (lambda e: e.update(inverse="inv"), "emit.inverse", "unknown field"),
        (lambda e: e["formulas"][0].update(form="terms"), "emit.formulas[1].form", "'element'"),
        (
            lambda e: e["formulas"][0].update(coefficients=["a"]),
            "emit.formulas[1].coefficients",
            "a value has no coefficients",
        ),
    ],
)
def test_names_and_constants_refusals_name_file_and_field(change, field, message):
    with pytest.raises(ClaimFileError, match=re.escape(message)) as info:
        from_dict(edit_at(ACTIVATIONS, change), ACTIVATIONS)
    assert info.value.field == field
    assert str(info.value).startswith(f"{ACTIVATIONS}, field {field!r}: ")


@pytest.mark.parametrize(("key", "value"), [("names", {"x": "x"}), ("constants", {"eps": 1e-5})])
def test_a_norm_layout_refuses_names_and_constants(key, value):
    with pytest.raises(ClaimFileError, match="unknown field") as info:
        from_dict(edit(lambda e: e.update({key: value})), LAYERNORM)
    assert info.value.field == f"emit.{key}"
    assert str(LAYERNORM) in str(info.value)
    assert "names" not in str(info.value).split("allowed: ")[1]  # the norm keys only


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('names = { z = "x", s = "s"', 'names = { z = "x", foo = "s"', "emit.names.foo"),
        ('names = { z = "x",', 'names = { z = "np",', "emit.names.z"),
        ("constants = { c = 0.7978845608028654 }", "constants = { c = nan }", "emit.constants.c"),
        ("constants = { c = 0.7978845608028654 }", "constants = { z = 1.0 }", "emit.constants.z"),
    ],
)
def test_the_cli_reports_a_bad_emit_table_in_one_line(tmp_path, capsys, old, new, field):
    text = ACTIVATIONS.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "activations.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    assert main(["verify", str(path), "--n", "2"]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"error: {path}, field {field!r}: ")
    assert err.count("\n") == 1 and err.endswith("\n")  # one line
    assert "Traceback" not in err and captured.out == ""
