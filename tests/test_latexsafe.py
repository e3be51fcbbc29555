"""The LaTeX allowlist: what the shipped documents write passes, what reads,
writes or defines is refused, and no template macro can be named."""

from __future__ import annotations

import re
import tomllib

import pytest

from derive.latexsafe import (
    ALLOWED_ENVIRONMENTS,
    ALLOWED_WORDS,
    LatexError,
    check_latex,
    comment_text,
)
from tests.conftest import DOCUMENTS, ROOT

TEMPLATES = [
    *sorted((ROOT / "derive" / "templates").glob("*.tex.j2")),
    ROOT / "benchmarks" / "bench.tex.j2",
]


def shipped_latex():
    for path in sorted(DOCUMENTS.glob("*.toml")):
        for claim in tomllib.loads(path.read_text(encoding="utf-8"))["claims"]:
            yield claim["latex"]
            for case in claim.get("cases", []):
                yield case.get("latex", "")


def test_every_shipped_formula_passes():
    texts = list(shipped_latex())
    assert len(texts) > 20
    for text in texts:
        check_latex(text)


@pytest.mark.parametrize(
    "text",
    [
        r"\frac{a}{b} \\ c",
        r"\begin{cases} 1 & i = j \\ 0 & i \ne j \end{cases}",
        r"\left( x \right)",
        r"\text{for all } i",
        "a\n b",
        r"x \{ y \}",
        "",
    ],
)
def test_formulas_pass(text):
    check_latex(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (r"\input{x}", r"\\input is not allowed"),
        (r"\text{\write18{x}}", r"\\write is not allowed"),
        (r"\^^5c", r"control symbol \\\^"),
        ("^^5cinput", r"'\^\^'"),
        ("x \\", "ends in a backslash"),
        ("x \\\\\\", "ends in a backslash"),
        ("{", "not closed"),
        ("}", "without its"),
        (r"\begin{cases} x", r"\\begin\{cases\} is not closed"),
        (r"\end{cases}", "does not close"),
        (r"\begin x", "without a {name}"),
        (r"\right)", r"\\right without \\left"),
        ("µ", "non-ASCII character U\\+00B5"),
        ("\x7f", "control character U\\+007F"),
        ("a\n \nb", "blank line"),
        (3, "expected a string, got int"),
    ],
)
def test_refusals_say_why(text, message):
    with pytest.raises(LatexError, match=message):
        check_latex(text)


def test_no_template_macro_is_allowed():
    """A formula can neither print nor redefine a verdict (\\status, \\met, ...)."""
    defined = set()
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        defined |= set(re.findall(r"\\(?:newcommand|newsavebox|definecolor)\{\\?(\w+)\}", text))
    assert {"status", "fitmath", "checkedline", "claimref", "met", "missed"} <= defined
    assert not defined & ALLOWED_WORDS
    for name in defined:
        with pytest.raises(LatexError):
            check_latex(f"\\{name}")


def test_nothing_allowed_reads_writes_or_defines():
    dangerous = {"input", "include", "openin", "openout", "read", "write", "immediate", "def"}
    dangerous |= {"let", "csname", "catcode", "newcommand", "special", "expandafter", "jobname"}
    assert not dangerous & ALLOWED_WORDS
    assert "filecontents" not in ALLOWED_ENVIRONMENTS and "verbatim" not in ALLOWED_ENVIRONMENTS


def test_comment_text_cannot_end_the_comment():
    assert comment_text("a\rb\nc\u2028d.toml") == "a?b?c?d.toml"
