"""LaTeX reports of verification results, and their PDFs.

``render_report`` turns one ``DocumentResult`` into a LaTeX document a person
can read: the source and its setting, a summary table, then every claim with
the document's own statement, what SymPy derives for each side at a small n,
the verdict per n (per step for chains), cross-references to the claims it
uses, and notes.  A failing claim is printed in red with its counterexample;
the report builds all the same.

The template (``templates/report.tex.j2``) uses LaTeX-safe Jinja delimiters:
``\\BLOCK{...}`` for statements, ``\\VAR{...}`` for values, ``%#`` for
comments.  Every value printed with ``\\VAR`` is escaped as plain text unless
it is a ``TeX`` string, and ``TeX`` is only ever made here, from
``sympy.latex`` or from a document's own LaTeX.  Rendering is deterministic:
no timestamps, no iteration over sets or unordered mappings.

``build_pdfs`` compiles the ``.tex`` files with latexmk (pdflatex); the PDFs
are build products (ignored by git), the ``.tex`` files are committed.

The package, one concern a module: ``maths`` (expressions as LaTeX lines),
``views`` (what the template shows), ``graph`` (the picture of the argument),
``render`` (the template and the reports) and ``pdf`` (latexmk).
"""

from ..mathtext import escape_tex
from .graph import GRAPH_GAP_CM, GRAPH_LINE_CM
from .maths import TeX, document_display, math_lines, split_top_level, tex
from .pdf import (
    PDFLATEX_DEBIAN_PACKAGES,
    ReportBuildError,
    build_pdfs,
    latexmk_available,
    log_problems,
    main,
    read_log,
)
from .render import latex_environment, render_report, write_reports

__all__ = [
    "GRAPH_GAP_CM",
    "GRAPH_LINE_CM",
    "PDFLATEX_DEBIAN_PACKAGES",
    "ReportBuildError",
    "TeX",
    "build_pdfs",
    "document_display",
    "escape_tex",
    "latex_environment",
    "latexmk_available",
    "log_problems",
    "main",
    "math_lines",
    "read_log",
    "render_report",
    "split_top_level",
    "tex",
    "write_reports",
]
