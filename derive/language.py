"""The claim language: a side of a claim, read as a syntax tree, never as code.

A side is Python *syntax* over a small grammar; it is parsed with ``ast`` and
every node of the tree is checked against a whitelist, then translated to
SymPy by hand.  Nothing read from a file is ever passed to ``eval``,
``sympify`` or SymPy's parser, so no attribute, builtin or string can reach
Python.  The grammar:

    numbers          1, 2.5, 1e-3   (a float is the exact rational of its text)
    names            the model's inputs and nodes, its size (``n``), indices
    x[e]             an indexed input or node; e an index expression
    a + b, a - b, a * b, a / b, -a, a ** c     (c a number: integer or half-integer)
    sum(f, k)        Σ_{k=1..n} f        sum(f, k, ne=i)   Σ_{k≠i} f
    d(f, v)          graph-view partial (one level of definitions; see model.py)
    D(f, v)          adjoint: v's ancestors held fixed, its descendants recomputed
    delta(a, b)      Kronecker delta      sqrt(f)   the principal square root
    exp(f), log(f)   the exponential, and the natural logarithm (defined where f > 0)

The free indices ``i`` and ``j`` are fixed by the claim's case (``for``).  Any
other name that the model does not declare is an index, and must be bound by
an enclosing ``sum``.  Every limit below is a named constant, and exceeding it
is an input error (exit 2), never a hang.

Length: one module on purpose. It is the whole whitelist of what a file may express;
a reviewer of untrusted input reads one module, not several.
"""

from __future__ import annotations

import ast
import functools
import re

import sympy as sp

from .sizes import SizeError, at, infer, slots
from .spec import SIZE_SYMBOL_NAME

# A side is a formula a person types: the longest shipped side is ~330
# characters, so 4000 leaves room for machine-written sides while keeping
# parse and SymPy work per side small.
MAX_SIDE_CHARS = 4000
# Nesting depth of the syntax tree; hand-written sides stay under 20.  It also
# keeps every recursive walk (ours and SymPy's) far from Python's stack limit.
MAX_DEPTH = 40
# An integer literal of more digits is no quantity of a derivation; the bound
# stops 10**10**10-style blow-ups at the literal.
MAX_INT_DIGITS = 30
# |exponent| of a power: derivations use squares, cubes and inverse square
# roots; sigma**(10**6) would expand to a polynomial of millions of terms.
MAX_EXPONENT = 16
# A constant folded from literals (10**16 * 10**16 ...) may not exceed this.
MAX_CONSTANT_DIGITS = 200

FUNCTIONS = ("sum", "d", "D", "delta", "sqrt", "exp", "log")
CASES = {
    # case label: (free indices, relation between them)
    "all": ((), None),
    "all i": (("i",), None),
    "all i, j": (("i", "j"), None),
    "i = j": (("i", "j"), "eq"),
    "i != j": (("i", "j"), "ne"),
}
FREE_INDICES = ("i", "j")


def representatives(label: str) -> list[dict[str, int]]:
    """One index assignment per orbit of the permutation group, for a case label.

    Permuting positions maps i = 1 to any i, and (1, 1) / (1, 2) to any equal /
    distinct pair; the last one is the most general (used to read a side once)."""
    free, relation = CASES[label]
    if len(free) < 2:
        return [dict.fromkeys(free, 1)]
    pairs = {"eq": [(1, 1)], "ne": [(1, 2)], None: [(1, 1), (1, 2)]}[relation]
    return [dict(zip(free, p, strict=True)) for p in pairs]


# Not declared positive: SymPy would then split sqrt(u/n) into sqrt(u)/sqrt(n),
# and the prover would see two roots where the document wrote one.
N_SYMBOL = sp.Symbol(SIZE_SYMBOL_NAME, integer=True)
_FLOAT = re.compile(r"(\d*)\.?(\d*)(?:[eE]([+-]?\d+))?\Z")

_NODE_NAMES = {
    ast.Attribute: "attribute access",
    ast.Constant: "a constant of this type",
    ast.JoinedStr: "an f-string",
    ast.Lambda: "a lambda",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional",
    ast.Starred: "a starred argument",
    ast.NamedExpr: "an assignment expression",
    ast.Slice: "a slice",
    ast.Await: "await",
}


class LanguageError(ValueError):
    """A side that cannot be read: unknown name, bad index, forbidden syntax."""


class PositionError(LanguageError):
    """A side names a position that does not exist at this n (x[2] at n = 1), or
    divides by something that is 0 at this n only.

    Not an input error: the claim is not applicable at that n."""


@functools.cache
def index_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True)


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "a string"
    return _NODE_NAMES.get(type(node), type(node).__name__)


@functools.lru_cache(maxsize=8192)
def read(text: str) -> ast.expr:
    """The checked syntax tree of a side (cached: sides repeat across n)."""
    if not isinstance(text, str) or not text.strip():
        raise LanguageError("expected a non-empty expression string")
    if len(text) > MAX_SIDE_CHARS:
        raise LanguageError(f"side too long ({len(text)} > {MAX_SIDE_CHARS} characters)")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise LanguageError("control characters in an expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        raise LanguageError(f"cannot parse {text!r}: {msg}") from None
    depth = [(tree.body, 1)]
    slices: set[int] = set()  # the index tuples of Q[i, a]: the only tuples allowed
    while depth:
        node, level = depth.pop()
        if level > MAX_DEPTH:
            raise LanguageError(f"expression nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Tuple) and id(node) in slices:
            if not node.elts:
                raise LanguageError(f"an empty index in {text!r}")
        else:
            _check_node(node, text)
        if isinstance(node, ast.Subscript):
            slices.add(id(node.slice))
        depth.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return tree.body


_ALLOWED = (
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Name,
    ast.Subscript,
    ast.keyword,
    ast.Load,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


def _check_node(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LanguageError(f"{_describe(node)} is not allowed in {text!r}")
        return
    if not isinstance(node, _ALLOWED):
        raise LanguageError(f"{_describe(node)} is not allowed in {text!r}")
    if isinstance(node, ast.BinOp) and not isinstance(
        node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow
    ):
        raise LanguageError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
    if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub | ast.UAdd):
        raise LanguageError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            what = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
            raise LanguageError(
                f"unknown function {what!r} in {text!r}; allowed: {', '.join(FUNCTIONS)}"
            )
        for kw in node.keywords:
            if node.func.id != "sum" or kw.arg != "ne":
                raise LanguageError(
                    f"keyword {kw.arg or '**'}= is not allowed in {text!r} (only sum(..., ne=i))"
                )


class Scope:
    """What a side may name: the model's names, the case's free indices, bound sums."""

    def __init__(self, model, assignment: dict, *, names=None, derivatives=True):
        self.model = model
        self.assignment = {k: _as_index(v) for k, v in assignment.items()}
        self.names = names  # None: every name of the model (a node definition sees fewer)
        self.derivatives = derivatives
        self.bound: tuple[str, ...] = ()
        # What the side names, for definedness: SymPy's automatic simplification
        # (σ·0/σ² -> 0) would otherwise hide a division by a σ that is 0 at n = 1.
        self.touched: set = set()  # node atoms named, directly or as D/d arguments
        self.divisors: list = []  # every divisor and base of a negative power
        # (how, expr) with how "positive" (a log's argument) or "nonnegative" (a
        # radicand): SymPy drops them (exp(log(u)) -> u, sqrt(u)**2 -> u), the checks may not.
        self.conditions: list = []
        self.sizes: dict = {}  # index name -> size name (sizes.infer), set per side

    def declared(self, name: str) -> bool:
        m = self.model
        return name in m.spec.size_names or name in m.families or name in m.scalars

    def size_of(self, index: str, where: str):
        """The value of the size an index ranges over."""
        m = self.model
        if not m.spec.several:
            return m.size
        if index not in self.sizes:
            raise LanguageError(
                f"cannot tell what size index {index} ranges over in {where}: "
                "use it in an axis of an array"
            )
        return m.size_of(self.sizes[index])


def _as_index(value):
    return sp.Integer(value) if isinstance(value, int) else value


def parse(text: str, model, assignment: dict, **scope) -> sp.Expr:
    """One side of a claim, for one assignment of its free indices."""
    return parse_side(text, model, assignment, **scope)[0]


def parse_side(text: str, model, assignment: dict, **scope):
    """(expression, node atoms it names, divisors it uses, domain conditions) of one side."""
    tree = read(text)
    s = Scope(model, assignment, **scope)
    if model.spec.several:  # one size: every index ranges over it (Scope.size_of)
        try:
            s.sizes = index_sizes(model.spec, (text,))
        except SizeError as exc:
            raise LanguageError(f"{exc} in {text!r}") from None
    expr = _Reader(s, text).expr(tree)
    if not isinstance(expr, sp.Expr):
        raise LanguageError(f"{text!r} is not an expression")
    nodes = list(_unique_nodes(expr))
    if any(a in _NOT_REAL for a in nodes if a.is_Atom):
        if any(a == sp.I for a in nodes):
            raise LanguageError(f"{text!r} has no real value (a root or log of a negative number)")
        raise LanguageError(f"{text!r} divides by zero")
    if not model.symbolic:
        check_positions(expr, model, text, nodes)
    return expr, frozenset(s.touched), tuple(s.divisors), tuple(s.conditions)


_NOT_REAL = frozenset({sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I})


@functools.lru_cache(maxsize=8192)
def index_sizes(spec, texts: tuple[str, ...]) -> dict:
    """index name -> the size it ranges over, for the indices these sides use together
    (sizes.infer; with one size, every index ranges over it).  Cached: sides repeat
    across the grid's points."""
    single = None if spec.several else spec.size
    return infer([read(t) for t in texts], spec.axes, frozenset(spec.declared), single)


def _unique_nodes(expr):
    """Every distinct subexpression of expr, each once.

    A side at a concrete n shares subtrees (μ and σ inside every x̂_j), so a walk
    of the tree, as ``has`` and ``atoms`` make, visits them once per occurrence."""
    seen = {id(expr)}
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        for a in e.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)


def check_positions(expr, model, text: str, nodes=None) -> None:
    """Every position named exists at the model's sizes, axis by axis."""
    bad = []
    bounds = model.bounds
    for a in _unique_nodes(expr) if nodes is None else nodes:
        if not a.is_Indexed:
            continue
        last = bounds.get(a.base.name, ())
        for idx, hi in zip(a.indices, last, strict=False):
            if idx.is_Integer and not 1 <= int(idx) <= hi:
                bad.append((a, idx))
    if bad:  # the same one whatever the walk's order
        _, idx = min(bad, key=lambda p: sp.default_sort_key(p[0]))
        raise PositionError(f"{text!r} names position {idx}, which does not exist at {at(model.n)}")


class _Reader:
    def __init__(self, scope: Scope, text: str):
        self.s = scope
        self.text = text

    def fail(self, message: str):
        raise LanguageError(f"{message} in {self.text!r}")

    # -- expressions -----------------------------------------------------
    def expr(self, node: ast.expr):
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:  # read() admits nothing else; belt and braces
            self.fail(f"{_describe(node)} is not allowed")
        return method(node)

    def _Constant(self, node):
        if isinstance(node.value, int):
            if len(str(abs(node.value))) > MAX_INT_DIGITS:
                self.fail(f"integer literal longer than {MAX_INT_DIGITS} digits")
            return sp.Integer(node.value)
        source = ast.get_source_segment(self.text.strip(), node) or repr(node.value)
        m = _FLOAT.match(source)
        if not m or len(m.group(1) + m.group(2)) > MAX_INT_DIGITS:
            self.fail(f"number {source!r} has more than {MAX_INT_DIGITS} digits")
        if m.group(3) and abs(int(m.group(3))) > MAX_INT_DIGITS:
            self.fail(f"number {source!r}: exponent beyond ±{MAX_INT_DIGITS}")
        return sp.Rational(source)  # the exact value of the decimal text

    def _index_value(self, name: str):
        """A free index's value, a bound index's symbol, the size; None otherwise."""
        s = self.s
        if name in s.assignment:
            return s.assignment[name]
        if name in s.bound:
            return index_symbol(name)
        if name in s.model.spec.size_names:
            return s.model.size_of(name)
        return None

    def _Name(self, node):
        name = node.id
        s = self.s
        value = self._index_value(name)
        if value is not None:
            return value
        if name in FUNCTIONS:
            self.fail(f"{name} is a function: call it, as {name}(...)")
        if s.names is not None and name not in s.names:
            self.fail(f"unknown symbol {name!r}")
        if name in s.model.scalars:
            atom = s.model.scalars[name]
            if s.model.node_of(atom) is not None:
                s.touched.add(atom)
            return atom
        if name in s.model.families:
            self.fail(f"{name} is indexed: write {name}[i]")
        self.fail(f"unknown symbol {name!r}")

    def _UnaryOp(self, node):
        value = self.expr(node.operand)
        return -value if isinstance(node.op, ast.USub) else value

    def _BinOp(self, node):
        a, b = self.expr(node.left), self.expr(node.right)
        op = node.op
        if isinstance(op, ast.Add):
            out = a + b
        elif isinstance(op, ast.Sub):
            out = a - b
        elif isinstance(op, ast.Mult):
            out = a * b
        elif isinstance(op, ast.Div):
            if b == 0:
                self._by_zero(node.right)
            if not b.is_Number:
                self.s.divisors.append(b)
            out = a / b
        else:
            if a == 0 and b.is_Rational and b < 0:
                self._by_zero(node.left)
            if b.is_Rational and b < 0 and not a.is_Number:
                self.s.divisors.append(a)
            if b.is_Rational and b.q == 2 and not a.is_Number:
                self.s.conditions.append(("nonnegative", a))
            out = self._power(a, b)
        if out.is_Rational and len(str(abs(out.p))) + len(str(out.q)) > MAX_CONSTANT_DIGITS:
            self.fail(f"a constant of more than {MAX_CONSTANT_DIGITS} digits")
        return out

    def _by_zero(self, divisor: ast.expr):
        if any(isinstance(a, ast.Name) for a in ast.walk(divisor)):
            raise PositionError(f"{self.text!r} divides by zero at {at(self.s.model.n)}")
        self.fail("division by zero")

    def _power(self, base, exponent):
        if not exponent.is_Rational:
            self.fail("an exponent must be a number")
        if exponent.q not in (1, 2):
            self.fail(f"exponent {exponent}: only integer and half-integer powers are allowed")
        if abs(exponent) > MAX_EXPONENT:
            self.fail(f"exponent {exponent} beyond ±{MAX_EXPONENT}")
        if base.is_Rational and exponent.q == 1:
            digits = (len(str(abs(base.p))) + len(str(base.q))) * abs(int(exponent))
            if digits > 2 * MAX_CONSTANT_DIGITS:
                self.fail(f"a constant of more than {MAX_CONSTANT_DIGITS} digits")
        return base**exponent

    def _Subscript(self, node):
        if not isinstance(node.value, ast.Name):
            self.fail("only a name can be indexed")
        name = node.value.id
        s = self.s
        if name not in s.model.families or (s.names is not None and name not in s.names):
            if s.declared(name):
                self.fail(f"{name} is not indexed")
            self.fail(f"unknown symbol {name!r}")
        axes = slots(node)
        want = len(s.model.axes[name])
        if len(axes) != want:
            self.fail(f"{name} takes {want} ind{'ex' if want == 1 else 'ices'}, got {len(axes)}")
        idx = tuple(self.index(a, f"{name}[...]") for a in axes)
        atom = s.model.families[name][idx]
        if not s.model.symbolic and any(i.is_Integer for i in idx):
            check_positions(atom, s.model, self.text)
        if s.model.node_of(atom) is not None:
            s.touched.add(atom)
        return atom

    def index(self, node, where: str, top: bool = True):
        """An index expression: index names, the size, integers, + - *."""
        if isinstance(node, ast.Name):
            name = node.id
            value = self._index_value(name)
            if value is not None:
                return value
            if self.s.declared(name) or name in FUNCTIONS:
                self.fail(f"{name} cannot be an index ({where})")
            self.fail(f"index {name} in {where.replace('...', name)} is not bound by a sum")
        if isinstance(node, ast.Constant) and type(node.value) is int:
            if top and node.value < 1:
                self.fail(f"position {node.value} in {where}: positions start at 1")
            if len(str(node.value)) > MAX_INT_DIGITS:
                self.fail(f"integer literal longer than {MAX_INT_DIGITS} digits")
            return sp.Integer(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult):
            a, b = self.index(node.left, where, False), self.index(node.right, where, False)
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}[type(node.op)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.index(node.operand, where, False)
        self.fail(f"{_describe(node)} is not an index expression ({where})")

    # -- calls -------------------------------------------------------------
    def _Call(self, node):
        name = node.func.id
        nargs = {"sum": 2, "d": 2, "D": 2, "delta": 2, "sqrt": 1, "exp": 1, "log": 1}[name]
        if len(node.args) != nargs:
            self.fail(f"{name} takes {nargs} argument{'s' * (nargs > 1)}, got {len(node.args)}")
        return getattr(self, "_call_" + name)(node)

    def _call_sum(self, node):
        s = self.s
        f_node, k_node = node.args
        if not isinstance(k_node, ast.Name):
            self.fail("sum index must be an index name not fixed by the case, got a non-name")
        k = k_node.id
        if k in s.assignment or s.declared(k) or k in FUNCTIONS:
            self.fail(f"sum index must be an index name not fixed by the case, got {k}")
        if k in s.bound:
            self.fail(f"index {k} is already bound by an enclosing sum")
        if k == SIZE_SYMBOL_NAME:
            self.fail(f"sum index {k} is reserved for the size; choose another name")
        ne = None
        for kw in node.keywords:
            v = kw.value
            if not (isinstance(v, ast.Name) and v.id in s.assignment):
                what = v.id if isinstance(v, ast.Name) else _describe(v)
                self.fail(f"sum(..., ne=...) must name a free index of the case, got {what}")
            ne = s.assignment[v.id]
        s.bound = (*s.bound, k)
        before, touched = len(s.divisors), s.touched
        before_c = len(s.conditions)
        s.touched = set()
        try:
            f = self.expr(f_node)
        finally:
            s.bound = s.bound[:-1]
        ks = index_symbol(k)
        size = s.size_of(k, f"sum(..., {k})")
        inner_touched, s.touched = s.touched, touched
        inner_divisors = s.divisors[before:]
        del s.divisors[before:]
        inner_conditions = s.conditions[before_c:]
        del s.conditions[before_c:]
        if s.model.symbolic:
            s.touched |= inner_touched
            s.divisors += inner_divisors
            s.conditions += inner_conditions
        else:  # what the body names, once per position of the sum
            positions = [sp.Integer(v) for v in range(1, int(size) + 1) if v != ne]
            for a in inner_touched:
                if a.has(ks):
                    s.touched.update(a.xreplace({ks: v}) for v in positions)
                else:
                    s.touched.add(a)
            for d in inner_divisors:
                s.divisors += [d.xreplace({ks: v}) for v in positions] if d.has(ks) else [d]
            for how, c in inner_conditions:
                s.conditions += (
                    [(how, c.xreplace({ks: v})) for v in positions] if c.has(ks) else [(how, c)]
                )
        return s.model.sum(f, ks, ne=ne, size=size)

    def _derivative(self, node, how):
        if not self.s.derivatives:
            self.fail("derivatives are not allowed in a node definition")
        f = self.expr(node.args[0])
        v = self.expr(node.args[1])
        if not self.s.model.is_variable(v):
            self.fail(f"cannot differentiate with respect to {v}: not an input or a node")
        return how(f, v)

    def _call_d(self, node):
        return self._derivative(node, self.s.model.partial)

    def _call_D(self, node):
        return self._derivative(node, self.s.model.adjoint)

    def _call_delta(self, node):
        a = self.index(node.args[0], "delta(...)")
        b = self.index(node.args[1], "delta(...)")
        model = self.s.model
        names = [x.id for arg in node.args for x in ast.walk(arg) if isinstance(x, ast.Name)]
        known = [n for n in names if n in self.s.sizes or not model.spec.several]
        if not model.symbolic and (known or not model.spec.several):
            bound = self.s.size_of(known[0], "delta(...)") if known else model.size
            for v in (a, b):  # delta(i, 5) names position 5, like x[5]
                if v.is_Integer and not 1 <= int(v) <= bound:
                    raise PositionError(
                        f"{self.text!r} names position {v}, which does not exist at {at(model.n)}"
                    )
        return sp.KroneckerDelta(a, b)

    def _call_sqrt(self, node):
        u = self.expr(node.args[0])
        if u.is_Number and u < 0:
            self._never(node.args[0], "a square root of a negative number")
        if not u.is_Number:
            self.s.conditions.append(("nonnegative", u))
        return sp.sqrt(u)

    def _call_exp(self, node):
        return sp.exp(self.expr(node.args[0]))

    def _call_log(self, node):
        u = self.expr(node.args[0])
        if u.is_Number and u <= 0:
            self._never(node.args[0], f"the logarithm of {u}")
        if not u.is_Number:
            self.s.conditions.append(("positive", u))
        return sp.log(u)

    def _never(self, arg: ast.expr, what: str):
        # A constant that names the size (log(n - 1)) only fails at some n.
        if any(isinstance(a, ast.Name) for a in ast.walk(arg)):
            raise PositionError(f"{self.text!r} takes {what} at {at(self.s.model.n)}")
        self.fail(f"{what} has no real value")


# -- the symmetry shortcut ----------------------------------------------------------------
@functools.lru_cache(maxsize=8192)
def positions_by_index_only(text: str, declared: frozenset) -> bool:
    """True when a side names positions only through bare free or bound indices.

    Then a permutation of positions carries the side to itself (the model being
    symmetric too), and one representative index assignment per orbit decides
    the claim.  A literal position (x[1]), the size (x[n]), an expression in an
    index (x[k+1]) or an index used as a number (i*x[i]) make it False.
    """
    tree = read(text)
    allowed_spots: set[int] = set()  # ids of Name nodes in index positions
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            # X[i, a]: every axis a bare index (each permutation acts on its own size)
            spots = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if not all(_is_index_name(a, declared) for a in spots):
                return False
            allowed_spots.update(id(a) for a in spots)
        elif isinstance(node, ast.Call) and node.func.id == "delta":
            if not all(_is_index_name(a, declared) for a in node.args):
                return False
            allowed_spots.update(id(a) for a in node.args)
        elif isinstance(node, ast.Call) and node.func.id == "sum":
            allowed_spots.add(id(node.args[1]))
            allowed_spots.update(id(kw.value) for kw in node.keywords)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in allowed_spots:
            if node.id not in declared and node.id not in FUNCTIONS:
                return False  # an index used as a number
    return True


def _is_index_name(node, declared) -> bool:
    return isinstance(node, ast.Name) and node.id not in declared and node.id not in FUNCTIONS
