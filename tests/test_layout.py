"""The layout the design names: no hand-written module over about 500 lines without a
reason stated at its top, and a test file for every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# "About 500": a module a little over it need not split; past this it states why not.
MAX_LINES = 500
HAND_WRITTEN = sorted(
    p
    for folder in ("derive", "benchmarks")
    for p in (ROOT / folder).rglob("*.py")
    if "generated" not in p.relative_to(ROOT).parts
)


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_at_its_top(path):
    text = path.read_text(encoding="utf-8")
    if text.count("\n") <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert "\nLength: " in doc, f"{path.name}: {text.count(chr(10))} lines and no 'Length:' reason"


def test_every_module_has_its_test_file():
    missing = []
    for path in HAND_WRITTEN:
        if path.name in ("__init__.py", "__main__.py"):
            continue
        name = path.stem if path.parent.name in ("derive", "benchmarks") else None
        candidates = {f"test_{path.stem}.py", f"test_{path.parent.name}_{path.stem}.py"}
        if name is None:
            candidates.add(f"test_{path.parent.name}.py")
        if path.parent.name == "benchmarks":
            candidates.add(f"test_bench_{path.stem}.py")
        if not any((ROOT / "tests" / c).exists() for c in candidates):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing
