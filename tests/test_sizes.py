"""derive/sizes.py and models of several sizes: declarations, the size of every index
inferred (and refused where two uses disagree or none fixes it), the grid, the all-sizes
proofs, and that the verifier can fail on each: mutants of the shipped linear layer,
batch norm on X[N, E] and LayerNorm on its rows FAIL with counterexamples that really
separate the sides, and are not proved."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from fractions import Fraction

import pytest

from derive.checking import VerifierError, verify_document
from derive.claims import ClaimFileError, from_dict, load
from derive.results import format_ns
from derive.sizes import MAX_POINTS, Point, SizeError, at, grid, parse_sizes
from tests.conftest import DOCUMENTS, ROOT, assert_mutant_rejected, one_claim_mutant

SEVERAL = ("linear", "batchnorm_features", "layernorm_rows", "attention", "attention_masked")
# Small grids: every combination of these values for each size.
NS = (1, 2, 3)
MUTANT_NS = (1, 2)


def _doc(model: dict, *claims: dict):
    return from_dict(
        {"document": {"id": "t", "title": "t"}, "model": model, "claims": list(claims)}
    )


LINEAR = {
    "sizes": ["N", "I", "O"],
    "arrays": ["X[N, I]", "W[I, O]", "b[O]", "dY[N, O]"],
    "nodes": ["Y[r, o] = sum(X[r, a]*W[a, o], a) + b[o]", "L = sum(sum(dY[q, o]*Y[q, o], o), q)"],
}


def _claim(lhs, rhs, for_="all i, j", id_="c"):
    return {"id": id_, "title": id_, "for": for_, "lhs": lhs, "rhs": rhs}


# -- the grid -------------------------------------------------------------------------------
def test_points_say_where_they_are():
    p = Point((("T", 2), ("E", 3)))
    assert str(p) == at(p) == "T = 2, E = 3" and p["E"] == 3 and at(4) == "n = 4"
    assert grid(("n",), (2, 3)) == [2, 3]
    assert grid(("T", "E"), (1, 2))[1] == Point((("T", 1), ("E", 2)))
    assert len(grid(("T", "E"), None)) == 9  # DEFAULT_VALUES each
    assert grid(("T", "E"), None, {"E": (4,)})[-1] == Point((("T", 3), ("E", 4)))
    with pytest.raises(SizeError, match="not a size"):
        grid(("T", "E"), None, {"Q": (1,)})
    with pytest.raises(SizeError, match=f"at most {MAX_POINTS}"):
        grid(("A", "B", "C"), range(1, 10))


def test_format_of_a_grid_and_of_loose_points():
    full = grid(("T", "E"), (1, 2))
    assert format_ns(full) == "T = 1..2, E = 1..2"
    assert format_ns(full[:3]) == "(T, E) = (1, 1), (1, 2), (2, 1)"


def test_sizes_option_text():
    from derive.cli import parse_ns

    assert parse_sizes("T=1..3,5,E=2", parse_ns) == {"T": (1, 2, 3, 5), "E": (2,)}
    for bad in ("T", "T=1,T=2", "=3", ""):
        with pytest.raises(ValueError):
            parse_sizes(bad, parse_ns)


# -- declarations ---------------------------------------------------------------------------
def test_node_axes_are_inferred_in_declaration_order():
    spec = _doc(LINEAR, _claim("Y[i, j]", "Y[i, j]")).spec
    assert spec.several and spec.size_names == ("N", "I", "O")
    assert spec.axes["Y"] == ("N", "O") and spec.axes["W"] == ("I", "O")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"sizes": ["N", "I", "exp"]}, "model.sizes[3]", "reserved"),
        ({"sizes": ["N", "I", "delta"]}, "model.sizes[3]", "reserved"),
        ({"size": "n"}, "model.sizes", "either size"),
        ({"vectors": ["x"]}, "model.vectors", "arrays"),
        ({"arrays": ["X[N, Q]"]}, "model.arrays[1]", "not a declared size"),
        ({"arrays": ["X"]}, "model.arrays[1]", "name\\[size"),
        ({"nodes": ["Y[r] = X[r, r]"]}, "model.nodes[1]", "index r is used at two sizes"),
        ({"nodes": ["Y[r] = 1"]}, "model.nodes[1]", "cannot tell what size index r"),
        ({"nodes": ["Y[r, r] = X[r, r]"]}, "model.nodes[1]", "occurs twice"),
        ({"nodes": ["Y[r] = X[r]"]}, "model.nodes[1]", "takes 2 indices"),
    ],
)
def test_a_bad_declaration_names_its_field(change, field, message):
    model = {"sizes": ["N", "I"], "arrays": ["X[N, I]"], "nodes": ["L = X[1, 1]"], **change}
    with pytest.raises(ClaimFileError, match=message) as err:
        _doc(model, _claim("L", "L", "all"))
    assert err.value.field == field


def test_several_indices_need_several_sizes():
    with pytest.raises(ClaimFileError, match="several sizes") as err:
        _doc({"vectors": ["x"], "nodes": ["S[i, j] = x[i]*x[j]"]}, _claim("1", "1", "all"))
    assert err.value.field == "model.nodes[1]"


@pytest.mark.parametrize(
    ("lhs", "rhs", "for_", "message"),
    [
        ("D(L, X[i, j])", "sum(dY[i, o]*W[o, j], o)", "all i, j", "index o is used at two sizes"),
        ("D(L, b[i])", "sum(dY[i, o], o)", "all i", "index i is used at two sizes"),
        ("D(L, X[i, j])", "X[i, j, 1]", "all i, j", "X takes 2 indices"),
        ("sum(1, k)", "N", "all", "cannot tell what size index k"),
        ("X[i, 1]", "X[i, 1]", "all i, j", "cannot tell what size index j"),
        ("X[i, j]", "X[i, j]", "i = j", "compares i"),
    ],
)
def test_a_side_whose_sizes_disagree_is_an_input_error(lhs, rhs, for_, message):
    try:
        doc = _doc(LINEAR, _claim(lhs, rhs, for_))
    except ClaimFileError as exc:  # found at load time
        assert exc.claim == "c" and exc.field in ("lhs", "rhs")
        assert message in str(exc)
        return
    with pytest.raises(VerifierError, match=message) as err:  # found where it is checked
        verify_document(doc, (1, 2))
    assert re.match(r"claim 'c', field '(lhs|rhs)': ", str(err.value))


def test_the_cli_names_the_file_claim_and_field(tmp_path):
    path = tmp_path / "bad.toml"
    data = {"document": {"id": "t", "title": "t"}, "model": LINEAR}
    text = _toml(data) + '[[claims]]\nid = "slip"\ntitle = "s"\nfor = "all i"\n'
    text += 'lhs = "D(L, b[i])"\nrhs = "sum(dY[i, o], o)"\n'
    path.write_text(text)
    out = _cli("verify", str(path), "--no-cache")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert str(path) in line and "slip" in line and "rhs" in line and "two sizes" in line


def _toml(data: dict) -> str:
    lines = ["[document]", 'id = "t"', 'title = "t"', "", "[model]"]
    for key, value in data["model"].items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n\n"


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "derive", *args], cwd=ROOT, capture_output=True, text=True
    )


# -- checking ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEVERAL)
def test_shipped_document_holds_on_the_grid_and_for_all_sizes(name):
    doc = load(DOCUMENTS / f"{name}.toml")
    result = verify_document(doc, NS, all_n=True)
    assert len(result.ns) == 3 ** len(doc.size_names)
    for c in result.claims:
        assert c.holds and c.proved_all_n, (c.claim.id, c.summary())


@pytest.mark.parametrize("name", SEVERAL)
def test_full_check_agrees_with_the_symmetry_shortcut(name):
    doc = load(DOCUMENTS / f"{name}.toml")
    point = Point(tuple((s, 2) for s in doc.size_names))
    assert doc.model_for(point).symmetric  # one permutation per size: the shortcut is on
    quick = verify_document(doc, (1, 2))
    full = verify_document(doc, (1, 2), full=True)
    assert [c.verdicts for c in quick.claims] == [c.verdicts for c in full.claims]


def test_i_and_j_over_two_sizes_have_one_orbit():
    from derive.checking import assignments

    both = {"i": 3, "j": 3}
    assert assignments("all i, j", both, full=False, sizes={"i": "N", "j": "N"}) == [
        {"i": 1, "j": 1},
        {"i": 1, "j": 2},
    ]
    assert assignments("all i, j", both, full=False, sizes={"i": "N", "j": "I"}) == [
        {"i": 1, "j": 1}
    ]
    assert len(assignments("all i, j", both, full=True, sizes={"i": "N", "j": "I"})) == 9


def test_a_literal_position_turns_the_shortcut_off():
    # X[2, 1] in a node: permuting positions no longer maps the model to itself, and dX
    # below is wrong only at (i, j) = (2, 1), which no orbit representative is
    model = dict(LINEAR)
    model["nodes"] = [
        "Y[r, o] = sum(X[r, a]*W[a, o], a) + b[o]*X[2, 1]",
        "L = sum(sum(dY[q, o]*Y[q, o], o), q)",
    ]
    doc = _doc(model, _claim("D(L, X[i, j])", "sum(dY[i, o]*W[j, o], o)"))
    assert not doc.model_for(Point((("N", 2), ("I", 2), ("O", 2)))).symmetric
    (c,) = verify_document(doc, (2,)).claims
    assert c.status == "fails"
    assert dict(c.first_failure.first_failure.counterexample.indices) == {"i": 2, "j": 1}


def test_a_literal_position_in_a_side_turns_the_shortcut_off():
    doc = _doc(LINEAR, _claim("X[i, j]", "X[1, j]"))
    (c,) = verify_document(doc, (2,)).claims
    assert c.status == "fails"
    assert dict(c.first_failure.first_failure.counterexample.indices)["i"] == 2


def test_a_claim_true_only_where_two_sizes_agree_fails_and_is_not_proved():
    # sum over the I inputs of 1 is I, not O: equal only where I = O.
    doc = _doc(LINEAR, _claim("sum(W[a, i]**0, a)", "O", "all i"))
    (c,) = verify_document(doc, (1, 2), all_n=True).claims
    assert c.status == "fails" and not c.proved_all_n
    assert all(v.status == "holds" for v in c.verdicts if v.n["I"] == v.n["O"])
    cx = c.first_failure.first_failure.counterexample
    assert cx.n["I"] != cx.n["O"]


def test_sizes_are_named_in_text_and_json(tmp_path):
    out = _cli("verify", str(DOCUMENTS / "linear.toml"), "--no-cache", "--sizes", "N=2,I=1..2,O=3")
    assert out.returncode == 0, out.stderr
    assert "holds for N = 2, I = 1..2, O = 3" in out.stdout
    js = _cli(
        "verify", str(DOCUMENTS / "linear.toml"), "--no-cache", "--n", "1..2", "--format", "json"
    )
    (doc,) = json.loads(js.stdout)["documents"]
    assert doc["sizes"] == ["N", "I", "O"] and len(doc["ns"]) == 8
    assert doc["claims"][0]["per_n"][-1]["n"] == {"N": 2, "I": 2, "O": 2}
    bad = _cli("verify", str(DOCUMENTS / "linear.toml"), "--no-cache", "--sizes", "Q=1")
    assert bad.returncode == 2 and "'Q', not a size" in bad.stderr


# -- mutants ------------------------------------------------------------------------------
MUTANTS = [
    ("linear", "dX", "rhs", "sum(dY[i, o]*W[j, o], o)", "sum(sum(dY[r, o]*W[j, o], o), r)"),
    ("linear", "dW", "rhs", "sum(X[r, i]*dY[r, j], r)", "sum(X[r, i]*dY[r, j], r)/N"),
    ("linear", "db", "rhs", "sum(dY[r, i], r)", "sum(dY[r, i], r)/N"),
    # a batch mean over the wrong index: the features instead of the batch
    (
        "batchnorm_features",
        "dx",
        "rhs",
        "N*dY[i, j] - sum(dY[r, j], r)",
        "N*dY[i, j] - N*sum(dY[i, e], e)/E",
    ),
    ("batchnorm_features", "dgamma", "rhs", "xhat[r, i]", "X[r, i]"),
    ("batchnorm_features", "dx", "rhs", "gamma[j]/(N*sigma[j])", "gamma[j]/(E*sigma[j])"),
    ("layernorm_rows", "dx", "rhs", "sum(gamma[e]*dY[i, e], e)/E", "sum(gamma[j]*dY[r, j], r)/N"),
    ("layernorm_rows", "dx", "rhs", "/sigma[i]", "/sigma[i]**2"),
    ("layernorm_rows", "dgamma", "rhs", "sum(xhat[r, i]*dY[r, i], r)", "sum(dY[r, i], r)"),
    # D_i = Σ_j dP_ij (P dropped), dS = P ∘ dP (D dropped), and a missing transpose
    ("attention", "D-identity", "rhs", "P[i, j]*sum(", "sum("),
    ("attention", "dS", "rhs", " - sum(dO[i, a]*O[i, a], a)", ""),
    ("attention", "dV", "rhs", "P[k, i]", "P[i, k]"),
    ("attention", "dK", "rhs", "P[k, i]*", "P[i, k]*"),
    # the mask dropped from the log-sum-exp, the shift lost, P dropped from D, c lost
    ("attention_masked", "P-lse", "rhs", "M[i, j]*exp(", "exp("),
    ("attention_masked", "lse-shifted", "rhs", "m[i] + log(", "log("),
    ("attention_masked", "D-rowsum", "lhs", "sum(P[i, j]*sum(", "sum(sum("),
    ("attention_masked", "dQ", "rhs", "c*sum(", "sum("),
]


@pytest.mark.parametrize(("name", "claim_id", "field", "old", "new"), MUTANTS)
def test_mutant_is_rejected(name, claim_id, field, old, new):
    data = one_claim_mutant(DOCUMENTS / f"{name}.toml", claim_id, field, old, new)
    result = verify_document(from_dict(data), MUTANT_NS, all_n=True)
    assert_mutant_rejected(result)


def test_a_missing_transpose_where_sizes_differ_is_refused_at_load():
    data = one_claim_mutant(DOCUMENTS / "linear.toml", "dX", "rhs", "W[j, o]", "W[o, j]")
    with pytest.raises(ClaimFileError, match="two sizes") as err:
        from_dict(data)
    assert (err.value.claim, err.value.field) == ("dX", "rhs")


def test_a_counterexample_separates_the_sides_in_plain_arithmetic():
    # dW averaged over the batch: lhs = sum_r X[r, i] dY[r, j], rhs = lhs / N.
    data = one_claim_mutant(
        DOCUMENTS / "linear.toml", "dW", "rhs", "sum(X[r, i]*dY[r, j], r)", "0*X[1, i]"
    )
    data["claims"][0]["for"] = "all i, j"
    (c,) = verify_document(from_dict(data), (1, 2)).claims
    cx = c.first_failure.first_failure.counterexample
    point = {k: Fraction(v) for k, v in cx.point}
    i, j = dict(cx.indices)["i"], dict(cx.indices)["j"]
    lhs = sum(point.get(f"X[{r}, {i}]", 0) * point.get(f"dY[{r}, {j}]", 0) for r in (1, 2))
    assert lhs != 0 and float(lhs) == pytest.approx(float(cx.lhs), rel=1e-9)
    assert float(cx.rhs) == 0.0


def test_every_shipped_several_size_document_parses_as_toml():
    for name in SEVERAL:
        tomllib.loads((DOCUMENTS / f"{name}.toml").read_text())


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"emit": {"module": "m"}}, "emit"),
        ({"document": {"id": "t", "title": "t", "closed_form": "c"}}, "document.closed_form"),
    ],
)
def test_what_reads_one_size_only_is_refused_for_several(extra, field):
    data = {"document": {"id": "t", "title": "t"}, "model": LINEAR, "claims": [_claim("1", "1")]}
    data.update(extra)
    with pytest.raises(ClaimFileError, match="several sizes") as err:
        from_dict(data)
    assert err.value.field == field
