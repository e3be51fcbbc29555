"""derive.codegen.rows: the rows and elementwise layouts (softmax family, activations).

Stable primitives by checked definition, decimal printing, the tanh series, refusal of
a broken claim or a missing helper, and claim ids carried into the rendered modules.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from conftest import DOCUMENTS

from derive.claims import load
from derive.codegen import CodegenError, render_modules, verify_emitted
from derive.codegen import rows as codegen_rows
from derive.codegen.rows import (
    TANH_TERMS,
    build,
    code,
    helper_context,
    render_module,
    tanh_series,
    term_helper,
)

ACTIVATIONS = DOCUMENTS / "activations.toml"
SOFTMAX = DOCUMENTS / "softmax.toml"
LOG_SOFTMAX = DOCUMENTS / "log_softmax.toml"
CROSS_ENTROPY = DOCUMENTS / "cross_entropy_weighted.toml"
ROWS = (SOFTMAX, LOG_SOFTMAX, CROSS_ENTROPY)  # the documents of the module softmax
EMITTING = (ACTIVATIONS, *ROWS)


@pytest.fixture(scope="module")
def shipped():
    return {p: load(p) for p in EMITTING}


@pytest.fixture(scope="module")
def modules(shipped):
    return render_modules([shipped[p] for p in EMITTING])


def formula(doc, name):
    return build(doc.emit.formula(name), doc)


# -- a one-node elementwise document, to feed the primitive check ----------------------
TOY = """
[document]
id = "toy"
title = "Toy"

[model]
size = "n"
vectors = ["z"]
positive = ["c"]
nodes = ["@NODE@"]

[[claims]]
id = "fwd"
title = "z s"
latex = "z_i s_i"
for = "all i"
lhs = "z[i]*s[i]"
rhs = "@RHS@"

[emit]
module = "activations"
layout = "elementwise"
names = { z = "x", s = "s" }
@CONSTANTS@

[[emit.formulas]]
name = "@NAME@"
claim = "fwd"
function = "toy_forward"
form = "element"
doc = "z s"
"""


def toy(tmp_path, node, *, rhs="z[i]*s[i]", constants="", name="_toy_y"):
    text = (
        TOY.replace("@NODE@", node)
        .replace("@RHS@", rhs)
        .replace("@CONSTANTS@", constants)
        .replace("@NAME@", name)
    )
    path = tmp_path / "toy.toml"
    path.write_text(text, encoding="utf-8")
    return load(path)


def run_steps(steps, x):
    """The printed step lines executed over x, with the templates' primitives."""
    ns = {
        "np": np,
        "_exp": np.exp,
        "_log": np.log,
        "_tanh": np.tanh,
        "_sigmoid": lambda t: 1 / (1 + np.exp(-t)),
        "x": x,
    }
    for st in steps:
        for line in st.lines:
            exec(line, ns)  # our own printed code, one assignment a line
    return ns


XS = np.linspace(-3.0, 3.0, 13)


@pytest.mark.parametrize(
    ("node", "how", "line"),
    [
        ("1/(1 + exp(-z[i]))", "sigmoid", "s = _sigmoid(x)"),
        ("1/(1 + exp(-2*z[i]))", "sigmoid", "s = _sigmoid(2 * x)"),
        ("1/(1 + exp(z[i]))", "sigmoid", "s = _sigmoid(-x)"),
        ("(exp(z[i]) - exp(-z[i]))/(exp(z[i]) + exp(-z[i]))", "tanh", "s = _tanh(x)"),
        (
            "(exp(3*z[i]) - exp(-3*z[i]))/(exp(3*z[i]) + exp(-3*z[i]))",
            "tanh",
            "s = _tanh(3 * x)",
        ),
        ("z[i]/(1 + z[i]**2)", "definition", "s = x / (x**2 + 1)"),  # no exp: as defined
    ],
)
def test_a_node_is_printed_as_a_primitive_only_of_its_own_argument(tmp_path, node, how, line):
    doc = toy(tmp_path, f"s[i] = {node}")
    f = formula(doc, "_toy_y")
    (step,) = f.steps
    assert step.name == "s" and step.reads == ("x",)
    assert step.lines == (f"# node s: {how}", line)
    h = helper_context(f)
    assert h["args"] == ("x",) and h["value"] == "s * x" and h["steps"] == f.steps
    # the printed line computes the node's definition
    z = sp.Symbol("z")
    definition = sp.lambdify(z, sp.sympify(node.replace("z[i]", "z")), "numpy")
    np.testing.assert_allclose(run_steps(f.steps, XS)["s"], definition(XS), rtol=1e-14)


@pytest.mark.parametrize(
    "node",
    [
        "1/(2 + exp(-z[i]))",  # looks like σ, is not
        "2/(1 + exp(-z[i]))",
        "1/(1 + exp(-z[i]))**2",
        "exp(z[i])/(1 + exp(z[i]))",  # σ, but not written as the primitive's form
        "(exp(z[i]) - exp(-z[i]))/(exp(z[i]) + 2*exp(-z[i]))",  # looks like tanh
        "log(1 + exp(z[i]))",
    ],
)
def test_a_look_alike_of_a_primitive_is_refused_naming_the_node(tmp_path, node):
    doc = toy(tmp_path, f"s[i] = {node}")
    with pytest.raises(CodegenError, match=r"node s: .* is neither a primitive \(sigmoid, tanh\)"):
        formula(doc, "_toy_y")


def test_the_shipped_helpers_compute_sigma_and_tanh_by_the_primitives(shipped, modules):
    act = shipped[ACTIVATIONS]
    silu = formula(act, "_silu_y")
    assert [st.lines for st in silu.steps] == [("# node s: sigmoid", "s = _sigmoid(x)")]
    gelu = formula(act, "_gelu_y")
    assert [st.name for st in gelu.steps] == ["u", "tu"]  # u first: tu reads it
    assert gelu.steps[0].lines == (
        "# node u: definition",
        "u = _C * (x * (x * (0.044715 * x)) + x)",
    )
    assert gelu.steps[1].lines == ("# node tu: tanh", "tu = _tanh(u)")
    assert gelu.args == ("x",)  # c is the constant _C, not an argument
    text = modules["activations"]
    tree = ast.parse(text)
    bodies = {
        n.name: ast.get_source_segment(text, n) for n in tree.body if isinstance(n, ast.FunctionDef)
    }
    assert "s = _sigmoid(x)" in bodies["_silu_y"] and "s = _sigmoid(x)" in bodies["_silu_grad"]
    assert "tu = _tanh(u)" in bodies["_gelu_y"] and "tu = _tanh(u)" in bodies["_gelu_grad"]
    assert "_C = 0.7978845608028654" in text


def test_a_given_node_is_an_argument_not_recomputed(shipped):
    act = shipped[ACTIVATIONS]
    f = formula(act, "_sigmoid_grad")  # sigmoid_backward gets y = σ(x)
    assert f.args == ("s",) and f.steps == () and code(f.value) == "s * (1 - s)"
    g = formula(act, "_tanh_grad")
    assert g.args == ("th",) and g.steps == () and code(g.value) == "1 - th**2"
    silu = formula(act, "_silu_grad")  # silu_backward gets x: σ is computed
    assert silu.args == ("x",) and [st.name for st in silu.steps] == ["s"]


def test_rows_lowering_reads_the_exp_term_by_name(shipped):
    sm = shipped[SOFTMAX]
    y = formula(sm, "_softmax_y")
    x, shift = sp.Symbol("x", real=True), sp.Symbol("shift", real=True)
    assert y.reductions == (("sum_exp_x_shift", sp.exp(x - shift)),)
    assert code(y.value) == "exp_x_shift / sum_exp_x_shift"  # exp computed once, stored
    assert y.args == ("exp_x_shift", "sum_exp_x_shift")
    t = term_helper("sum_exp_x_shift", sp.exp(x - shift), sm)
    assert t["name"] == "_sum_exp_x_shift_term" and t["value"] == "_exp(-shift + x)"
    assert t["args"] == ("x", "shift")
    dx = formula(sm, "_softmax_dx")
    assert code(dx.value) == "y * (dy - sum_dy_y)" and dx.args == ("dy", "y", "sum_dy_y")
    lsm = formula(shipped[LOG_SOFTMAX], "_log_softmax_dx")
    assert code(lsm.value) == "dy - sum_dy * _exp(y)"
    loss = formula(shipped[CROSS_ENTROPY], "_cross_entropy_loss")
    assert loss.args == ("sum_exp_x_shift", "sum_s", "sum_s_shift_x")  # a value: sums only


# -- refusals of build: each names what cannot be emitted ------------------------------
def spec_for(doc, claim, form="element"):
    return dataclasses.replace(doc.emit.formulas[0], claim=claim, form=form)


@pytest.mark.parametrize(
    ("path", "claim", "form", "message"),
    [
        (SOFTMAX, "jacobian-cases", "element", "claim 'jacobian-cases': a claim with cases"),
        (SOFTMAX, "jacobian", "element", "claim 'jacobian': expected at most one free index"),
        (
            CROSS_ENTROPY,
            "gradient-shifted",
            "value",
            r"emit.formulas\[1\] \(claim 'gradient-shifted'\): expected one value per row",
        ),
    ],
)
def test_build_refuses_a_claim_without_one_formula(shipped, path, claim, form, message):
    doc = shipped[path]
    with pytest.raises(CodegenError, match=message):
        build(spec_for(doc, claim, form), doc)


def without_name(doc, model_name):
    names = tuple((k, v) for k, v in doc.emit.names if k != model_name)
    assert len(names) == len(doc.emit.names) - 1
    return dataclasses.replace(doc, emit=dataclasses.replace(doc.emit, names=names))


def test_build_refuses_an_input_without_a_code_name(shipped):
    ce = without_name(shipped[CROSS_ENTROPY], "w")
    with pytest.raises(CodegenError, match=r"w\[i\] has no per-element value"):
        build(ce.emit.formula("_cross_entropy_dx"), ce)
    sm = without_name(shipped[SOFTMAX], "c")
    with pytest.raises(CodegenError, match="c has no value in the generated code"):
        build(sm.emit.formula("_softmax_y"), sm)


# -- printing --------------------------------------------------------------------------
def test_decimal_rationals_print_as_the_decimal():
    assert code(sp.Rational(44715, 1000000)) == "0.044715"
    assert code(sp.Rational(-1, 8)) == "-0.125"
    assert code(sp.Rational(-7, 4)) == "-1.75"
    assert code(sp.Rational(1, 1024)) == "0.0009765625"
    x = sp.Symbol("x", real=True)
    assert code(-x / 8) == "-0.125 * x"
    assert code(sp.Rational(134145, 10**6) * x) == "0.134145 * x"


def fraction_of(text: str) -> Fraction:
    """A printed number or quotient, read exactly: "0.125", "-1 / 3", "1.0"."""
    parts = [Fraction(p.strip()) for p in text.replace("/", " / ").split(" / ")]
    assert len(parts) in (1, 2), text
    return parts[0] / parts[1] if len(parts) == 2 else parts[0]


def test_other_rationals_print_as_an_exact_quotient():
    for r in (sp.Rational(1, 3), sp.Rational(-2, 3), sp.Rational(1, 7), sp.Rational(22, 7)):
        text = code(r)
        assert "." not in text, text  # not a truncated decimal
        assert fraction_of(text) == Fraction(r.p, r.q)
        num, den = text.split("/")
        assert int(num) / int(den) == float(r)


def test_printed_decimals_are_exactly_the_rationals():
    count = 0
    for p in (1, -1, 3, -7, 123, 44715, 8943, 999999937, 2**53 + 1):
        for twos in range(0, 12, 3):
            for fives in range(0, 9, 2):
                r = sp.Rational(p, 2**twos * 5**fives)
                if r.q == 1:
                    continue
                text = code(r)
                assert "/" not in text, (r, text)  # a decimal literal, not a quotient
                assert float(text) == float(r), (r, text)  # the correctly rounded quotient
                if Fraction(float(r)) == Fraction(r.p, r.q):  # exact in binary: exactly r
                    assert Fraction(text) == Fraction(r.p, r.q), (r, text)
                assert float(text) == float(r), (r, text)
                count += 1
    assert count > 100


@pytest.mark.parametrize(("fn", "name"), [(sp.exp, "_exp"), (sp.log, "_log"), (sp.tanh, "_tanh")])
def test_transcendentals_print_as_the_modules_names(fn, name):
    x = sp.Symbol("x", real=True)
    assert code(fn(x)) == f"{name}(x)"
    assert code(fn(x / 2)) == f"{name}(0.5 * x)"
    assert "np." not in code(fn(x)) and "numpy" not in code(fn(x))


# -- the tanh series -------------------------------------------------------------------
def bernoulli(m: int) -> list[Fraction]:
    """B_0 .. B_m (B_1 = -1/2), by the recurrence sum_k C(m+1, k) B_k = 0."""
    b = [Fraction(1)]
    for k in range(1, m + 1):
        b.append(-sum(math.comb(k + 1, j) * b[j] for j in range(k)) / (k + 1))
    return b


def tanh_over_u(terms: int) -> list[Fraction]:
    """The coefficients of u^0, u^2, ... of tanh(u)/u: 2^2n (2^2n - 1) B_2n / (2n)!."""
    b = bernoulli(2 * terms)
    return [
        Fraction(4**n * (4**n - 1)) * b[2 * n] / math.factorial(2 * n) for n in range(1, terms + 1)
    ]


def test_tanh_series_is_the_taylor_series_of_tanh_over_u():
    printed = tanh_series()
    assert len(printed) == TANH_TERMS
    got = [fraction_of(t) for t in printed]
    assert got[:3] == [Fraction(1), Fraction(-1, 3), Fraction(2, 15)]
    assert got == tanh_over_u(TANH_TERMS)  # Bernoulli numbers
    u = sp.Symbol("u")
    series = sp.series(sp.tanh(u) / u, u, 0, 2 * TANH_TERMS).removeO()
    assert got == [
        Fraction(int(c.p), int(c.q)) for c in (series.coeff(u, 2 * k) for k in range(TANH_TERMS))
    ]
    wrong = list(got)
    wrong[5] += Fraction(1, 10**12)
    assert wrong != tanh_over_u(TANH_TERMS)  # the comparison can fail


def test_tanh_series_evaluates_tanh_over_u_for_small_u():
    coeffs = [fraction_of(t) for t in tanh_series()]
    longer = tanh_over_u(TANH_TERMS + 20)  # its truncation is far below 2**-57
    for k in range(-64, 65):
        u = Fraction(k, 256)  # -1/4 .. 1/4
        exact = sum(c * u ** (2 * j) for j, c in enumerate(longer))
        approx = sum(c * u ** (2 * j) for j, c in enumerate(coeffs))
        assert abs(approx - exact) <= abs(exact) * Fraction(1, 2**57), u
        if k == 0:
            continue
        uf, acc = float(u), 0.0
        for c in reversed(coeffs):  # Horner in u^2, in floats, as the templates do
            acc = acc * (uf * uf) + float(c)
        want = math.tanh(uf) / uf
        assert abs(acc - want) <= 4e-16 * abs(want), (uf, acc, want)


# -- refusal to render: a broken claim, a missing helper -------------------------------
def broken_copy(tmp_path, path, old, new):
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    out = tmp_path / path.name
    out.write_text(text.replace(old, new), encoding="utf-8")
    return load(out)


@pytest.mark.parametrize(
    ("path", "old", "new", "claim"),
    [
        (  # a coefficient of the emitted side, off by 1e-6
            ACTIVATIONS,
            '*c*(1 + 3*0.044715*z[i]**2)"',
            '*c*(1 + 3*0.044716*z[i]**2)"',
            "gelu-derivative",
        ),
        (  # a term dropped from the emitted side of a chain
            ACTIVATIONS,
            '"s[i]*(1 + z[i]*(1 - s[i]))"]',
            '"s[i]*(1 + z[i])"]',
            "silu-derivative",
        ),
        (  # the sum dropped from the emitted side
            SOFTMAX,
            'rhs = "p[i]*(g[i] - sum(g[k]*p[k], k))"',
            'rhs = "p[i]*g[i]"',
            "vjp-closed-form",
        ),
        (  # a claim the emitted one uses (through jacobian, vjp-chain)
            SOFTMAX,
            'rhs = "exp(z[i])"\n',
            'rhs = "2*exp(z[i])"\n',
            "dZ-dz",
        ),
        (LOG_SOFTMAX, 'rhs = "z[i] - c - log(', 'rhs = "z[i] - log(', "forward-shifted"),
        (
            CROSS_ENTROPY,
            '- sum(s[k]*(z[k] - c), k)"',
            '- sum(s[k]*z[k], k)"',
            "loss-shifted",
        ),
    ],
    ids=["gelu-coefficient", "silu-term", "softmax-sum", "softmax-used", "log-softmax", "ce-loss"],
)
def test_a_broken_claim_is_refused_by_name(shipped, tmp_path, path, old, new, claim):
    broken = broken_copy(tmp_path, path, old, new)
    assert broken.claim(claim) != shipped[path].claim(claim)
    others = [
        shipped[p] for p in EMITTING if p != path and shipped[p].emit.module == broken.emit.module
    ]
    with pytest.raises(CodegenError, match=f"refusing to emit code, claim.*{claim}"):
        render_modules([broken, *others])
    with pytest.raises(CodegenError, match=f"{re.escape(broken.path)}: refusing.*{claim}"):
        render_module([broken, *others])


def test_a_broken_claim_outside_the_emitted_closure_does_not_block(tmp_path, shipped):
    # tanh-sigmoid is neither emitted nor used by an emitted claim
    broken = broken_copy(
        tmp_path, ACTIVATIONS, 'rhs = "2/(1 + exp(-2*z[i])) - 1"', 'rhs = "2/(1 + exp(-z[i])) - 1"'
    )
    with pytest.raises(CodegenError, match="tanh-sigmoid"):
        verify_emitted(broken, ["tanh-sigmoid"], ns=(2,))
    assert verify_emitted(broken, ["silu-derivative"]) == (
        "sigmoid-derivative",
        "silu-derivative",
    )
    assert "def _gelu_grad(x):" in render_module([broken])


def test_a_missing_required_helper_is_refused_by_name(shipped):
    act = shipped[ACTIVATIONS]
    emit = act.emit
    short = dataclasses.replace(
        emit, formulas=tuple(f for f in emit.formulas if f.name != "_gelu_grad")
    )
    with pytest.raises(
        CodegenError, match="module activations: layout 'elementwise' needs _gelu_grad$"
    ):
        render_module([dataclasses.replace(act, emit=short)])
    with pytest.raises(
        CodegenError,
        match="layout 'rows' needs _log_softmax_y, _log_softmax_dx, _cross_entropy_loss, "
        "_cross_entropy_dx",
    ):
        render_modules([shipped[SOFTMAX]])
    assert set(codegen_rows.REQUIRED["elementwise"]) == {f.name for f in emit.formulas}


def test_one_module_of_two_layouts_is_refused(shipped):
    sm = shipped[SOFTMAX]
    moved = dataclasses.replace(sm, emit=dataclasses.replace(sm.emit, module="activations"))
    with pytest.raises(CodegenError, match=r"several layouts \['elementwise', 'rows'\]"):
        render_modules([shipped[ACTIVATIONS], moved])


def test_a_formula_declared_by_two_documents_is_refused(tmp_path, shipped):
    twin = broken_copy(tmp_path, SOFTMAX, 'id = "softmax"', 'id = "softmax-twin"')
    with pytest.raises(CodegenError, match="formula _softmax_y is declared twice"):
        render_module([shipped[SOFTMAX], twin])


def test_a_constant_that_differs_between_documents_is_refused(tmp_path, shipped):
    doc = toy(
        tmp_path,
        "s[i] = 1/(1 + exp(-z[i]))",
        rhs="c*z[i]*s[i]/c",
        constants="constants = { c = 0.5 }",
    )
    assert doc.emit.constants == (("c", 0.5),)
    with pytest.raises(CodegenError, match="constant c differs between documents"):
        render_module([shipped[ACTIVATIONS], doc])


# -- the rendered modules carry the claim ids ------------------------------------------
def docstrings(text):
    tree = ast.parse(text)
    return {
        n.name: " ".join((ast.get_docstring(n) or "").split())
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
    }


def test_every_emitted_function_has_a_docstring_with_its_claims(shipped, modules):
    assert set(modules) == {"activations", "softmax"}
    for path in EMITTING:
        doc = shipped[path]
        text = modules[doc.emit.module]
        compile(text, f"{doc.emit.module}.py", "exec")
        docs = docstrings(text)
        head = " ".join(text[:1200].split())
        emitted = sorted({f.claim for f in doc.emit.formulas})
        assert f"derive/documents/{path.name} ({', '.join(emitted)})" in head
        for spec in doc.emit.formulas:
            helper = docs[spec.name]
            assert f"From claim {spec.claim}:" in helper, spec.name
            assert " ".join(spec.doc.split()) in helper, spec.name
            assert " ".join(doc.claim(spec.claim).title.split()) in helper, spec.name
            assert f"claim {spec.claim}" in text
            verified = docs[spec.function]
            assert "Verified claims: " in verified, spec.function
            listed = verified.split("Verified claims: ")[1].split(".")[0].split(", ")
            assert spec.claim in listed, (spec.function, listed)


# -- the templates' contract: the arguments each helper is passed ----------------------
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # z is the template's x; named dy, the backward would read dy for x
        ('z = "x"', 'z = "dy"', r"emit.names.z': dy is the template's own argument"),
        ('s = "s"', 's = "sig"', r"formula _sigmoid_grad takes \(sig\); the 'elementwise'"),
        ('z = "x"', 'z = "sum_x"', r"emit.names.s': the template passes s as sigmoid of the input"),
    ],
    ids=["z-as-dy", "s-renamed", "z-as-a-reduction"],
)
def test_code_names_that_break_the_templates_contract_are_refused(tmp_path, old, new, message):
    doc = broken_copy(tmp_path, ACTIVATIONS, old, new)
    with pytest.raises(CodegenError, match=message):
        render_module([doc])


def test_the_contract_names_every_required_helper_and_reduction(shipped, modules):
    text = modules["softmax"]
    for name, args in codegen_rows.REDUCTIONS["rows"].items():
        assert f"def _{name}_term({', '.join(args)}):" in text
    for name, args in codegen_rows.REQUIRED["elementwise"].items():
        assert f"def {name}({', '.join(args)}):" in modules["activations"]


def test_a_reduction_computed_otherwise_by_another_document_is_refused(tmp_path, shipped):
    """Two documents with the same reduction name but different node steps (s without
    label smoothing): the module cannot hold both, whichever document comes first."""
    text = CROSS_ENTROPY.read_text(encoding="utf-8")
    start = text.index("[[emit.formulas]]")
    twin = text[:start].replace('id = "cross_entropy_weighted"', 'id = "ce_twin"')
    twin += '[[emit.formulas]]\nname = "_twin_loss"\nclaim = "loss-shifted"\n'
    twin += 'function = "cross_entropy_forward"\nform = "value"\ndoc = "a twin"\n'
    assert twin.count('"s[i] = w[i]*((1 - eps)*t[i] + eps/n)"') == 1, "node s moved"
    twin = twin.replace('"s[i] = w[i]*((1 - eps)*t[i] + eps/n)"', '"s[i] = w[i]*t[i]"')
    path = tmp_path / "ce_twin.toml"
    path.write_text(twin, encoding="utf-8")
    docs = [shipped[SOFTMAX], shipped[LOG_SOFTMAX], shipped[CROSS_ENTROPY], load(path)]
    for order in (docs, docs[::-1]):
        with pytest.raises(CodegenError, match="reduction sum_s differs between documents"):
            render_module(order)


def edited_copy(tmp_path, path, *edits):
    text = path.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    out = tmp_path / path.name
    out.write_text(text, encoding="utf-8")
    return load(out)


@pytest.mark.parametrize(
    ("path", "edits", "message"),
    [
        (  # y bound to p = softmax, not to what the log-softmax forward returns (out)
            LOG_SOFTMAX,
            [
                ('"out[i] = z[i] - lse",', '"out[i] = z[i] - lse",\n  "p[i] = exp(z[i])/Z",'),
                ('out = "y"', 'p = "y"'),
            ],
            r"emit.names.p'.*passes y as what the document's forward returns \(out\)",
        ),
        (  # the logits' code name on a node
            SOFTMAX,
            [('z = "x", g = "dy", p = "y"', 'z = "z", g = "dy", p = "x"')],
            r"emit.names.p'.*passes x as an input vector",
        ),
        (  # sigma's and tanh's names swapped
            ACTIVATIONS,
            [('s = "s", th = "th"', 's = "th", th = "s"')],
            r"emit.names.th'.*passes s as sigmoid of the input x",
        ),
        (  # the row maximum's name on a vector
            CROSS_ENTROPY,
            [('w = "w", s = "s", c = "shift"', 'w = "shift", s = "s", c = "row_max"')],
            r"emit.names.w'.*passes shift as a scalar input",
        ),
    ],
    ids=["y-not-the-forward", "x-a-node", "sigma-tanh-swapped", "shift-a-vector"],
)
def test_a_code_name_bound_to_another_kind_of_quantity_is_refused(tmp_path, path, edits, message):
    doc = edited_copy(tmp_path, path, *edits)
    with pytest.raises(CodegenError, match=message):
        codegen_rows._check_roles(doc)


def test_the_shipped_documents_bind_every_role(shipped):
    for doc in shipped.values():
        codegen_rows._check_roles(doc)  # raises on a wrong binding
        codes = {code for _, code in doc.emit.names}
        assert codes & set(codegen_rows.ROLES[doc.emit.layout])
