"""Sizes: what each index ranges over, and the points of a grid a claim is checked at.

A model has one size (``size = "n"``, every index ranges over 1..n) or several
(``sizes = ["T", "E"]``).  With several, an array is declared with the size of each
of its axes (``Q[T, E]``), and the size of every index is *inferred* from where it is
used, never declared: an index in axis p of an array or node takes that axis's size,
``delta(a, b)`` gives a and b one size, and ``sum(f, k, ne=i)`` gives k and i one size.
An index used at two sizes is an error; so is one whose size nothing fixes.  Node
axes are inferred the same way, from their definitions, in declaration order.

This is read from the syntax tree alone (``language.read``), before any SymPy, so
the model and the claims are checked for consistent sizes at load time.

A point of the grid is an int for a one-size model (n = 3) and a ``Point`` (T = 2,
E = 3) for a model with several sizes; ``at`` says either in words.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass

# The points of one grid: every combination of the sizes' values.  A model of three
# sizes over 1..8 is 512 points; more than this is asked for by mistake.
MAX_POINTS = 512
# The default values of each size of a model with several sizes, where no --n or
# --sizes is given: small enough that a shipped document verifies in seconds.
DEFAULT_VALUES = (1, 2, 3)


class SizeError(ValueError):
    """Sizes that do not agree: an index used at two sizes, or one no use fixes."""


@dataclass(frozen=True, order=True)
class Point:
    """One value per size, in declaration order: (("T", 2), ("E", 3))."""

    values: tuple[tuple[str, int], ...]

    def __getitem__(self, name: str) -> int:
        return dict(self.values)[name]

    def __str__(self) -> str:
        return ", ".join(f"{k} = {v}" for k, v in self.values)

    def as_dict(self) -> dict[str, int]:
        return dict(self.values)


def at(n) -> str:
    """'n = 3', or 'T = 2, E = 3': where a check ran, in words."""
    return str(n) if isinstance(n, Point) else f"n = {n}"


def json_of(n):
    return n.as_dict() if isinstance(n, Point) else n


def grid(names: tuple[str, ...], ns=None, per_size: dict | None = None) -> list:
    """The points a model with sizes ``names`` is checked at.

    One size: the ints of ns.  Several: every combination, each size over ns (or
    DEFAULT_VALUES where ns is None), a size named in per_size over its own values."""
    per_size = dict(per_size or {})
    unknown = sorted(set(per_size) - set(names))
    if unknown:
        raise SizeError(f"--sizes names {unknown[0]!r}, not a size of this model")
    if len(names) == 1 and not per_size:
        return list(ns) if ns is not None else [*range(1, 9)]
    default = tuple(ns) if ns is not None else DEFAULT_VALUES
    axes = [tuple(per_size.get(name, default)) for name in names]
    count = 1
    for axis in axes:
        count *= len(axis)
    if count > MAX_POINTS:
        raise SizeError(f"{count} points in the grid; at most {MAX_POINTS}")
    if len(names) == 1:
        return list(axes[0])
    return [Point(tuple(zip(names, combo, strict=True))) for combo in itertools.product(*axes)]


def parse_sizes(text: str, parse_ns) -> dict[str, tuple[int, ...]]:
    """'T=1..3,E=1..2' -> {"T": (1, 2, 3), "E": (1, 2)}; parse_ns reads each range."""
    out: dict[str, tuple[int, ...]] = {}
    for part in _split_top(text):
        name, eq, values = part.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            raise ValueError(f"expected NAME=RANGE, got {part.strip()!r}")
        if name in out:
            raise ValueError(f"size {name} given twice")
        out[name] = parse_ns(values.strip())
    if not out:
        raise ValueError("expected NAME=RANGE[,NAME=RANGE...]")
    return out


def _split_top(text: str) -> list[str]:
    """Split at the commas that start a new NAME=: 'T=1..3,5,E=2' -> ['T=1..3,5', 'E=2']."""
    parts: list[str] = []
    for piece in text.split(","):
        if "=" in piece or not parts:
            parts.append(piece)
        else:
            parts[-1] += "," + piece
    return [p for p in parts if p.strip()]


# -- inference ---------------------------------------------------------------------------
class _Classes:
    """Union-find over index names, each class with the sizes its uses give it."""

    def __init__(self):
        self.parent: dict[str, str] = {}
        self.sizes: dict[str, dict[str, str]] = {}  # root -> {size: where it was met}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.sizes.setdefault(ra, {}).update(self.sizes.pop(rb, {}))

    def give(self, a: str, size: str, where: str) -> None:
        self.sizes.setdefault(self.find(a), {}).setdefault(size, where)

    def resolve(self, names) -> dict[str, str]:
        out = {}
        for a in sorted(names):
            met = self.sizes.get(self.find(a), {})
            if len(met) > 1:
                (s1, w1), (s2, w2) = sorted(met.items())[:2]
                raise SizeError(f"index {a} is used at two sizes: {s1} ({w1}) and {s2} ({w2})")
            if met:
                out[a] = next(iter(met))
        return out


def _names(node) -> list[str]:
    return [a.id for a in ast.walk(node) if isinstance(a, ast.Name)]


def slots(subscript: ast.Subscript) -> list[ast.expr]:
    """The index expressions of x[e] or Q[e1, e2]."""
    s = subscript.slice
    return list(s.elts) if isinstance(s, ast.Tuple) else [s]


def infer(trees, dims: dict[str, tuple[str, ...]], declared, single: str | None) -> dict:
    """index name -> size name, for every index the trees (one claim case's sides, or
    one node's definition) use.

    dims: each indexed name's axis sizes; declared: every name that is not an index;
    single: the size of a one-size model (every index gets it), else None."""
    classes = _Classes()
    indices: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                name = node.value.id
                if name not in dims:
                    continue  # language.py says what is wrong with it
                axes = slots(node)
                if len(axes) != len(dims[name]):
                    want = len(dims[name])
                    raise SizeError(
                        f"{name} takes {want} ind{'ex' if want == 1 else 'ices'}, got {len(axes)}"
                    )
                for p, (slot, size) in enumerate(zip(axes, dims[name], strict=True), 1):
                    for a in _names(slot):
                        if a not in declared:
                            indices.add(a)
                            classes.give(a, size, f"axis {p} of {name}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "delta" and len(node.args) == 2:
                    together = [a for arg in node.args for a in _names(arg) if a not in declared]
                    for a in together[1:]:
                        classes.union(together[0], a)
                    indices.update(together)
                elif node.func.id == "sum" and len(node.args) == 2:
                    k = node.args[1]
                    if isinstance(k, ast.Name) and k.id not in declared:
                        indices.add(k.id)
                        for kw in node.keywords:
                            if isinstance(kw.value, ast.Name):
                                indices.add(kw.value.id)
                                classes.union(k.id, kw.value.id)
    if single is not None:
        return dict.fromkeys(indices, single)
    return classes.resolve(indices)
