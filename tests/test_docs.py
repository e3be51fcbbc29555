"""The README and docs/ say what is true: every Python example runs, and prints what
the page shows after it; the README's command prints what it shows, its claim file is
the one shipped, every link resolves and every path named exists."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE = ROOT / "docs" / "examples" / "mean.toml"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# A path in backticks that names one file of this repository (no glob, no <placeholder>).
_PATH = re.compile(r"`((?:derive|tests|benchmarks|docs|reports)/[\w./-]+\.(?:py|toml|j2|md|json))`")
# What may stand between an example and the text block of what it prints.
_PRINTS = re.compile(r"((it )?prints:?)?", re.I)
# The README's examples run derive in a fresh process: SymPy's import and the check.
RUN_TIMEOUT_S = 120


def _blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(path.read_text("utf-8")) if lang == language]


def _run(args, tmp_path, **kw):
    env = {**os.environ, "DERIVE_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, **kw
    )


def test_the_readme_s_command_prints_what_it_shows(tmp_path):
    (console,) = _blocks(README, "console")
    command, *shown = console.rstrip("\n").split("\n")
    assert command.startswith("$ python -m derive ")
    args = [sys.executable, *command[len("$ python ") :].split()]
    out = _run(args, tmp_path)
    assert out.returncode == 1  # the example's slip fails, as the README says
    assert out.stdout.rstrip("\n").split("\n") == shown


def test_the_readme_s_claim_files_are_the_shipped_text():
    first, several = _blocks(README, "toml")
    assert first in EXAMPLE.read_text("utf-8")
    rows = ROOT / "derive" / "documents" / "layernorm_rows.toml"
    assert several in rows.read_text("utf-8")


def test_the_readme_s_python_examples_show_what_they_print():
    examples = [p for p in _examples() if p.values[0] == README]
    assert len(examples) == 2 and all(p.values[2] is not None for p in examples)
    # every text block is what an example prints, checked by the test below
    assert "".join(p.values[2] for p in examples) == "".join(_blocks(README, "text"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves_and_every_path_named_exists(page):
    text = page.read_text("utf-8")
    for target in _LINK.findall(text):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), (page.name, target)
    for path in _PATH.findall(text):
        assert (ROOT / path).exists(), (page.name, path)


def _examples() -> list:
    """(page, index, code, printed): every Python block of the pages, with the text block
    right after it (what it prints), or None."""
    out = []
    for page in PAGES:
        found = list(_BLOCK.finditer(page.read_text("utf-8")))
        for k, block in enumerate(found):
            if block.group(1) != "python":
                continue
            after = found[k + 1] if k + 1 < len(found) else None
            text = page.read_text("utf-8")
            printed = None
            between = text[block.end() : after.start()] if after else ""
            if after and after.group(1) == "text" and _PRINTS.fullmatch(between.strip()):
                printed = after.group(2)
            out.append(pytest.param(page, block.group(2), printed, id=f"{page.name}-{k}"))
    return out


@pytest.mark.parametrize(("page", "code", "printed"), _examples())
def test_every_python_example_runs_and_prints_what_it_shows(page, code, printed, tmp_path):
    ast.parse(code)
    out = _run([sys.executable, "-c", code], tmp_path)
    assert out.returncode == 0, (page.name, out.stderr[-2000:])
    if printed is not None:
        assert out.stdout == printed, page.name


def test_the_readme_is_a_front_door():
    # At most 12,000 characters: what derive is, set-up, one example, links.
    text = README.read_text("utf-8")
    assert len(text) <= 12_000
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, page.name
