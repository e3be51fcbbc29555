"""``Model(spec, n)``: a declared graph at a concrete or symbolic batch size.

The spec (``spec.py``) lists inputs and nodes; here each node's definition is
read with the claim language, and the two derivatives are defined once, for
every model, by the graph alone:

* ``partial(f, v)``, the language's ``d``: every node in f is replaced by its
  one-level definition, whose inputs are held fixed (so ``d(xhat[j], x[i])``
  holds μ and σ fixed, and ``d(sigma, mu)`` is ∂σ/∂μ with x fixed);
* ``adjoint(f, v)``, the language's ``D``: v is perturbed, its ancestors are
  held fixed and everything downstream of v is recomputed: backprop's ∂ℓ/∂v.
  ``D(L, var)`` is the batch-norm paper's ∂ℓ/∂σ²_B.

Both keep scalar nodes (μ, σ, L, ...) as symbols and apply the chain rule
through them, memoised; indexed nodes are replaced by their definitions, since
they may sit under a sum whose index ranges over v's own position.  No rule
names a particular node.  The same code runs for a concrete n (sums become
``Add``) and a symbolic n (sums stay ``Sum`` for the general-n prover).


Length: one module on purpose. The two derivatives, the sums and the sizes read one
graph and share its memos; split up, each would need the others' internals.
"""

from __future__ import annotations

import ast
import functools
import itertools

import sympy as sp
from sympy import Indexed, IndexedBase, KroneckerDelta, Sum, Symbol

from . import chainrule
from . import nodes as kinds
from .language import N_SYMBOL, LanguageError, PositionError, index_sizes, parse_side, read
from .sizes import Point, at
from .spec import ModelSpec, NodeSpec, SpecError

_CALL_KINDS = {"sqrt": kinds.ROOT, "exp": kinds.EXP, "log": kinds.LOG}


class ModelError(ValueError):
    """A claim asks the model for something it does not have."""


class Node:
    """One declared node at one n: its symbol or base, index, kind and body.

    A definition that has no value at this n (it divides by n - 1 at n = 1)
    keeps the reason instead of a body: every use of the node at this n is then
    not applicable (PositionError), and the model stays usable for other nodes."""

    def __init__(
        self, spec: NodeSpec, atom, indices: tuple, kind, body, undefined="", conditions=()
    ):
        self.spec, self.atom, self.indices, self.kind = spec, atom, tuple(indices), kind
        self.index = self.indices[0] if self.indices else None
        self._body, self.undefined = body, undefined
        # (how, expr): where the definition has a value (a log's argument > 0 inside
        # it, ...), kept because SymPy may drop it (exp(log(u)) -> u).  The kind's
        # own domain (a log node's body > 0) is the kind's: nodes.Kind.domain.
        self.conditions = conditions

    def _at(self, position) -> dict:
        positions = position if isinstance(position, tuple) else (position,)
        return dict(zip(self.indices, positions, strict=True))

    def conditions_at(self, position):
        """position: the instance's index value, or a tuple of them (S[i, j])."""
        if self.index is None or not self.conditions:
            return self.conditions
        at = self._at(position)
        return tuple((how, c.xreplace(at)) for how, c in self.conditions)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def body(self):
        if self.undefined:
            raise PositionError(self.undefined)
        return self._body

    def body_at(self, position):
        """The body of the instance at ``position`` (a value, or a tuple of them)."""
        return self.body if self.index is None else self.body.xreplace(self._at(position))

    def definition_at(self, position):
        return self.kind.function(self.body_at(position))


def _definition_index(node: str, name: str) -> Symbol:
    # Braces cannot occur in a name a file writes, so a definition's own
    # indices never capture a claim's index (sum(d(mu, x[k]), k) for symbolic n).
    return Symbol(f"{name}_{{{node}}}", integer=True)


class Model:
    def __init__(self, spec: ModelSpec, n):
        if isinstance(n, int) and n < 1:
            raise ModelError(f"n must be a positive integer, got {n}")
        self.spec = spec
        self.n = n
        self._sum_memo: dict = {}  # claims repeat their sums (Σ dy_k x̂_k)
        self._holds: dict = {}  # per index: which subexpressions hold it
        self.size = sp.Integer(n) if isinstance(n, int) else N_SYMBOL
        if isinstance(n, Point):
            if tuple(k for k, _ in n.values) != spec.size_names:
                raise ModelError(f"{n} does not give the sizes {', '.join(spec.size_names)}")
            if min(v for _, v in n.values) < 1:
                raise ModelError(f"every size must be a positive integer, got {n}")
            self.size = None  # several: each index has its own (size_of)
        self.axes = spec.axes
        # The last position of every axis, for the position checks (a concrete model).
        self.bounds: dict[str, tuple[int, ...]] = {}
        if isinstance(n, int | Point):
            self.bounds = {
                name: tuple(n[a] if isinstance(n, Point) else n for a in axes)
                for name, axes in self.axes.items()
            }
        positive = set(spec.positive)
        self.families: dict[str, IndexedBase] = {
            v: IndexedBase(v, positive=True) if v in positive else IndexedBase(v, real=True)
            for v in spec.indexed_inputs
        }
        self.scalars: dict[str, Symbol] = {v: Symbol(v, real=True) for v in spec.scalars}
        self.scalars.update({v: Symbol(v, nonnegative=True) for v in spec.nonnegative})
        self.scalars.update({v: Symbol(v, positive=True) for v in spec.positive_scalars})
        self.input_names = frozenset(self.families) | frozenset(self.scalars)
        for node in spec.nodes:
            if node.index is None:
                self.scalars[node.name] = Symbol(node.name, real=True)
            else:
                self.families[node.name] = IndexedBase(node.name, real=True)
        self.nodes: dict[str, Node] = {}
        self.node_atoms: dict = {}  # scalar node symbol -> Node
        self.node_bases: dict = {}  # indexed node base -> Node
        visible = set(self.input_names)
        for node in spec.nodes:
            read_node = self.nodes[node.name] = self._read_node(node, visible)
            (self.node_atoms if node.index is None else self.node_bases)[read_node.atom] = read_node
            visible.add(node.name)
        self._deps = {name: self._direct_deps(node) for name, node in self.nodes.items()}
        self._descendants = {
            name: self._find_descendants(name) for name in (*self.input_names, *self.nodes)
        }
        self._adjoint_memo: dict = {}
        self._diff_memo: dict = {}
        self._inputs_memo: dict = {}
        self.constraints = tuple(self._read_constraint(c) for c in spec.constraints)
        self.solved = self._solve() if not self.symbolic else ()

    # -- constraints ---------------------------------------------------------
    def _read_constraint(self, c):
        """lhs - rhs, over the inputs only."""
        try:
            sides = [
                parse_side(t, self, {}, names=self.input_names, derivatives=False)
                for t in (c.lhs, c.rhs)
            ]
        except PositionError as exc:
            raise SpecError(c.field, f"{exc} (a constraint must hold at every n)") from None
        except LanguageError as exc:
            raise SpecError(c.field, str(exc)) from None
        expr = sides[0][0] - sides[1][0]
        if expr.has(sp.exp, sp.log) or any(
            p.is_Pow and not p.exp.is_Integer for p in expr.atoms(sp.Pow)
        ):
            raise SpecError(c.field, "a constraint must be polynomial in the inputs")
        return expr

    def _solve(self):
        """Each constraint solved for one input: ((atom, value), ...) in order, each
        value in the inputs not yet solved.  The input is the last one (declaration
        order, highest position) that occurs linearly with a constant coefficient."""
        solved: list = []
        for c, expr in zip(self.spec.constraints, self.constraints, strict=True):
            e = sp.expand(expr.xreplace(dict(solved)))
            if e == 0:
                continue
            atoms = [a for a in self._input_atoms() if e.has(a)]
            for a in reversed(atoms):
                coeff = e.coeff(a, 1)
                if coeff.is_Rational and coeff != 0 and not (e - coeff * a).has(a):
                    value = sp.expand(a - e / coeff)
                    solved = [(b, sp.expand(v.xreplace({a: value}))) for b, v in solved]
                    solved.append((a, value))
                    break
            else:
                if not atoms:
                    raise SpecError(c.field, f"{c.text!r} never holds at {at(self.n)}")
                raise SpecError(
                    c.field,
                    f"cannot solve {c.text!r} for an input: one input must occur linearly, "
                    "with a constant coefficient",
                )
        return tuple(solved)

    def _input_atoms(self):
        out = [self.families[v][c] for v in self.spec.indexed_inputs for c in self.positions(v)]
        return out + [self.scalars[v] for v in self.spec.all_scalars]

    # -- sizes -------------------------------------------------------------
    def size_of(self, name: str):
        """The value of the size called name here: an Integer, or its symbol (the
        symbolic n; with several sizes, one integer symbol per size, never the same)."""
        if isinstance(self.n, Point):
            return sp.Integer(self.n[name])
        if self.symbolic and self.spec.several:
            return size_symbol(name)
        return self.size

    def is_size(self, atom) -> bool:
        """atom is the symbol of a size (n, or one of several), not an index."""
        return atom == N_SYMBOL or any(atom == size_symbol(k) for k in self.spec.sizes)

    def positions(self, name: str) -> list:
        """Every position of an indexed input or node: ints for one axis, else tuples."""
        ranges = [range(1, int(self.size_of(a)) + 1) for a in self.axes[name]]
        if len(ranges) == 1:
            return list(ranges[0])
        return list(itertools.product(*ranges))

    def index_sizes(self, texts) -> dict:
        """index name -> the size it ranges over, for the indices of these sides."""
        return index_sizes(self.spec, tuple(texts))

    @functools.cached_property
    def constrained(self) -> frozenset[str]:
        """The inputs (by name) that some constraint mentions."""
        return frozenset(
            self.name_of(a)
            for e in self.constraints
            for a in e.free_symbols | e.atoms(Indexed)
            if isinstance(a, Indexed) or a.name in self.input_names
        )

    # -- reading the declarations -------------------------------------------
    def _read_node(self, spec: NodeSpec, visible) -> Node:
        indices = tuple(_definition_index(spec.name, i) for i in spec.indices)
        assignment = dict(zip(spec.indices, indices, strict=True))
        text, kind = spec.text, kinds.EXPLICIT
        try:
            top = read(text)
            if isinstance(top, ast.Call) and top.func.id in _CALL_KINDS and len(top.args) == 1:
                # A root (or exp, log) by declaration: SymPy would split sqrt(u/n) into
                # sqrt(u)/sqrt(n), and exp(log(u)) into u, losing the node.
                text = ast.get_source_segment(text.strip(), top.args[0])
                kind = _CALL_KINDS[top.func.id]
            expr, _, _, conditions = parse_side(
                text, self, assignment, names=frozenset(visible), derivatives=False
            )
            if kind.domain and expr.is_Number:
                if expr < 0 or (expr == 0 and kind.domain == "positive"):
                    what = f"{kind.name}({expr}) has no real value"
                    names = {a.id for a in ast.walk(read(text)) if isinstance(a, ast.Name)}
                    if self.spec.size not in names:
                        raise LanguageError(what)
                    raise PositionError(f"{what} at {at(self.n)}")
        except PositionError as exc:
            atom = self.families[spec.name] if spec.index else self.scalars[spec.name]
            return Node(spec, atom, indices, kind, None, f"node {spec.name}: {exc}")
        except LanguageError as exc:
            raise SpecError(spec.field, str(exc)) from None
        # Rename the definition's own sum indices (see _definition_index).
        renames = {}
        for s in expr.atoms(Sum):
            for k in s.variables:
                renames[k] = _definition_index(spec.name, k.name)
        expr = expr.xreplace(renames)
        conditions = tuple((how, c.xreplace(renames)) for how, c in conditions)
        if spec.index is None and any(
            a.is_Symbol and a.is_integer for a in expr.free_symbols if not self.is_size(a)
        ):
            raise SpecError(spec.field, "a scalar node's definition has a free index")
        atom = self.families[spec.name] if spec.index else self.scalars[spec.name]
        return Node(spec, atom, indices, kind, expr, conditions=conditions)

    def _direct_deps(self, node: Node) -> frozenset[str]:
        """The declared names a definition mentions (read from its text, so a node
        undefined at this n still has its place in the graph)."""
        tree = read(node.spec.text)
        names = {a.id for a in ast.walk(tree) if isinstance(a, ast.Name)}
        return frozenset(names & (set(self.input_names) | set(self.nodes)))

    def descendants(self, name: str) -> frozenset[str]:
        """Nodes that depend on ``name`` (an input or a node), directly or not."""
        return self._descendants[name]

    def _find_descendants(self, name: str) -> frozenset[str]:
        out: set[str] = set()
        for node in self.spec.nodes:  # declaration order is a topological order
            if name in self._deps[node.name] or self._deps[node.name] & out:
                out.add(node.name)
        return frozenset(out)

    @property
    def symbolic(self) -> bool:
        return not isinstance(self.n, int | Point)

    @functools.cached_property
    def symmetric(self) -> bool:
        """Every definition names positions through bare indices only, so permuting
        positions maps the model to itself (see language.positions_by_index_only); with
        several sizes, a permutation of each size's positions, on every axis of that
        size at once (each index ranges over one size)."""
        from .language import positions_by_index_only

        declared = frozenset(self.spec.declared)
        texts = [n.text for n in self.spec.nodes]
        texts += [t for c in self.spec.constraints for t in (c.lhs, c.rhs)]
        return all(positions_by_index_only(t, declared) for t in texts)

    # -- atoms -------------------------------------------------------------
    def node_of(self, atom) -> Node | None:
        """The node an atom is an instance of (σ, or x̂_3), else None."""
        if isinstance(atom, Indexed):
            return self.node_bases.get(atom.base)
        return self.node_atoms.get(atom)

    def name_of(self, v) -> str:
        return v.base.name if isinstance(v, Indexed) else v.name

    def is_variable(self, v) -> bool:
        if isinstance(v, Indexed):
            return v.base in self.families.values()
        return isinstance(v, Symbol) and self.scalars.get(v.name) == v

    def definition(self, atom):
        """One level: the node atom written in its parents."""
        node = self.node_of(atom)
        return node.definition_at(position(atom))

    # -- sums --------------------------------------------------------------
    def sum(self, f, k: Symbol, ne=None, size=None):
        """Σ_k f over k = 1..size (the model's one size by default), skipping k == ne."""
        size = self.size if size is None else size
        key = (f, k, ne, size)
        hit = self._sum_memo.get(key)
        if hit is None:
            hit = self._sum_memo[key] = self._sum(f, k, ne, size)
        return hit

    def _sum(self, f, k, ne, size):
        if self.symbolic:
            if ne is not None:
                f = f * (1 - KroneckerDelta(ne, k))
            return Sum(f, (k, 1, size))
        holds = self._holds.setdefault(k, {})
        return sp.Add(
            *[_at(f, k, sp.Integer(v), holds) for v in range(1, int(size) + 1) if v != ne]
        )

    # -- expansion ---------------------------------------------------------
    def expand(self, e, keep=frozenset()):
        """Every node replaced by its definition, recursively, except nodes named in keep."""

        def target(a):
            node = self.node_of(a)
            return node is not None and node.name not in keep

        return e.replace(target, lambda a: self.expand(self.definition(a), keep))

    @functools.cached_property
    def statistics(self) -> frozenset[str]:
        """Scalar nodes computed without any indexed node (μ, σ, a variance): the
        per-channel quantities a reader and a kernel keep by name."""
        out: set[str] = set()
        for node in self.spec.nodes:
            deps = self._deps[node.name]
            if (
                node.index is None
                and all(d in self.input_names or d in out for d in deps)
                and not any(d in self.node_bases_by_name for d in deps)
            ):
                out.add(node.name)
        return frozenset(out)

    @functools.cached_property
    def node_bases_by_name(self) -> frozenset[str]:
        return frozenset(n.name for n in self.nodes.values() if n.index is not None)

    def graph_form(self, e):
        """e in the inputs and the statistics (x, dy, μ, σ): every other node expanded."""
        return self.expand(e, keep=self.statistics)

    def _substitute_indexed(self, e, names):
        """Indexed nodes of the families in ``names`` replaced by their definitions,
        recursively (their definitions may name other such families)."""
        if not names:
            return e

        def target(a):
            return isinstance(a, Indexed) and a.base.name in names and a.base in self.node_bases

        return e.replace(target, lambda a: self._substitute_indexed(self.definition(a), names))

    # -- derivatives -------------------------------------------------------
    def _check(self, v):
        if not self.is_variable(v):
            raise ModelError(f"cannot differentiate with respect to {v}")

    def partial(self, f, v):
        """Graph-view partial: nodes in f replaced by one level of definition, inputs fixed."""
        self._check(v)
        f = sp.sympify(f)
        keep = self.name_of(v)
        markers = {}
        for s in f.free_symbols:
            node = self.node_atoms.get(s)
            if node is not None and s != v:
                markers[s] = sp.Dummy(s.name, **s.assumptions0)
        e = f.xreplace(markers)
        indexed = {a.base.name for a in e.atoms(Indexed) if a.base in self.node_bases} - {keep}
        e = e.replace(
            lambda a: isinstance(a, Indexed) and a.base.name in indexed,
            self.definition,
        )
        out = self._diff(e, v)
        for s, mark in markers.items():
            node = self.node_atoms[s]
            out += self._diff(e, mark) * node.kind.chain(s, node.body, self._diff(node.body, v))
        return out.xreplace({m: s for s, m in markers.items()})

    def adjoint(self, f, v):
        """D(f, v): v perturbed, its ancestors fixed, its descendants recomputed."""
        self._check(v)
        f = sp.sympify(f)
        down = self.descendants(self.name_of(v))
        e = self._substitute_indexed(f, down)
        out = self._diff(e, v)
        for s in sorted(e.free_symbols, key=lambda a: a.name):
            node = self.node_atoms.get(s)
            if node is not None and node.name in down:
                out += self._diff(e, s) * self._adjoint_scalar(node, v)
        return out

    def _diff(self, e, v):
        # At a symbolic n, SymPy's own diff: the all-n proofs and the reports print
        # what it gives.  At a concrete n, the memoised chain rule (chainrule.py).
        if self.symbolic:
            return sp.diff(e, v)
        return chainrule.diff(e, v, self._diff_memo.setdefault(v, {}))

    def _adjoint_scalar(self, node: Node, v):
        key = (node.name, v)
        if key not in self._adjoint_memo:
            self._adjoint_memo[key] = node.kind.chain(
                node.atom, node.body, self.adjoint(node.body, v)
            )
        return self._adjoint_memo[key]

    # -- what an atom depends on ----------------------------------------------
    def inputs_of(self, atom) -> frozenset:
        """The input atoms (x_1, eps, ...) an atom depends on, through the definitions."""
        if self.node_of(atom) is None:
            return frozenset({atom})
        if atom not in self._inputs_memo:
            out: set = set()
            d = self.definition(atom)
            for a in d.free_symbols | d.atoms(Indexed):
                if isinstance(a, Indexed) or (a.name in self.scalars and not a.is_integer):
                    out |= self.inputs_of(a)
            self._inputs_memo[atom] = frozenset(out)
        return self._inputs_memo[atom]


@functools.cache
def size_symbol(name: str) -> Symbol:
    """A size of a model with several, at symbolic sizes (named apart from indices by
    the braces, which no file can write)."""
    return Symbol(f"{name}_{{size}}", integer=True, positive=True)


def position(atom):
    """An instance's position: its one index, or the tuple of them (S[i, j]); None for
    a scalar."""
    if not isinstance(atom, Indexed):
        return None
    return atom.indices[0] if len(atom.indices) == 1 else tuple(atom.indices)


def _at(e, k, v, holds: dict):
    """e.xreplace({k: v}), rebuilding only the subtrees that hold k.

    A summand often carries an inner sum already expanded over n terms (Σ_j x̂_j g_j
    inside Σ_k); xreplace would walk it again for every k.  ``holds`` remembers,
    per subexpression, whether k occurs in it, across calls with the same k.
    """
    if e == k:
        return v
    if not _holds(e, k, holds):
        return e
    return e.func(*[_at(a, k, v, holds) for a in e.args])


def _holds(e, k, holds: dict) -> bool:
    hit = holds.get(e)
    if hit is None:
        hit = holds[e] = e == k or any(_holds(a, k, holds) for a in getattr(e, "args", ()))
    return hit
