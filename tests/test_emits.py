"""derive.emits: the [emit] table, each refusal naming the file and the field."""

from __future__ import annotations

import tomllib

import pytest
from conftest import DOCUMENTS

from derive.claims import ClaimFileError, from_dict
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
        (lambda e: e.update(layout="rows"), "emit.layout", "expected one of"),
        (lambda e: e.update(module="../x"), "emit.module", "expected a Python name"),
        (lambda e: e.update(mean="x"), "emit.mean", "expected a statistic of the model"),
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
