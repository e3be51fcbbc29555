"""The ``[emit]`` table of a claim file: which claims become generated code, and how.

A document that is emitted says so itself, so that code generation reads what
to emit from the documents instead of from a list in ``derive/codegen/``::

    [emit]
    module = "layernorm"      # derive/generated/layernorm.py (documents may share a module)
    layout = "trailing"       # the axes the statistics are taken over (see LAYOUTS)
    mean = "mu"               # optional: the statistic x is centred by, xc = x - mean
    root = "sigma"            # the root statistic, held by the code as its inverse ...
    inverse = "invstd"        # ... under this name

    [[emit.formulas]]
    name = "_dx"              # the helper's name in the generated module
    claim = "dx-closed-form"  # its last side is emitted
    function = "layernorm_backward"   # the public function that computes it
    form = "factored"         # see FORMS
    coefficients = ["a", "k", "m"]
    doc = "dx = a*(gamma*dy + k*xc + m) per row"

Problems are ``EmitError`` with the field they are in; ``claims.load`` turns
them into ``ClaimFileError`` naming the file as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .paths import name_problem

# Where the statistics live, which picks the array plumbing (a template):
LAYOUTS = {
    # x of shape (N, C, *spatial): one statistic per channel over every other axis (batch norm)
    "channels": "batchnorm.py.j2",
    # statistics per leading index over the trailing gamma.ndim axes (LayerNorm, RMSNorm)
    "trailing": "groupwise.py.j2",
    # x of shape (N, C, *spatial) in G groups of C/G channels: per (example, group) (GroupNorm)
    "groups": "groupwise.py.j2",
    # one statistic set per row of the last axis, no root (softmax, log-softmax, cross-entropy)
    "rows": "rows.py.j2",
    # elementwise functions, any shape (the activations)
    "elementwise": "elementwise.py.j2",
    # arrays over several sizes, sums over two of them as matrix products (attention)
    "matrices": "attention.py.j2",
}
# The layouts of the normalization family: a root statistic held by its inverse.
NORM_LAYOUTS = ("channels", "trailing", "groups")
# "value": one value per statistic (no per-element symbol may remain);
# "terms": sum over per-element products, each with a per-statistic coefficient;
# "factored": the same with the first coefficient factored out, a*(u + k*v + ...).
# "element": one value per element, over the row's reductions where a row has them
# (the layouts "rows" and "elementwise"); "array": one array over the claim's free
# indices (the layout "matrices").
FORMS = ("value", "terms", "factored", "element", "array")
EMIT_KEYS = {"module", "layout", "mean", "root", "inverse", "formulas", "names", "constants"}
EMIT_KEYS_NORM = {"module", "layout", "mean", "root", "inverse", "formulas"}
EMIT_KEYS_ROWS = {"module", "layout", "formulas", "names", "constants"}
# The node values the elementwise and row templates compute with a primitive of their own
# (stable for large |u|), by name: the node's definition must be this function of its
# argument (codegen checks it), so the primitive computes the verified node.
PRIMITIVES = ("sigmoid", "tanh")
FORMULA_KEYS = {"name", "claim", "function", "form", "coefficients", "doc"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A module has a handful of helpers; the bound keeps a hostile file small.
MAX_FORMULAS = 32


class EmitError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class FormulaSpec:
    name: str
    claim: str
    function: str
    form: str
    coefficients: tuple[str, ...]
    doc: str
    field: str  # e.g. "emit.formulas[2]", for messages


@dataclass(frozen=True)
class EmitSpec:
    module: str
    layout: str
    mean: str
    root: str
    inverse: str
    formulas: tuple[FormulaSpec, ...]
    # layouts "rows", "elementwise": model name -> name in the generated code (inputs and
    # the nodes the code holds as arrays), and scalar inputs fixed to a number
    names: tuple[tuple[str, str], ...] = ()
    constants: tuple[tuple[str, float], ...] = ()

    @property
    def template(self) -> str:
        return LAYOUTS[self.layout]

    def formula(self, name: str) -> FormulaSpec:
        for f in self.formulas:
            if f.name == name:
                return f
        raise KeyError(name)


def _identifier(raw, key, field, *, required=True, private=False) -> str:
    value = raw.get(key, "")
    if value == "" and not required:
        return ""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise EmitError(field, f"expected a Python name, got {value!r}")
    if private != value.startswith("_"):
        want = "start with _ (a private helper)" if private else "not start with _"
        raise EmitError(field, f"expected a name that does {want}, got {value!r}")
    return value


def _unknown(raw, allowed, where):
    extra = sorted(set(raw) - allowed)
    if extra:
        raise EmitError(
            f"{where}.{extra[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}"
        )


def _names(raw, model_names) -> tuple[tuple[str, str], ...]:
    table = raw.get("names", {})
    if not isinstance(table, dict) or not table:
        raise EmitError("emit.names", "expected a table of model name = code name")
    out, used = [], set()
    for key, value in table.items():
        if key not in model_names:
            raise EmitError(f"emit.names.{key}", "not an input or node of the model")
        if not isinstance(value, str) or not IDENTIFIER.match(value) or value.startswith("_"):
            raise EmitError(f"emit.names.{key}", f"expected a Python name, got {value!r}")
        if value in used or value in RESERVED:
            raise EmitError(f"emit.names.{key}", f"the name {value!r} is already taken")
        used.add(value)
        out.append((key, value))
    return tuple(sorted(out))


def _constants(raw, scalars) -> tuple[tuple[str, float], ...]:
    table = raw.get("constants", {})
    if not isinstance(table, dict):
        raise EmitError("emit.constants", "expected a table of scalar input = number")
    out = []
    for key, value in table.items():
        if key not in scalars:
            raise EmitError(f"emit.constants.{key}", "not a scalar input of the model")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise EmitError(f"emit.constants.{key}", f"expected a finite number, got {value!r}")
        if abs(value) == float("inf"):
            raise EmitError(f"emit.constants.{key}", f"expected a finite number, got {value!r}")
        out.append((key, float(value)))
    return tuple(sorted(out))


# Names the row and elementwise templates use for themselves.
RESERVED = frozenset({"n", "np", "row", "rows", "axis", "out", "flag", "bad", "T"})


def from_table(raw, claim_ids, statistics, model_names=frozenset(), scalars=frozenset()):
    """An EmitSpec from a parsed ``[emit]`` table; claim_ids are the document's claims,
    statistics the scalar nodes of its model (what mean and root may name), model_names
    its inputs and nodes and scalars its scalar inputs (what names and constants may
    name)."""
    if not isinstance(raw, dict):
        raise EmitError("emit", "expected an [emit] table")
    _unknown(raw, EMIT_KEYS, "emit")
    module = _identifier(raw, "module", "emit.module")
    problem = name_problem(module)
    if problem:
        raise EmitError("emit.module", problem)
    layout = raw.get("layout")
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise EmitError("emit.layout", f"expected one of {sorted(LAYOUTS)}, got {layout!r}")
    if layout not in NORM_LAYOUTS:
        _unknown(raw, EMIT_KEYS_ROWS, "emit")
        names = _names(raw, model_names)
        constants = _constants(raw, scalars)
        both = sorted({k for k, _ in names} & {k for k, _ in constants})
        if both:  # a constant is printed as its value: a code name for it would go unused
            raise EmitError(f"emit.names.{both[0]}", "also in emit.constants: give it one")
        formulas = _formulas(raw, claim_ids, layout)
        return EmitSpec(module, layout, "", "", "", formulas, names, constants)
    _unknown(raw, EMIT_KEYS_NORM, "emit")
    mean = _identifier(raw, "mean", "emit.mean", required=False)
    root = _identifier(raw, "root", "emit.root")
    # A statistic the model computes, or one it takes as an input (eval mode's running
    # mean and root): either is held fixed per statistic by the generated code.
    allowed = frozenset(statistics) | frozenset(scalars)
    for key, value in (("mean", mean), ("root", root)):
        if value and value not in allowed:
            raise EmitError(
                f"emit.{key}",
                f"expected a statistic or a scalar input of the model"
                f" ({', '.join(sorted(allowed))}), got {value!r}",
            )
    inverse = _identifier(raw, "inverse", "emit.inverse")
    return EmitSpec(module, layout, mean, root, inverse, _formulas(raw, claim_ids, layout))


def _formulas(raw, claim_ids, layout) -> tuple[FormulaSpec, ...]:
    formulas = raw.get("formulas")
    if not isinstance(formulas, list) or not formulas:
        raise EmitError("emit.formulas", "expected at least one [[emit.formulas]] entry")
    if len(formulas) > MAX_FORMULAS:
        raise EmitError("emit.formulas", f"at most {MAX_FORMULAS} entries")
    out, names = [], set()
    for pos, f in enumerate(formulas, 1):
        field = f"emit.formulas[{pos}]"
        if not isinstance(f, dict):
            raise EmitError(field, "expected a table")
        _unknown(f, FORMULA_KEYS, field)
        name = _identifier(f, "name", f"{field}.name", private=True)
        if name in names:
            raise EmitError(f"{field}.name", f"{name!r} is already a formula of this document")
        names.add(name)
        claim = f.get("claim")
        if not isinstance(claim, str) or claim not in claim_ids:
            raise EmitError(
                f"{field}.claim", f"expected a claim id of this document, got {claim!r}"
            )
        function = _identifier(f, "function", f"{field}.function")
        form = f.get("form")
        forms = (
            FORMS[:3]
            if layout in NORM_LAYOUTS
            else ("array",)
            if layout == "matrices"
            else ("value", "element")
        )
        if not isinstance(form, str) or form not in forms:
            raise EmitError(f"{field}.form", f"expected one of {list(forms)}, got {form!r}")
        coefficients = f.get("coefficients", [])
        if not isinstance(coefficients, list) or not all(
            isinstance(c, str) and IDENTIFIER.match(c) and not c.startswith("_")
            for c in coefficients
        ):
            raise EmitError(f"{field}.coefficients", "expected a list of Python names")
        if form in ("value", "element", "array") and coefficients:
            raise EmitError(f"{field}.coefficients", "a value has no coefficients")
        if form == "factored" and not coefficients:
            raise EmitError(f"{field}.coefficients", "form 'factored' needs coefficient names")
        if len(set(coefficients)) != len(coefficients):
            raise EmitError(f"{field}.coefficients", "names must differ")
        doc = f.get("doc")
        if not isinstance(doc, str) or not doc.strip() or "\n" in doc or '"""' in doc:
            raise EmitError(f"{field}.doc", "expected one line of text")
        out.append(FormulaSpec(name, claim, function, form, tuple(coefficients), doc, field))
    return tuple(out)
