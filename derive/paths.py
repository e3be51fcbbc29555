"""Names from claim files that become file names, and where outputs may go.

A document id names its report (``<id>.tex``, ``<id>.pdf``) and a claim id
names a LaTeX label, so both are restricted to ``[A-Za-z0-9_.-]+`` and may
not be ``.`` or ``..``: no separator, no parent directory, nothing a shell
or TeX reads specially.  ``output_path`` is the one place an output's path is
made from a name, and it refuses any that would land outside its folder.
"""

from __future__ import annotations

import re
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")

# Where things live: the one place that knows.
PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent  # the checkout (the package is installed editable)
DOCUMENTS = PACKAGE / "documents"
TEMPLATES = PACKAGE / "templates"
GENERATED = PACKAGE / "generated"
REPORTS = ROOT / "reports"


def name_problem(name) -> str | None:
    """Why name cannot be a document or claim id, or None when it can."""
    if not isinstance(name, str):
        return f"expected a string, got {type(name).__name__}"
    if not SAFE_NAME.fullmatch(name):
        return f"{name!r} is not a name: use only letters, digits, '_', '.' and '-'"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    return None


def output_path(folder: Path, name: str, suffix: str) -> Path:
    """folder/<name><suffix>, refusing a name that would put it anywhere else."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    folder = Path(folder)
    path = folder / f"{name}{suffix}"
    if path.parent != folder or path.name != f"{name}{suffix}":
        raise ValueError(f"{name!r} would be written outside {folder}")
    return path
