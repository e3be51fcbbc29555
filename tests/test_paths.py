"""Names that become file names and labels, and outputs kept in their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from derive.paths import name_problem, output_path


@pytest.mark.parametrize("name", ["bn_backward", "dx-kernel", "eq7", "v1.2", "A_b-c.d"])
def test_good_names(name):
    assert name_problem(name) is None
    assert output_path(Path("out"), name, ".tex") == Path("out") / f"{name}.tex"


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../x", "/abs", "a/b", "a\\b", "a b", "x\n", "é", "a:b", None, 3]
)
def test_bad_names(name):
    assert name_problem(name) is not None
    with pytest.raises(ValueError):
        output_path(Path("out"), name, ".tex")
