"""Shared helpers: the shipped documents and mutated copies of them."""

from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

from derive.claims import from_dict

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """The CLI's results cache in a folder of this test session's, never the user's."""
    folder = tmp_path_factory.mktemp("derive-cache")
    before = os.environ.get("DERIVE_CACHE_DIR")
    os.environ["DERIVE_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("DERIVE_CACHE_DIR", None)
    else:
        os.environ["DERIVE_CACHE_DIR"] = before


def benchmark(name: str):
    """A module of benchmarks/, imported as its scripts import each other (by bare name)."""
    import importlib
    import sys

    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


DOCUMENTS = ROOT / "derive" / "documents"
SEED = DOCUMENTS / "bn_backward.toml"


def seed_data() -> dict:
    return tomllib.loads(SEED.read_text(encoding="utf-8"))


def mutate(
    claim_id: str, field: str, old: str, new: str, *, case: int | None = None, path: Path = SEED
) -> dict:
    """A document (the seed by default) with one side of one claim edited (old must
    occur in it)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    (claim,) = [c for c in data["claims"] if c["id"] == claim_id]
    target = claim if case is None else claim["cases"][case - 1]
    if field.startswith("steps["):
        k = int(field[6:-1]) - 1
        assert old in target["steps"][k], f"{old!r} not in {target['steps'][k]!r}"
        target["steps"][k] = target["steps"][k].replace(old, new, 1)
    else:
        assert old in target[field], f"{old!r} not in {target[field]!r}"
        target[field] = target[field].replace(old, new, 1)
    return data


def only(data: dict, *claim_ids: str) -> dict:
    """Keep only the named claims (and drop references to the others, the [emit] table
    among them: it names claims that may be gone)."""
    data["claims"] = [c for c in data["claims"] if c["id"] in claim_ids]
    data.pop("emit", None)
    if data["document"].get("closed_form") not in claim_ids:
        data["document"].pop("closed_form", None)
    for c in data["claims"]:
        c["uses"] = [u for u in c.get("uses", []) if u in claim_ids]
    return data


@pytest.fixture(scope="session")
def seed_document():
    return from_dict(seed_data(), SEED)


# -- the generated modules under each backend ----------------------------------------------
GENERATED = ROOT / "derive" / "generated"
BACKENDS = ("numba", "numpy")


def numba_or_fail():
    """Tests of the fused path skip where numba is missing, except in CI (CI=true), where
    a missing numba must fail: CI is where both paths are tested."""
    try:
        import numba  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("numba is not installed, and CI must test the fused path")
        pytest.skip("numba is not installed")


def load_generated(name: str, backend: str):
    """derive/generated/<name>.py loaded afresh with DERIVE_BACKEND=backend."""
    if backend == "numba":
        numba_or_fail()
    previous = os.environ.get("DERIVE_BACKEND")
    os.environ["DERIVE_BACKEND"] = backend
    try:
        spec = importlib.util.spec_from_file_location(
            f"derive.generated.{name}", GENERATED / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            os.environ.pop("DERIVE_BACKEND")
        else:
            os.environ["DERIVE_BACKEND"] = previous
    assert module.BACKEND == backend
    return module


def one_claim_mutant(path: Path, claim_id, field, old, new, case=None) -> dict:
    """A document with one side of one claim edited, and only that claim kept."""
    return only(mutate(claim_id, field, old, new, case=case, path=path), claim_id)


def assert_mutant_rejected(result) -> None:
    """A one-claim mutant document: FAIL at some n with a counterexample that
    separates the sides, not proved for all n, exit status 1."""
    (c,) = result.claims
    assert c.status == "fails"
    failing = c.first_failure
    assert failing is not None
    step = failing.first_failure
    assert step is not None and step.counterexample is not None
    cx = step.counterexample
    assert cx.n == failing.n
    assert cx.lhs != cx.rhs, cx.describe()
    assert not c.proved_all_n
    assert result.exit_code == 1


# -- a finding: a claim wrong on purpose ---------------------------------------------------
def _squares_header(id: str, title: str) -> str:
    """The [document] and [model] tables of a document over L = Σ x_k²."""
    return f"""[document]
id = "{id}"
title = "{title}"

[model]
vectors = ["x"]
nodes = ["L = sum(x[k]**2, k)"]
"""


def finding_toml(slip_rhs: str = "x[i]") -> str:
    """A two-claim document over L = Σ x_k²: "grad" holds, "slip" (expect = "fails")
    drops the factor 2 and fails, unless slip_rhs mends it."""
    return (
        _squares_header("squares", "Squares")
        + f"""
[[claims]]
id = "grad"
title = "The gradient of L"
latex = '\\frac{{\\partial L}}{{\\partial x_i}} = 2 x_i'
for = "all i"
lhs = "D(L, x[i])"
rhs = "2*x[i]"

[[claims]]
id = "slip"
title = "The gradient without its 2"
latex = '\\frac{{\\partial L}}{{\\partial x_i}} = x_i'
for = "all i"
lhs = "D(L, x[i])"
rhs = "{slip_rhs}"
expect = "fails"
note = "The source drops the factor 2."
"""
    )


# -- numerical helpers shared by the generated-code tests ----------------------------------
def eps_of(dtype) -> float:
    """The machine epsilon of a float dtype."""
    return float(np.finfo(dtype).eps)


def numeric_grad(f, x, dy, step):
    """sum(dy * df/dx) by central differences of the given step, one element at a time."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += step
        xm[idx] -= step
        grad[idx] = np.sum(dy * (f(xp) - f(xm))) / (2 * step)
    return grad


# -- claims without latex: the report prints their statements from the sides --------------
def plain_toml() -> str:
    """A document over L = Σ x_k² whose claims write no latex (an equation, a chain,
    a claim with cases), but for "written", which keeps its own."""
    return (
        _squares_header("plain", "Squares, without LaTeX")
        + """
[[claims]]
id = "grad"
title = "The gradient of L"
for = "all i"
lhs = "D(L, x[i])"
rhs = "2*x[i]"

[[claims]]
id = "grad-chain"
title = "The gradient, in two steps"
for = "all i"
steps = ["D(L, x[i])", "2*x[i]", "x[i] + x[i]"]

[[claims]]
id = "hessian"
title = "The Hessian of L"
[[claims.cases]]
for = "i = j"
lhs = "D(D(L, x[i]), x[j])"
rhs = "2"
[[claims.cases]]
for = "i != j"
lhs = "D(D(L, x[i]), x[j])"
rhs = "0"

[[claims]]
id = "written"
title = "The gradient, as written"
latex = '\\frac{\\partial L}{\\partial x_i} = 2 x_i'
for = "all i"
lhs = "D(L, x[i])"
rhs = "2*x[i]"
"""
    )
