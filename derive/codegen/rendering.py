"""A module's text: the helpers' context and one template of array plumbing per
layout, and writing ``derive/generated/``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jinja2
import sympy as sp

from ..claims import Document, load
from ..claimtex import statement_latex
from ..files import write_if_changed
from ..paths import DOCUMENTS, ROOT, TEMPLATES
from .common import REQUIRED, TOGETHER, VERIFY_NS, CodegenError
from .lowering import N_VALUES, Formula, formulas
from .printing import call, python_code, statements
from .verification import verify_emitted


# -- rendering -------------------------------------------------------------------------
def _relpath(path: str) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return p.name


LINE_WIDTH = 96  # under ruff's 100, so wrapped text never trips E501


def wrap(text: str, indent: int = 0, prefix: str = "") -> str:
    """text wrapped to LINE_WIDTH; continuation lines get indent spaces and prefix."""
    lines = []
    for para in text.strip().splitlines():
        lines += textwrap.wrap(
            para,
            width=LINE_WIDTH - indent - len(prefix),
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
    return ("\n" + " " * indent + prefix).join(lines)


def shipped_emitters() -> list[Document]:
    """The shipped documents with an [emit] table, in file-name order."""
    docs = [load(p) for p in sorted(DOCUMENTS.glob("*.toml"))]
    return [d for d in docs if d.emit is not None]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["wrap"] = wrap
    env.globals["call"] = call
    return env


def claim_context(f) -> dict:
    """What every helper's docstring says of its formula f: its claim, title and side."""
    return {
        "name": f.spec.name,
        "doc": f.spec.doc,
        "form": f.spec.form,
        "function": f.spec.function,
        "document": _relpath(f.document.path),
        "claim": f.claim.id,
        "title": f.claim.title,
        "side": f.side,
        "latex": statement_latex(f.claim, f.document.size),
    }


def functions_of(helpers: dict[str, dict]) -> dict[str, list[str]]:
    """Per public function, the claims its helpers are printed from, in order."""
    functions: dict[str, list[str]] = {}
    for h in helpers.values():
        claims = functions.setdefault(h["function"], [])
        if h["claim"] not in claims:
            claims.append(h["claim"])
    return functions


def _helper_context(f: Formula) -> dict:
    # the helpers' bodies are indented by 4; a long value or coefficient becomes lines
    value = statements("value", f.value, 4) if f.value is not None else ([], "")
    coefficients = {k: statements(k, e, 4) for k, e in f.coefficients}
    return {
        **claim_context(f),
        "inverse": f.document.emit.inverse,
        "centred": bool(f.document.emit.mean),
        "args": f.coefficient_args,
        "value": value[1],
        "coefficients": [(k, code) for k, (_, code) in coefficients.items()],
        "prelude": {"value": value[0], **{k: lines for k, (lines, _) in coefficients.items()}},
        "element_args": f.element_args,
        "elements": f.elements,
        "element": python_code(f.element) if f.element is not None else "",
        "reductions": [
            {"name": name, "code": code}
            for name, code in f.lowered.reductions
            if name in f.coefficient_args
        ],
        "pretty": (
            [f"value = {sp.sstr(f.value)}"]
            if f.value is not None
            else [f"{k} = {sp.sstr(e)}" for k, e in f.coefficients]
            + [f"element = {sp.sstr(f.element)}"]
        ),
    }


def _function_reductions(helpers: dict[str, dict]) -> dict[str, list[dict]]:
    """Per public function, the reductions its helpers read (one pass computes them all)."""
    out: dict[str, dict[str, dict]] = {}
    for h in helpers.values():
        for r in h["reductions"]:
            out.setdefault(h["function"], {})[r["name"]] = r
    return {f: [rs[k] for k in sorted(rs)] for f, rs in out.items()}


def _function_params(helpers: dict[str, dict]) -> dict[str, list[str]]:
    """Per public function, the per-statistic inputs its helpers take (gamma, invstd, ...):
    the arguments that are neither a reduction nor the count n."""
    out: dict[str, set[str]] = {}
    for h in helpers.values():
        sums = {r["name"] for r in h["reductions"]}
        out.setdefault(h["function"], set()).update(
            a for a in h["args"] if a not in sums and a != N_VALUES.name
        )
    return {f: sorted(names) for f, names in out.items()}


def _function_elements(helpers: dict[str, dict]) -> dict[str, list[str]]:
    """Per public function, the per-element values its helpers read, x (or xc) last."""
    out: dict[str, list[str]] = {}
    for h in helpers.values():
        names = out.setdefault(h["function"], [])
        names += [e for e in h["elements"] if e not in names]
    return {f: sorted(names, key=lambda e: e in ("x", "xc")) for f, names in out.items()}


def render_modules(documents: list[Document] | None = None, results=None) -> dict[str, str]:
    """The generated modules' text by module name; every emitted claim is verified
    first, or read from ``results`` (document path -> results.DocumentResult) where
    the verifier has already checked it (verify_emitted)."""
    results = results or {}
    documents = documents if documents is not None else shipped_emitters()
    by_module: dict[str, list[Document]] = {}
    for doc in documents:
        if doc.emit is None:
            raise CodegenError(f"{doc.path}: no [emit] table")
        by_module.setdefault(doc.emit.module, []).append(doc)
    # they build on the printer and the verification
    from . import matrices as codegen_matrices
    from . import rows as codegen_rows

    def render(docs):
        layout = docs[0].emit.layout
        if layout in REQUIRED:
            return render_module(docs, results)
        if layout in codegen_matrices.REQUIRED:
            return codegen_matrices.render_module(docs, results)
        return codegen_rows.render_module(docs, results)

    return {name: render(docs) for name, docs in sorted(by_module.items())}


def render_module(documents: list[Document], results=None) -> str:
    """One module's text from the documents that emit into it (``results`` as in
    render_modules)."""
    results = results or {}
    layouts = {d.emit.layout for d in documents}
    if len(layouts) != 1:
        paths = ", ".join(d.path for d in documents)
        raise CodegenError(f"{paths}: one module, several layouts {sorted(layouts)}")
    (layout,) = layouts
    module = documents[0].emit.module
    helpers: dict[str, dict] = {}
    sources = []
    for doc in documents:
        emitted = sorted({f.claim for f in doc.emit.formulas})
        verified = verify_emitted(doc, emitted, result=results.get(doc.path))
        for name, f in formulas(doc).items():
            if name in helpers:
                raise CodegenError(
                    f"{doc.path}: formula {name} is also declared by another document"
                )
            helpers[name] = _helper_context(f)
        sources.append({"path": _relpath(doc.path), "emitted": emitted, "verified": list(verified)})
    missing = [name for name in REQUIRED[layout] if name not in helpers]
    if missing:
        raise CodegenError(
            f"module {module}: layout {layout!r} needs formula(s) {', '.join(missing)}"
        )
    for group in TOGETHER[layout]:
        present = [name for name in group if name in helpers]
        if present and len(present) != len(group):
            absent = [name for name in group if name not in helpers]
            raise CodegenError(
                f"module {module}: formula(s) {', '.join(present)} need {', '.join(absent)}"
            )
    functions = functions_of(helpers)
    primary = documents[0].emit
    return (
        _environment()
        .get_template(primary.template)
        .render(
            module=module,
            layout=layout,
            centred=bool(primary.mean),
            inverse=primary.inverse,
            sources=sources,
            helpers=helpers,
            helper_list=list(helpers.values()),
            functions=functions,
            function_reductions=_function_reductions(helpers),
            function_params=_function_params(helpers),
            function_elements=_function_elements(helpers),
            verify_ns=", ".join(str(n) for n in VERIFY_NS),
            source_line="generated by derive from "
            + ", ".join(f"{s['path']} ({', '.join(s['emitted'])})" for s in sources)
            + "; do not edit",
        )
    )


def write_generated(outdir: Path, texts: dict[str, str] | None = None) -> list[Path]:
    """Write ``outdir/<module>.py`` for every module the shipped documents emit (and
    ``__init__.py``), rendered unless ``texts`` gives them; return the paths written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    texts = render_modules() if texts is None else texts
    init_text = '"""Modules generated by derive from verified claim files; do not edit."""\n'
    written = []
    for path, content in [
        *((outdir / f"{name}.py", text) for name, text in texts.items()),
        (outdir / "__init__.py", init_text),
    ]:
        write_if_changed(path, content)
        written.append(path)
    return written
