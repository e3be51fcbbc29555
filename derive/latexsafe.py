"""Which LaTeX from a claim file may reach a report, and plain text made safe for TeX.

A claim's ``latex`` (and a case's) is printed into the report as it is, so it
is checked first.  The check is an allowlist, not a blocklist: TeX has
hundreds of primitives and package macros that read files (``\\input``,
``\\openin``, ``\\read``), write them (``\\openout``, ``\\write``,
``\\immediate``), run programs (``\\write18``), or redefine what later text
means (``\\def``, ``\\let``, ``\\catcode``, ``\\csname``), and a blocklist
that misses one is a hole.  A formula needs only a small, known vocabulary —
Greek letters, operators, relations, fonts, fractions, delimiters, spacing —
and none of it reads, writes or defines anything.  So every control sequence
must be in ``ALLOWED_WORDS`` or ``ALLOWED_SYMBOLS``, every environment in
``ALLOWED_ENVIRONMENTS``, and the characters that change how TeX reads what
follows are refused outright:

* ``^^`` spells any character by its code (``^^5cinput`` is ``\\input``), so
  it would get round any check of control-sequence names;
* ``%`` comments out the rest of the line, template text included (the
  closing brace of the box the formula is set in);
* ``#`` is a macro parameter, ``$`` leaves maths mode;
* control characters (other than tab and newline) and non-ASCII characters
  have no meaning in a formula under pdflatex; a blank line is a paragraph
  break, an error in maths mode.

Braces, ``\\begin``/``\\end`` and ``\\left``/``\\right`` must balance, so the
field cannot close a group the template opened, and the field may not end in
a backslash (which would swallow the template's next character).

None of the allowed macros is one the templates define (``\\holds``,
``\\fails``, ``\\fitmath``, ...), so a formula can neither redefine a verdict
nor print one; ``tests/test_latexsafe.py`` checks that for every macro the
templates define.
"""

from __future__ import annotations

import re
import unicodedata

from .limits import MAX_LATEX_GROUP_DEPTH


class LatexError(ValueError):
    """A LaTeX field that the report will not print."""


_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu"
    " xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega"
    " Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
)
_SYMBOLS = (
    # operators and large operators
    "sum prod coprod int iint oint partial nabla infty lim liminf limsup max min sup inf arg"
    " argmax argmin log ln exp sin cos tan sinh cosh tanh det dim ker sgn"
    " limits nolimits"
    # binary operators and relations
    " cdot times div pm mp ast star circ bullet odot otimes oplus setminus wedge vee cap cup"
    " ne neq le leq ge geq ll gg approx simeq sim cong equiv propto doteq"
    " to mapsto rightarrow leftarrow leftrightarrow Rightarrow Leftarrow Leftrightarrow"
    " longrightarrow Longrightarrow implies iff in notin ni subset subseteq supset supseteq"
    " forall exists neg lnot land lor mid parallel perp top bot intercal prime ell hbar emptyset"
    # dots and spacing
    " dots ldots cdots vdots ddots quad qquad"
    # accents and decorations
    " hat widehat bar overline underline tilde widetilde vec dot ddot check breve acute grave"
    " overbrace underbrace overrightarrow"
    # fractions, roots, binomials
    " frac dfrac tfrac cfrac sqrt binom dbinom tbinom"
    # delimiters and their sizes
    " left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl Biggr"
    " langle rangle lvert rvert lVert rVert vert Vert lbrace rbrace lfloor rfloor lceil rceil"
    " lbrack rbrack backslash"
    # fonts and text (their arguments are checked like everything else)
    " mathrm mathbf mathit mathsf mathtt mathcal mathbb mathfrak boldsymbol operatorname"
    " text textrm textit textbf displaystyle textstyle scriptstyle"
    # environments (their names are checked against ALLOWED_ENVIRONMENTS)
    " begin end"
)
ALLOWED_WORDS = frozenset((_GREEK + " " + _SYMBOLS).split())
# \, \; \: \! \  are spaces; \\ breaks a line of an environment; \{ \} \| \& \_ print themselves.
ALLOWED_SYMBOLS = frozenset(",;:! \\{}|&_")
ALLOWED_ENVIRONMENTS = frozenset(
    "cases aligned gathered split matrix pmatrix bmatrix vmatrix Vmatrix smallmatrix".split()
)

_TOKEN = re.compile(r"\\([A-Za-z]+|.)|\^\^|[{}%#$]", re.DOTALL)
_ENV_NAME = re.compile(r"\s*\{([A-Za-z*]*)\}")


def check_latex(text: str) -> None:
    """Raise LatexError saying what is refused in a LaTeX field, if anything is."""
    if not isinstance(text, str):
        raise LatexError(f"expected a string, got {type(text).__name__}")
    _check_characters(text)
    if (len(text) - len(text.rstrip("\\"))) % 2:  # an odd run: the last one escapes nothing
        raise LatexError("ends in a backslash")
    depth, environments, lefts = 0, [], 0
    for m in _TOKEN.finditer(text):
        token, word = m.group(0), m.group(1)
        if token == "{":
            depth += 1
            if depth > MAX_LATEX_GROUP_DEPTH:
                raise LatexError(f"braces nested deeper than {MAX_LATEX_GROUP_DEPTH}")
        elif token == "}":
            depth -= 1
            if depth < 0:
                raise LatexError("unbalanced braces: '}' without its '{'")
        elif token == "^^":
            raise LatexError("'^^' (a character written by its code) is not allowed")
        elif word is None:
            what = {"%": "a comment", "#": "a macro parameter", "$": "a maths shift"}[token]
            raise LatexError(f"{token!r} ({what}) is not allowed; the field is already maths")
        elif len(word) == 1 and not word.isalpha():
            if word not in ALLOWED_SYMBOLS:
                raise LatexError(f"control symbol \\{word} is not allowed")
        elif word not in ALLOWED_WORDS:
            raise LatexError(
                f"control sequence \\{word} is not allowed (a formula may use only maths and"
                " text macros that neither read, write nor define anything)"
            )
        elif word in ("begin", "end"):
            env = _ENV_NAME.match(text, m.end())
            name = env.group(1) if env else None
            if name not in ALLOWED_ENVIRONMENTS:
                shown = f"{{{name}}}" if name is not None else "without a {name}"
                raise LatexError(f"environment \\{word}{shown} is not allowed")
            if word == "begin":
                environments.append(name)
            elif not environments or environments.pop() != name:
                raise LatexError(f"\\end{{{name}}} does not close the open environment")
        elif word == "left":
            lefts += 1
        elif word == "right":
            lefts -= 1
            if lefts < 0:
                raise LatexError("unbalanced \\left/\\right: \\right without \\left")
    if depth:
        raise LatexError(f"unbalanced braces: {depth} '{{' not closed")
    if environments:
        raise LatexError(f"\\begin{{{environments[-1]}}} is not closed")
    if lefts:
        raise LatexError("unbalanced \\left/\\right: \\left without \\right")


def _check_characters(text: str) -> None:
    for pos, c in enumerate(text):
        if c in "\t\n":
            continue
        if not (" " <= c <= "~"):
            kind = "control character" if unicodedata.category(c) == "Cc" else "non-ASCII character"
            raise LatexError(
                f"{kind} U+{ord(c):04X} at position {pos + 1} is not allowed (write it as a macro)"
            )
    if re.search(r"\n[ \t]*\n", text):
        raise LatexError("a blank line (a paragraph break) is not allowed in a formula")


def comment_text(text: str) -> str:
    """Text for a LaTeX comment line: printable ASCII only, so that no character
    (a carriage return, say) can end the comment and start TeX reading."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)
