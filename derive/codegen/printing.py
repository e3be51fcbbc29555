"""Step 5: SymPy's NumPy printer, re-spaced to the layout ``ruff format`` writes."""

from __future__ import annotations

import ast

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .common import CodegenError


# -- printing ------------------------------------------------------------------------
class _Printer(NumPyPrinter):
    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _print_Mul(self, expr):
        """A power times other factors, b**k*rest, as b*(b**(k-1)*rest): one factor
        of b at a time, so that b**k alone (invstd**2 is 1e40 for a float32
        channel with sigma = 1e-20) never has to fit when the product does."""
        sign, body = ("-", -expr) if expr.could_extract_minus_sign() else ("", expr)
        factors = body.args if body.is_Mul else (body,)
        power = next((f for f in factors if f.is_Pow and f.exp.is_Integer and f.exp > 1), None)
        if power is None or body == power:
            return super()._print_Mul(expr)
        inner = f"{self._print(power.base)}*({self._print(body / power.base)})"
        return f"{sign}({inner})" if sign else inner


_PREC = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.Pow: 4}
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = 3


def _prec(node) -> int:
    if isinstance(node, ast.BinOp):
        return _PREC[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return _UNARY
    return 10


def _simple(node) -> bool:
    """ruff format's "simple" power operand: a name, number or attribute chain."""
    if isinstance(node, ast.UnaryOp):
        return _simple(node.operand)
    if isinstance(node, ast.Attribute):
        return _simple(node.value)
    return isinstance(node, ast.Name) or (
        isinstance(node, ast.Constant) and isinstance(node.value, int | float)
    )


def _emit(node) -> str:
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op not in _PREC:
            raise CodegenError(f"unexpected operator {op.__name__} in printed code")
        p = _PREC[op]
        left, right = _emit(node.left), _emit(node.right)
        left_parens = _prec(node.left) < p or (op is ast.Pow and _prec(node.left) <= p)
        right_parens = _prec(node.right) < p or (op is not ast.Pow and _prec(node.right) == p)
        left = f"({left})" if left_parens else left
        right = f"({right})" if right_parens else right
        hug = not (left_parens or right_parens) and _simple(node.left) and _simple(node.right)
        if op is ast.Pow and hug:
            return f"{left}**{right}"
        return f"{left} {_OPS[op]} {right}"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _emit(node.operand)
        # ruff format parenthesises a power under a unary minus: -(a**2)
        parens = _prec(node.operand) < _UNARY or isinstance(node.operand, ast.BinOp)
        return f"-({inner})" if parens else f"-{inner}"
    if isinstance(node, ast.Call):
        args = ", ".join(_emit(a) for a in node.args)
        return f"{_emit(node.func)}({args})"
    if isinstance(node, ast.Attribute):
        return f"{_emit(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return repr(node.value)
    raise CodegenError(f"unexpected {type(node).__name__} in printed code")


def python_code(expr: sp.Expr, printer=None) -> str:
    """SymPy's NumPy printing of expr, laid out the way ``ruff format`` writes it."""
    printed = (printer or _Printer)({"fully_qualified_modules": False}).doprint(expr)
    tree = ast.parse(printed, mode="eval")
    code = _emit(tree.body)
    if ast.dump(ast.parse(code, mode="eval")) != ast.dump(tree):
        raise CodegenError(f"re-spacing changed the printed expression {printed!r}")
    return code


RUFF_WIDTH = 100  # ruff's line length: the generated modules must pass ruff format --check


def call(head: str, args, tail: str = "", indent: int = 0) -> str:
    """head(args)tail laid out as ruff format writes it at this indent: on one line, or the
    arguments on one line of their own, or one argument a line with a trailing comma."""
    args = list(args)
    joined = ", ".join(args)
    if indent + len(f"{head}({joined}){tail}") <= RUFF_WIDTH:
        return f"{head}({joined}){tail}"
    pad, inner = " " * indent, " " * (indent + 4)
    if indent + 4 + len(joined) <= RUFF_WIDTH:
        return f"{head}(\n{inner}{joined}\n{pad}){tail}"
    return f"{head}(\n" + "".join(f"{inner}{a},\n" for a in args) + f"{pad}){tail}"


def statements(target: str, expr: sp.Expr, indent: int) -> tuple[list[str], str]:
    """The lines before ``target = code`` and code: one line where it fits under ruff's
    width, else the longest sum inside expr is accumulated one term a line into
    ``target_terms`` first (the same expression, evaluated in the printed term order)."""
    code = python_code(expr)
    if indent + len(f"{target} = {code}") <= RUFF_WIDTH:
        return [], code
    sums = [a for a in sp.preorder_traversal(expr) if a.is_Add]
    if not sums:
        raise CodegenError(f"{target} = {code} is too long for one line and has no sum")
    total = max(sums, key=lambda a: len(python_code(a)))
    name = f"{target}_terms"
    symbol = sp.Symbol(name, real=True)
    outer = python_code(expr.xreplace({total: symbol}))
    terms = _Printer({"fully_qualified_modules": False})._as_ordered_terms(total)
    lines = [f"{name} = {python_code(terms[0])}"]
    for term in terms[1:]:
        sign, body = ("-", -term) if term.could_extract_minus_sign() else ("+", term)
        lines.append(f"{name} = {name} {sign} {_operand(body)}")
    if sp.expand(expr.xreplace({total: sp.Add(*terms)}) - expr) != 0:
        raise CodegenError(f"splitting {target} changed it")
    for line in [*lines, f"{target} = {outer}"]:
        if indent + len(line) > RUFF_WIDTH:
            raise CodegenError(f"{line!r} is too long for one line")
    return lines, outer


def _operand(term: sp.Expr) -> str:
    """term printed as the right operand of + or -: parenthesised if it is itself a sum."""
    code = python_code(term)
    return f"({code})" if term.is_Add else code
