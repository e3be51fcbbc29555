"""Prose with mathematics in it, written in Unicode, typeset as LaTeX.

Titles, notes, citations and references in a claim file are Unicode text:
``(2) ∂x̂_i/∂σ, per component`` or ``p = x − μ is the natural reading``.  They
read well in a terminal and in JSON, and the report typesets them here, by one
rule, so that every piece of text in a report uses one notation with the
claims' own LaTeX.

Nothing in the text is LaTeX: every character is mapped, and the result is
made only from the tables below and escaped letters, so a title cannot inject
a macro (the document's ``latex`` fields have their own allowlist,
``latexsafe``).

**Which words are mathematics.**  The text is split at spaces into words.
Trailing ``,.;:!?`` are peeled off and stay text; brackets stay with their
word, so ``(x_j − μ)(x_i − μ)`` is one formula.  A word is mathematics
when it holds a mathematical character (a Greek letter,
``∂ Σ √ − = + / ^ _ ² ≠ ≤ ≥ → · × ∘ ⪰``, a combining hat) or is a single
lowercase letter other than "a"; never when it is a program's name
(``batchnorm_forward``, typewriter type).  A number, a single capital
letter or a short lowercase name (``var``, ``invstd``) is mathematics when
it stands next to an operator (``= + − / · × ≠ ≤ ≥ → < >``) written as a
word of its own, as in ``n ≥ 2`` or ``σ² = var + ε``.  Neighbouring mathematical words form one
formula.  The ASCII hyphen is never an operator (claim ids such as
``eq1-literal`` are text): a minus sign is written ``−``.

**Inside a formula.**  Greek letters and the symbols above become their LaTeX
commands; a letter followed by U+0302 gets a hat (``x̂``); ``_`` and ``^``
take the following letters and digits as sub- and superscript (or a
``{...}`` group); ``²`` and ``³`` are powers; a run of several Latin letters
is one name in italic (``dy``), except a few upright words (``LHS``,
``var``).  Words that are claim ids of the document become links.
"""

from __future__ import annotations

import re
import unicodedata

GREEK = {
    "α": r"\alpha",
    "β": r"\beta",
    "γ": r"\gamma",
    "δ": r"\delta",
    "ε": r"\varepsilon",
    "ζ": r"\zeta",
    "η": r"\eta",
    "θ": r"\theta",
    "κ": r"\kappa",
    "λ": r"\lambda",
    "μ": r"\mu",
    "ν": r"\nu",
    "ξ": r"\xi",
    "π": r"\pi",
    "ρ": r"\rho",
    "σ": r"\sigma",
    "τ": r"\tau",
    "φ": r"\phi",
    "χ": r"\chi",
    "ψ": r"\psi",
    "ω": r"\omega",
    "Γ": r"\Gamma",
    "Δ": r"\Delta",
    "Λ": r"\Lambda",
    "Π": r"\Pi",
    "Φ": r"\Phi",
    "Ω": r"\Omega",
}
# Symbols that make a word mathematics, and their LaTeX inside a formula.
SYMBOLS = {
    "∂": r"\partial",
    "Σ": r"\sum",
    "√": r"\surd",
    "−": "-",
    "=": "=",
    "+": "+",
    "/": "/",
    "≠": r"\ne",
    "≤": r"\le",
    "≥": r"\ge",
    "→": r"\to",
    "·": r"\cdot",
    "×": r"\times",
    "∈": r"\in",
    "∞": r"\infty",
    "≈": r"\approx",
    "∘": r"\circ",
    "⪰": r"\succeq",
    "<": "<",
    ">": ">",
}
SCRIPTS = {"²": "2", "³": "3", "ᵀ": r"\top"}
HAT = "\u0302"
OPERATORS = frozenset("=+−/·×≠≤≥→<>≈∘⪰")
# Names set upright in a formula: abbreviations, not products of variables.
UPRIGHT = frozenset({"LHS", "RHS", "var", "Var", "sqrt", "exp", "log", "const", "sum"})
# Characters that are plain in a formula as they are.
_PLAIN = set("0123456789()[],.;:!'|-")
_MATH_ESCAPES = {
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "$": r"\$",
    "~": r"\sim ",
    "\\": r"\backslash ",
    "…": r"\dots ",
    "′": "'",
}
_TRAILING = ",.;:!?"
_SHORT_NAME = re.compile(r"[a-z]{2,6}\Z")


_TEXT_ESCAPES = {
    "\\": r"$\backslash$",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$\vert$",
    "\n": " ",
}
_UNICODE_ESCAPES = {
    "σ": r"$\sigma$",
    "μ": r"$\mu$",
    "ε": r"$\varepsilon$",
    "γ": r"$\gamma$",
    "β": r"$\beta$",
    "δ": r"$\delta$",
    "Σ": r"$\Sigma$",
    "∂": r"$\partial$",
    "−": r"$-$",
    "–": "--",
    "—": "---",
    "≠": r"$\ne$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "→": r"$\to$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "…": r"\dots{}",
    "²": r"\textsuperscript{2}",
    "’": "'",
    "‘": "`",
    "′": "$'$",
    "ö": r"\"{o}",
    "ü": r"\"{u}",
    "é": r"\'{e}",
    "“": "``",
    "”": "''",
    "\u00a0": "~",
}


def escape_tex(text: str) -> str:
    """Plain text as LaTeX that prints it literally (pdflatex, no Unicode engine).

    A letter with a combining hat (x̂) becomes ``$\\hat{x}$``; a character with
    no LaTeX spelling here is written as its code point, never dropped."""
    out, opened = [], False
    chars = unicodedata.normalize("NFC", text)
    pos = 0
    while pos < len(chars):
        c = chars[pos]
        nxt = chars[pos + 1] if pos + 1 < len(chars) else ""
        if c.isascii() and c.isalpha() and nxt == "\u0302":
            out.append(rf"$\hat{{{c}}}$")
            pos += 2
            continue
        if c == '"':  # straight quotes pair up as ``opening'' and closing''
            opened = not opened
            out.append("``" if opened else "''")
        elif c in _TEXT_ESCAPES:
            out.append(_TEXT_ESCAPES[c])
        elif c in "\t\r\f\v":
            out.append(" ")
        elif unicodedata.category(c) == "Cc":  # TeX would ignore it, end a line or stop
            out.append(rf"\textsc{{u+{ord(c):04x}}}")
        elif c.isascii():
            out.append(c)
        elif c in _UNICODE_ESCAPES:
            out.append(_UNICODE_ESCAPES[c])
        else:
            out.append(rf"\textsc{{u+{ord(c):04x}}}")
        pos += 1
    return "".join(out)


# A program's name (batchnorm_forward): letters on both sides of an underscore,
# more than two after it.  Text in typewriter type, not a subscript.
_IDENTIFIER = re.compile(r"_*[A-Za-z]{2,}_[A-Za-z0-9_]{3,}\Z")  # _softmax_backward_data too
# A word that starts with a name of two underscores or more (first_back_grad_input(gO,):
# a program's, since in mathematics it would be a double subscript.  Only the
# start counts: μ_B)/√(σ_B² is a formula with two subscripts, not a name.
_PROGRAM_CALL = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+){2,}(\(|\Z)")


def is_math_word(word: str) -> bool:
    """A word (punctuation peeled) that is mathematics on its own."""
    if _IDENTIFIER.match(word) or _PROGRAM_CALL.match(word.lstrip("(")):
        return False
    if any(c in GREEK or c in SYMBOLS or c in SCRIPTS or c in "_^" or c == HAT for c in word):
        return True
    return len(word) == 1 and word.isascii() and word.islower() and word != "a"


def _operand(word: str) -> bool:
    """A word that is mathematics when it stands next to an operator."""
    plain = word.strip("()[]")
    return bool(
        re.fullmatch(r"[0-9]+(\.[0-9]+)?", plain)
        or (len(plain) == 1 and plain.isascii() and plain.isalpha())
        or _SHORT_NAME.match(plain)
    )


def _peel(word: str) -> tuple[str, str]:
    """(the word, its trailing punctuation).  Brackets stay: "(x_j − μ)(x_i − μ)"
    is one formula, and a bracket is drawn alike in text and in a formula."""
    tail = ""
    while word and word[-1] in _TRAILING:
        tail = word[-1] + tail
        word = word[:-1]
    return word, tail


def math(text: str, names: dict[str, str] | None = None) -> str:
    """The LaTeX (math mode) of a formula written in Unicode; a run of letters
    that is a key of ``names`` is printed as its value."""
    names = names or {}
    # Composed, so that ≠ stays one character; a letter with a precomposed hat
    # (ĝ) is split back into letter and hat.
    text = "".join(
        unicodedata.normalize("NFD", c) if unicodedata.normalize("NFD", c)[1:] == HAT else c
        for c in unicodedata.normalize("NFC", text)
    )
    out: list[str] = []
    pos = 0

    def group(start: int) -> tuple[str, int]:
        """A script's argument starting at ``start``: {...} or a run of letters/digits."""
        if start < len(text) and text[start] == "{":
            depth, end = 0, start
            while end < len(text):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
                end += 1
            return math(text[start + 1 : end], names), end + 1
        end = start
        while end < len(text) and (
            (text[end].isascii() and text[end].isalnum()) or text[end] in GREEK or text[end] == HAT
        ):
            end += 1
        if end == start:
            return "", start
        return math(text[start:end], names), end

    while pos < len(text):
        c = text[pos]
        if c in "_^":
            arg, pos = group(pos + 1)
            # a second script of the same kind (x_i_j) would stop TeX: it gets its own base
            again = bool(out) and out[-1].startswith((f"{c}{{", f"{{}}{c}{{"))
            script = f"{c}{{{arg}}}" if arg else (r"\_" if c == "_" else r"\hat{}")
            out.append(("{}" if again and arg else "") + script)
            continue
        if c.isascii() and c.isalpha():
            end = pos
            while end < len(text) and text[end].isascii() and text[end].isalpha():
                end += 1
            if end < len(text) and text[end] == HAT:
                # the hat sits on the last letter only: "dx̂" is d then x-hat
                word, hatted = text[pos : end - 1], text[end - 1]
                if word:
                    out.append(_name(word))
                out.append(rf"\hat{{{hatted}}}")
                pos = end + 1
                continue
            run = text[pos:end]
            out.append(names[run] if run in names else _name(run))
            pos = end
            continue
        if c in GREEK:
            if pos + 1 < len(text) and text[pos + 1] == HAT:
                out.append(rf"\hat{{{GREEK[c]}}}")
                pos += 2
                continue
            out.append(GREEK[c] + " ")
        elif c in SYMBOLS:
            out.append(SYMBOLS[c] + (" " if SYMBOLS[c].startswith("\\") else ""))
        elif c in SCRIPTS:
            out.append(f"^{{{SCRIPTS[c]}}}")
        elif c == " ":
            out.append(" ")
        elif c in _PLAIN:
            out.append(c)
        elif c in _MATH_ESCAPES:
            out.append(_MATH_ESCAPES[c])
        else:
            out.append(rf"\text{{{escape_tex(c)}}}")
        pos += 1
    return "".join(out).strip()


def _name(word: str) -> str:
    if len(word) == 1:
        return word
    if word in UPRIGHT:
        return rf"\mathrm{{{word}}}"
    return rf"\mathit{{{word}}}"


# A multi-letter name set next to another factor with only a space between them
# (TeX ignores it): "\\mathit{dbeta} \\mathit{ddbeta}" reads as one word, dbetaddbeta.
# The junction is a name of two letters or more in \\mathit or \\mathrm (not the
# differential's upright d), with its scripts, on either side.
_NAME = r"\\math(?:it|rm)\{[A-Za-z0-9]{2,}\}(?:[_^](?:\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z0-9]))*"
_AFTER_NAME = re.compile(rf"({_NAME}) (?=[A-Za-z0-9]|\\(?!cdot|times|right|end|\\|,))")
_BEFORE_NAME = re.compile(r"(?<=[A-Za-z0-9}]) (?=\\math(?:it|rm)\{[A-Za-z0-9]{2})")


def separate_names(latex: str) -> str:
    """Factors that are multi-letter names kept apart by a thin space, so that a
    product of dbeta and ddbeta prints as dbeta ddbeta, never dbetaddbeta."""
    return _BEFORE_NAME.sub(r" \\,", _AFTER_NAME.sub(r"\1\\, ", latex))


def prose(
    text: str, links: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> str:
    """Unicode prose as LaTeX text: its formulas in ``$...$``, everything else
    escaped; a word that is a key of ``links`` (a claim id) becomes
    ``\\hyperref[<label>]{\\texttt{<id>}}``; a word that is a key of ``names``
    (a name the document's model declares: gamma, dy, its size M) is
    mathematics wherever it stands, printed as its value (the claims' LaTeX
    for it, so that a title's gamma is the formulas' γ)."""
    links = links or {}
    names = names or {}
    words = []  # (head, body, tail, kind): kind "math" | "text" | "link" | "space"
    for part in re.split(r"( +)", text.replace("\n", " ")):
        if not part:
            continue
        if part.isspace():
            words.append(("", part, "", "space"))
            continue
        body, tail = _peel(part)
        head = ""
        bare = body.strip("()")
        if bare and (bare in links or _IDENTIFIER.match(bare)):
            head, tail = body[: body.index(bare)], body[body.index(bare) + len(bare) :] + tail
            body = bare
            kind = "link" if bare in links else "code"
        elif body and (is_math_word(body) or body.strip("()[]") in names):
            kind = "math"
        else:
            kind = "text"
        words.append((head, body, tail, kind))
    # Operands next to an operator written as a word of its own join the formula.
    solid = [k for k, w in enumerate(words) if w[3] != "space"]
    for pos, k in enumerate(solid):
        head, body, tail, kind = words[k]
        if kind != "text" or not _operand(body):
            continue
        neighbours = [solid[p] for p in (pos - 1, pos + 1) if 0 <= p < len(solid)]
        for m in neighbours:
            other = words[m][1]
            joined = (m < k and not words[m][2] and not head) or (m > k and not tail)
            if joined and other and all(c in OPERATORS for c in other):
                words[k] = (head, body, tail, "math")
    out: list[str] = []
    formula: list[str] = []  # the words of the formula being collected

    def flush():
        if formula:
            out.append(f"${separate_names(math(''.join(formula).strip(), names))}$")
            formula.clear()

    for k, (head, body, tail, kind) in enumerate(words):
        if kind == "space":
            nxt = words[k + 1] if k + 1 < len(words) else None
            if formula and nxt is not None and nxt[3] == "math" and not nxt[0]:
                formula.append(" ")
            else:
                flush()
                out.append(" ")
            continue
        if head:
            flush()
            out.append(escape_tex(head))
        if kind == "math":
            formula.append(body)
            if tail:
                flush()
        else:
            flush()
            if kind == "link":
                out.append(rf"\hyperref[{links[body]}]{{\texttt{{{escape_tex(body)}}}}}")
            elif kind == "code":
                out.append(rf"\texttt{{{escape_tex(body)}}}")
            else:
                out.append(escape_tex(body))
        if tail:
            out.append(escape_tex(tail))
    flush()
    return "".join(out)
