"""Model declarations: the ``[model]`` table of a claim file, and the presets.

A model is data: the name of the batch size, the indexed inputs (vectors),
the scalar inputs (some known to be >= 0) and an ordered list of nodes, each
``name = expr`` or ``name[i] = expr`` in the claim language.  Nothing here
knows batch norm: the old ``model = "xhat"`` / ``"layer"`` kinds are presets
written in the same form.

A node whose whole definition is ``sqrt(u)``, ``exp(u)`` or ``log(u)`` is of
that kind (a root with s**2 == u, ...); every other node is ``explicit``.  See
``nodes.py``.  ``positive`` names inputs known to be > 0 (every element, for a
vector); ``constraints`` are equalities among the inputs, ``lhs = rhs``, and
claims are checked where they all hold (see ``model.py``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# The language's own function names and the names SymPy's printers treat
# specially can never be declared.
RESERVED = frozenset({"sum", "d", "D", "delta", "sqrt", "exp", "log", "ne"})
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# name = expr, name[i] = expr, name[i, j] = expr
_NODE = re.compile(rf"\s*({_NAME})\s*(?:\[\s*({_NAME}(?:\s*,\s*{_NAME})*)\s*\])?\s*=(.*)\Z")
# An input array with the size of each axis: Q[T, E]
_ARRAY = re.compile(rf"\s*({_NAME})\s*\[\s*({_NAME}(?:\s*,\s*{_NAME})*)\s*\]\s*\Z")
# The keys whose value is a list of strings; with "size", every key of [model].
LIST_KEYS = (
    "sizes",
    "vectors",
    "arrays",
    "scalars",
    "nonnegative",
    "positive",
    "constraints",
    "nodes",
)
MODEL_KEYS = {"size", *LIST_KEYS}
# An array or node has at most this many axes (attention's are two).
MAX_AXES = 4
# A model is small by nature (batch norm has 7 nodes); the bound keeps a
# hostile file from declaring thousands of names.
MAX_DECLARATIONS = 64


class SpecError(ValueError):
    """A malformed [model] table; ``field`` names the offending key."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    index: str | None  # "i" for name[i] = ... (the first of name[i, j]), None for a scalar
    text: str  # the definition, in the claim language
    field: str  # where it was declared, e.g. "model.nodes[3]"
    indices: tuple[str, ...] = ()  # every index of the left side: ("i", "j") for S[i, j]

    def __post_init__(self):
        if not self.indices and self.index is not None:
            object.__setattr__(self, "indices", (self.index,))


@dataclass(frozen=True)
class ConstraintSpec:
    lhs: str
    rhs: str
    field: str  # e.g. "model.constraints[1]"

    @property
    def text(self) -> str:
        return f"{self.lhs} = {self.rhs}"


@dataclass(frozen=True)
class ModelSpec:
    size: str = "n"
    vectors: tuple[str, ...] = ()
    scalars: tuple[str, ...] = ()
    nonnegative: tuple[str, ...] = ()
    nodes: tuple[NodeSpec, ...] = ()
    preset: str = ""  # the preset it came from, "" when declared in the file
    positive: tuple[str, ...] = ()  # vectors whose every element is > 0, and scalars > 0
    constraints: tuple[ConstraintSpec, ...] = ()
    sizes: tuple[str, ...] = ()  # several sizes (then ``size`` is the first); () for one
    arrays: tuple[tuple[str, tuple[str, ...]], ...] = ()  # ("Q", ("T", "E")): inputs and axes
    node_axes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # inferred (sizes.infer)

    @property
    def several(self) -> bool:
        """More than one size: indices range over the size inferred for each."""
        return len(self.sizes) > 1

    @property
    def size_names(self) -> tuple[str, ...]:
        return self.sizes if self.several else (self.size,)

    @property
    def indexed_inputs(self) -> tuple[str, ...]:
        """Every input with an index: the vectors, then the arrays."""
        return (*self.vectors, *(name for name, _ in self.arrays))

    @property
    def axes(self) -> dict[str, tuple[str, ...]]:
        """The size of each axis of every indexed input and node."""
        out = {v: (self.size,) for v in self.vectors}
        out.update(self.arrays)
        if self.several:
            out.update(self.node_axes)
        else:
            out.update({n.name: (self.size,) * len(n.indices) for n in self.nodes if n.indices})
        return out

    @property
    def positive_scalars(self) -> tuple[str, ...]:
        return tuple(v for v in self.positive if v not in self.indexed_inputs)

    @property
    def all_scalars(self) -> tuple[str, ...]:
        """Every scalar input: real, nonnegative, then positive."""
        return (*self.scalars, *self.nonnegative, *self.positive_scalars)

    @property
    def declared(self) -> tuple[str, ...]:
        return (
            *self.size_names,
            *self.indexed_inputs,
            *self.all_scalars,
            *(node.name for node in self.nodes),
        )

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def has_eps(self) -> bool:
        return "eps" in self.nonnegative


def from_table(table) -> ModelSpec:
    """A ModelSpec from a parsed ``[model]`` TOML table (checked, not evaluated)."""
    if not isinstance(table, dict):
        raise SpecError("model", "expected a [model] table")
    extra = sorted(set(table) - MODEL_KEYS)
    if extra:
        raise SpecError(
            f"model.{extra[0]}", f"unknown key; allowed: {', '.join(sorted(MODEL_KEYS))}"
        )
    if "size" in table and "sizes" in table:
        raise SpecError("model.sizes", "give either size (one size) or sizes (several)")
    size = table.get("size", "n")
    if not isinstance(size, str) or not IDENTIFIER.match(size):
        raise SpecError("model.size", f"expected a name, got {size!r}")
    lists = {}
    for key in LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"model.{key}", "expected a list of strings")
        if len(value) > MAX_DECLARATIONS:
            raise SpecError(f"model.{key}", f"at most {MAX_DECLARATIONS} entries")
        lists[key] = value
    for key in ("sizes", "vectors", "scalars", "nonnegative", "positive"):
        for pos, name in enumerate(lists[key], 1):
            if not IDENTIFIER.match(name):
                raise SpecError(f"model.{key}[{pos}]", f"expected a name, got {name!r}")
    sizes = tuple(lists["sizes"])
    if "sizes" in table and not sizes:
        raise SpecError("model.sizes", "expected at least one size")
    if sizes:
        size = sizes[0]
    if len(sizes) == 1:
        sizes = ()  # one size, however it was declared
    if sizes and lists["vectors"]:
        raise SpecError(
            "model.vectors",
            'a model with several sizes declares its inputs as arrays, e.g. arrays = ["x[N]"]',
        )
    arrays = []
    for pos, text in enumerate(lists["arrays"], 1):
        field = f"model.arrays[{pos}]"
        m = _ARRAY.match(text)
        if not m:
            raise SpecError(field, f"expected 'name[size, ...]', got {text!r}")
        axes = _bracketed(m.group(2), field, "axes")
        for a in axes:
            if a not in (sizes or (size,)):
                raise SpecError(field, f"{a!r} is not a declared size")
        arrays.append((m.group(1), axes))
    nodes = []
    for pos, text in enumerate(lists["nodes"], 1):
        field = f"model.nodes[{pos}]"
        m = _NODE.match(text)
        if not m:
            raise SpecError(field, f"expected 'name = expr' or 'name[i, ...] = expr', got {text!r}")
        name, body = m.group(1), m.group(3).strip()
        if not body:
            raise SpecError(field, "empty definition")
        indices = _bracketed(m.group(2), field, "indices")
        if len(set(indices)) != len(indices):
            raise SpecError(field, "an index occurs twice on the left side")
        if len(indices) > 1 and not sizes:
            raise SpecError(field, "a node of several indices needs several sizes (model.sizes)")
        nodes.append(NodeSpec(name, indices[0] if indices else None, body, field, indices))
    constraints = []
    for pos, text in enumerate(lists["constraints"], 1):
        field = f"model.constraints[{pos}]"
        sides = text.split("=")
        if len(sides) != 2 or not all(side.strip() for side in sides):
            raise SpecError(field, f"expected one equality 'lhs = rhs', got {text!r}")
        constraints.append(ConstraintSpec(sides[0].strip(), sides[1].strip(), field))
    spec = ModelSpec(
        size=size,
        vectors=tuple(lists["vectors"]),
        scalars=tuple(lists["scalars"]),
        nonnegative=tuple(lists["nonnegative"]),
        nodes=tuple(nodes),
        positive=tuple(lists["positive"]),
        constraints=tuple(constraints),
        sizes=sizes,
        arrays=tuple(arrays),
    )
    check_names(spec)
    if sizes:
        spec = dataclasses.replace(spec, node_axes=_node_axes(spec))
    check_names(spec)
    return spec


# The symbolic size's own name (language.N_SYMBOL), whatever the document calls
# the size: an index of that name would be the size's symbol in the all-n proofs.
SIZE_SYMBOL_NAME = "n"


def _bracketed(text: str | None, field: str, what: str) -> tuple[str, ...]:
    """The names between the brackets of Q[T, E] or S[i, j] (none for a scalar)."""
    names = tuple(a.strip() for a in text.split(",")) if text else ()
    if len(names) > MAX_AXES:
        raise SpecError(field, f"at most {MAX_AXES} {what}")
    return names


def _node_axes(spec: ModelSpec) -> tuple:
    """Each indexed node's axis sizes, inferred from its definition (declaration order:
    a definition uses only the inputs and the nodes before it)."""
    from .language import LanguageError, read
    from .sizes import SizeError, infer

    axes = dict(spec.arrays)
    declared = frozenset(spec.declared)
    out = []
    for node in spec.nodes:
        try:
            found = infer([read(node.text)], axes, declared, None)
        except (SizeError, LanguageError) as exc:
            raise SpecError(node.field, str(exc)) from None
        if not node.indices:
            continue
        missing = [i for i in node.indices if i not in found]
        if missing:
            raise SpecError(
                node.field,
                f"cannot tell what size index {missing[0]} ranges over: "
                "use it in an axis of an array",
            )
        axes[node.name] = tuple(found[i] for i in node.indices)
        out.append((node.name, axes[node.name]))
    return tuple(out)


def check_names(spec: ModelSpec) -> None:
    """Every declared name is new, not reserved, and no node index is declared."""
    seen: dict[str, str] = {}
    if spec.several:
        fields = [(f"model.sizes[{k}]", v) for k, v in enumerate(spec.sizes, 1)]
    else:
        fields = [("model.size", spec.size)]
    fields += [(f"model.vectors[{k}]", v) for k, v in enumerate(spec.vectors, 1)]
    fields += [(f"model.arrays[{k}]", v) for k, (v, _) in enumerate(spec.arrays, 1)]
    fields += [(f"model.scalars[{k}]", v) for k, v in enumerate(spec.scalars, 1)]
    fields += [(f"model.nonnegative[{k}]", v) for k, v in enumerate(spec.nonnegative, 1)]
    fields += [
        (f"model.positive[{k}]", v)
        for k, v in enumerate(spec.positive, 1)
        if v not in spec.indexed_inputs
    ]
    fields += [(node.field, node.name) for node in spec.nodes]
    for field, name in fields:
        if name in RESERVED or name.startswith("_"):
            raise SpecError(field, f"{name!r} is reserved")
        if name in seen:
            raise SpecError(field, f"{name!r} is already declared ({seen[name]})")
        seen[name] = field
    for node in spec.nodes:
        for index in node.indices:
            if index in seen:
                raise SpecError(node.field, f"index {index!r} is a declared name")
            if index == SIZE_SYMBOL_NAME:
                raise SpecError(node.field, f"index {SIZE_SYMBOL_NAME!r} is reserved for the size")
    for k, v in enumerate(spec.positive, 1):
        if spec.positive.index(v) != k - 1:
            raise SpecError(f"model.positive[{k}]", f"{v!r} is already declared positive")


def _batchnorm(upstream: str, layer: bool, eps: bool) -> ModelSpec:
    e = " + eps" if eps else ""
    loss = f"sum({upstream}[k]*y[k], k)" if layer else f"sum({upstream}[k]*xhat[k], k)"
    texts = [
        ("mu", None, "sum(x[k], k)/n"),
        ("sigma", None, f"sqrt(sum((x[k] - mu)**2, k)/n{e})"),
        ("xhat", "i", "(x[i] - mu)/sigma"),
        *([("y", "i", "gamma*xhat[i] + beta")] if layer else []),
        ("L", None, loss),
        # Route C of the post: the centred vector p = x - mu, and L written in p.
        ("p", "i", "x[i] - mu"),
        ("sigma_p", None, f"sqrt(sum(p[k]**2, k)/n{e})"),
        ("L_p", None, f"sum({upstream}[k]*p[k], k)/sigma_p"),
    ]
    nodes = tuple(
        NodeSpec(name, index, text, f"model.nodes[{pos}]")
        for pos, (name, index, text) in enumerate(texts, 1)
    )
    return ModelSpec(
        size="n",
        vectors=("x", upstream),
        scalars=("gamma", "beta") if layer else (),
        nonnegative=("eps",) if eps else (),
        nodes=nodes,
        preset="layer" if layer else "xhat",
    )


PRESETS = ("xhat", "layer")


def preset(kind: str, eps: bool) -> ModelSpec:
    """The batch-norm presets: "xhat" (L = Σ g_j x̂_j) and "layer" (y = γ x̂ + β)."""
    if kind == "xhat":
        return _batchnorm("g", layer=False, eps=eps)
    if kind == "layer":
        return _batchnorm("dy", layer=True, eps=eps)
    raise SpecError("document.model", f"expected one of {PRESETS}, got {kind!r}")
