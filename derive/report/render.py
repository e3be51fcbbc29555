"""Rendering a report: the Jinja environment and the LaTeX of one document's
result, and writing the reports."""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..claimtex import name_latex
from ..files import write_if_changed
from ..findings import FINDING, STATUS_WORDS, STATUSES
from ..latexsafe import comment_text
from ..mathtext import escape_tex, prose
from ..paths import TEMPLATES, output_path
from ..results import (
    DocumentResult,
    format_ns,
)
from .graph import _graph
from .maths import TeX, _finalize, code, display, document_display, label
from .views import (
    _claim_view,
    _derivation_view,
    _finding_views,
    _setting,
    _source_name,
    prose_names,
)


def latex_environment(template_dir=TEMPLATES, finalize=_finalize) -> jinja2.Environment:
    """jinja2 for LaTeX: \\BLOCK{...}, \\VAR{...} and %# comments, so TeX's braces
    never fight the template; every value passes through ``finalize``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_comment_prefix="%#",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
    )
    env.filters["display"] = lambda latex: display([latex])
    env.filters["document_display"] = document_display
    env.filters["code"] = code
    # A claim id in a narrow column may break after its hyphens.
    env.filters["breakable"] = lambda text: TeX(escape_tex(text).replace("-", r"-\allowbreak{}"))
    return env


def render_report(result: DocumentResult, *, extras: dict | None = None) -> str:
    """The LaTeX source of one document's report.

    ``extras`` may hold ``"derivation"``: an object with ``latex_derived``,
    ``latex_document`` (LaTeX strings), ``holds`` (bool), ``coefficients``
    (name -> LaTeX), optionally ``coefficient_names`` (name -> the LaTeX
    symbol the report shows for it) and ``claim_id`` (the claim it is compared
    with); without it the section is left out."""
    extras = extras or {}
    document = result.document
    links = {c.id: label(c.id) for c in document.claims}
    used_by: dict[str, list[str]] = {c.id: [] for c in document.claims}
    for c in document.claims:
        for u in c.uses:
            used_by.setdefault(u, []).append(c.id)
    claims = [
        _claim_view(document, r, used_by.get(r.claim.id, []), result.all_n, links)
        for r in result.claims
    ]
    derivation = _derivation_view(extras.get("derivation"))
    if derivation and derivation["claim"] not in {c.id for c in claims}:
        derivation["claim"] = None
    names = prose_names(document)
    references = [TeX(prose(document.citation, names=names))] if document.citation else []
    references += [TeX(prose(r, names=names)) for r in document.references]
    # Only a report with a finding shows its colour and legend entry: the others
    # have nothing that fails on purpose to explain.
    with_findings = any(c.status == FINDING for c in claims)
    template = latex_environment().get_template("report.tex.j2")
    text = template.render(
        document=document,
        title=TeX(prose(document.title, names=names)),
        citation=TeX(prose(document.citation, links, names)),
        description=TeX(prose(document.description, links, names)),
        source=TeX(comment_text(_source_name(document))),  # in a LaTeX comment
        ns=format_ns(result.ns),
        holds=result.holds,
        findings=_finding_views(result, links, names),
        setting=_setting(document),
        claims=claims,
        with_proofs=any(c.proofs for c in claims),
        derivation=derivation,
        graph=_graph(claims, document),
        statuses=[(s, STATUS_WORDS[s]) for s in STATUSES if s != FINDING or with_findings],
        with_findings=with_findings,
        references=references,
        proofs_label=TeX("sec:proofs"),
        n=TeX(", ".join(name_latex(k) for k in document.size_names)),
        checked_at=TeX(
            f"{name_latex(document.size)} = {format_ns(result.ns)}"
            if len(document.size_names) == 1
            else escape_tex(format_ns(result.ns))
        ),
        size=document.size,
    )
    return text.lstrip("\n")


def write_reports(
    results: list[DocumentResult], outdir: Path = Path("reports"), texts=None, **kw
) -> list[Path]:
    """Write ``<outdir>/<document id>.tex`` for each result; ``kw`` goes to
    ``render_report`` (``extras``, or ``extras_by_id``: document id -> extras).
    ``texts`` (document id -> text): reports already rendered, written as they are."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    by_id = kw.pop("extras_by_id", {}) or {}
    texts = texts or {}
    paths = []
    for result in results:
        extras = by_id.get(result.document.id, kw.get("extras"))
        path = output_path(outdir, result.document.id, ".tex")
        text = texts.get(result.document.id)
        write_if_changed(path, render_report(result, extras=extras) if text is None else text)
        paths.append(path)
    return paths
