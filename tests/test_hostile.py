"""Claim files from strangers, and folders that cannot be written: each is refused
with exit 2 and one line on stderr naming the file and the field, before
anything is written (least of all outside the chosen folder) and before any
LaTeX payload could run."""

from __future__ import annotations

import copy
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from derive import cli, files
from derive.cli import EXIT_BAD_INPUT, main
from derive.limits import MAX_CLAIM_FILE_BYTES, MAX_LATEX_GROUP_DEPTH
from tests.conftest import ROOT

MARKER = "MARKER"  # the file a payload would create if TeX ever ran it

TINY = {
    "document": {"id": "tiny", "title": "Tiny", "citation": "a test", "model": "xhat"},
    "claims": [
        {
            "id": "dmu",
            "title": "dmu/dx",
            "latex": r"\frac{\partial \mu}{\partial x_i} = \frac{1}{n}",
            "for": "all i",
            "lhs": "d(mu, x[i])",
            "rhs": "1/n",
        },
        {
            "id": "split",
            "title": "dmu/dx by cases",
            "latex": r"\frac{\partial \mu}{\partial x_i} = \frac{1}{n}",
            "cases": [
                {"for": "i = j", "lhs": "d(mu, x[i])", "rhs": "1/n", "latex": r"i = j"},
                {"for": "i != j", "lhs": "d(mu, x[i])", "rhs": "1/n", "latex": r"i \ne j"},
            ],
        },
        {
            "id": "third",
            "title": "dmu/dx again",
            "latex": r"\frac{1}{n}",
            "for": "all i",
            "lhs": "d(mu, x[i])",
            "rhs": "1/n",
        },
    ],
}


def toml(data: dict) -> str:
    """TOML for claim files: JSON's strings, numbers, booleans and lists are TOML's."""
    lines = ["[document]"] + [f"{k} = {json.dumps(v)}" for k, v in data["document"].items()]
    for c in data["claims"]:
        lines.append("[[claims]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in c.items() if k != "cases"]
        for case in c.get("cases", []):
            lines.append("[[claims.cases]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in case.items()]
    return "\n".join(lines) + "\n"


def edited(where: str, key: str, value) -> dict:
    """TINY with one field set: where is "document", a claim id, or "split.cases[1]"."""
    data = copy.deepcopy(TINY)
    if where == "document":
        target = data["document"]
    elif where.endswith("]"):
        cid, k = where[:-1].split(".cases[")
        target = next(c for c in data["claims"] if c["id"] == cid)["cases"][int(k) - 1]
    else:
        target = next(c for c in data["claims"] if c["id"] == where)
    target[key] = value
    return data


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_verify(tmp_path, capsys, claim_file, *extra):
    """verify claim_file --report tmp_path/out, in a working folder of its own."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    before = tree(tmp_path)
    old = os.getcwd()
    os.chdir(work)
    try:
        code = main(["verify", str(claim_file), "--n", "2", *extra])
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, err, before


def assert_refused(tmp_path, code, err, before, *names):
    assert code == EXIT_BAD_INPUT, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for name in names:
        assert name in err, (name, err)
    assert tree(tmp_path) == before  # no report, no marker, nothing anywhere
    assert not list(tmp_path.rglob(MARKER))


# --------------------------------------------------------------------------- LaTeX fields

HOSTILE_LATEX = [
    r"\input{/etc/passwd}",
    r"\include{/etc/passwd}",
    r"\InputIfFileExists{/etc/passwd}{}{}",
    r"\def\a{\a}\a",
    r"\edef\x{1}",
    r"\gdef\holds{\textbf{FAILS}}",
    r"\xdef\fails{holds}",
    r"\let\fails\holds",
    r"\futurelet\a\b\c",
    r"\csname input\endcsname{/etc/passwd}",
    r"\catcode`\%=12",
    r"\uccode`\a=`\b",
    r"\immediate\write18{touch MARKER}",
    r"\openout1=MARKER \write1{x}\closeout1",
    r"\openin1=/etc/passwd \read1 to\x",
    r"\newcommand\x{\input{/etc/passwd}}",
    r"\renewcommand\holds{FAILS}",
    r"\providecommand\x{}",
    r"\DeclareRobustCommand\x{}",
    r"\newenvironment{x}{}{}",
    r"\usepackage{shellesc}",
    r"\RequirePackage{x}",
    r"\documentclass{article}",
    r"\special{ps: x}",
    r"\jobname",
    r"\expandafter\x\y",
    r"\makeatletter",
    r"\begingroup\aftergroup\x\endgroup",
    r"\holds",
    r"\fitmath{x}",
    r"^^5cinput{/etc/passwd}",
    r"x % the rest of the line, and the template's brace",
    r"#1",
    r"$x$",
    r"\begin{filecontents}{MARKER}x\end{filecontents}",
    r"\begin{verbatim}x\end{verbatim}",
    "x \\",
    "x = {",
    "x = }{",
    r"\left( x",
    r"\begin{cases} x \end{aligned}",
    "x\x07",
    "x\x00y",
    "x\ry",
    "\x1b[31m",
    "x\n\ny",
    "{" * (MAX_LATEX_GROUP_DEPTH + 1) + "}" * (MAX_LATEX_GROUP_DEPTH + 1),
]


@pytest.mark.parametrize("latex", HOSTILE_LATEX)
def test_claim_latex_is_refused(tmp_path, capsys, latex):
    path = tmp_path / "doc.toml"
    path.write_text(toml(edited("dmu", "latex", latex)), encoding="utf-8")
    code, err, before = run_verify(tmp_path, capsys, path, "--report", str(tmp_path / "out"))
    assert_refused(tmp_path, code, err, before, "doc.toml", "'dmu'", "'latex'")


@pytest.mark.parametrize(
    "latex", [r"\input{/etc/passwd}", r"\gdef\holds{x}", "i = j\\", "\x07", r"\csname x"]
)
def test_case_latex_is_refused(tmp_path, capsys, latex):
    path = tmp_path / "doc.toml"
    path.write_text(toml(edited("split.cases[2]", "latex", latex)), encoding="utf-8")
    code, err, before = run_verify(tmp_path, capsys, path, "--report", str(tmp_path / "out"))
    assert_refused(tmp_path, code, err, before, "'split'", "'cases[2].latex'")


# ---------------------------------------------------------------------- names and types

BAD_FIELDS = [
    ("document", "id", "../../x", "'document.id'"),
    ("document", "id", "/abs", "'document.id'"),
    ("document", "id", "a/b", "'document.id'"),
    ("document", "id", "..", "'document.id'"),
    ("document", "id", ".", "'document.id'"),
    ("document", "id", "a b", "'document.id'"),
    ("document", "id", "x\ny", "'document.id'"),
    ("document", "id", 7, "'document.id'"),
    ("document", "citation", 1, "'document.citation'"),
    ("document", "citation", ["a"], "'document.citation'"),
    ("document", "description", True, "'document.description'"),
    ("document", "closed_form", 3, "'document.closed_form'"),
    ("document", "title", 1, "'document.title'"),
    ("dmu", "id", "../x", "'id'"),
    ("dmu", "id", "a/b", "'id'"),
    ("dmu", "id", "..", "'id'"),
    ("dmu", "note", 3, "'note'"),
    ("dmu", "note", ["a", "b"], "'note'"),
    ("dmu", "title", 2, "'title'"),
    ("dmu", "latex", 1, "'latex'"),
    ("dmu", "uses", "third", "'uses'"),
    ("dmu", "uses", [1], "'uses'"),
    ("dmu", "for", ["all i"], "'for'"),
    ("split.cases[1]", "latex", 5, "'cases[1].latex'"),
]


@pytest.mark.parametrize(("where", "key", "value", "field"), BAD_FIELDS)
def test_bad_name_or_type_is_refused(tmp_path, capsys, where, key, value, field):
    path = tmp_path / "doc.toml"
    path.write_text(toml(edited(where, key, value)), encoding="utf-8")
    code, err, before = run_verify(tmp_path, capsys, path, "--report", str(tmp_path / "out"))
    assert_refused(tmp_path, code, err, before, "doc.toml", field)


@pytest.mark.parametrize(
    ("uses", "cycle"),
    [
        ({"dmu": ["third"], "third": ["dmu"]}, "dmu -> third -> dmu"),
        ({"dmu": ["split"], "split": ["third"], "third": ["dmu"]}, "dmu -> split -> third -> dmu"),
        ({"split": ["third"], "third": ["split"], "dmu": ["split"]}, "split -> third -> split"),
    ],
)
def test_a_cycle_of_uses_is_refused(tmp_path, capsys, uses, cycle):
    data = copy.deepcopy(TINY)
    for c in data["claims"]:
        c["uses"] = uses.get(c["id"], [])
    path = tmp_path / "doc.toml"
    path.write_text(toml(data), encoding="utf-8")
    code, err, before = run_verify(tmp_path, capsys, path, "--report", str(tmp_path / "out"))
    assert_refused(tmp_path, code, err, before, "'uses'", cycle)


def test_two_documents_with_one_id_cannot_share_a_report(tmp_path, capsys):
    # Without --report they may (tests/test_cli.py): a course's files share one template.
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(toml(TINY), encoding="utf-8")
    before = tree(tmp_path)
    files = [str(tmp_path / "a.toml"), str(tmp_path / "b.toml")]
    code = main(["verify", *files, "--n", "2", "--report", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert_refused(tmp_path, code, err, before, "b.toml", "'document.id'", "a.toml")


# ---------------------------------------------------------------- the claim file itself


def test_an_oversized_file_is_refused_unread(tmp_path, capsys, monkeypatch):
    path = tmp_path / "big.toml"
    text = toml(TINY)
    path.write_text(text + "#" * (MAX_CLAIM_FILE_BYTES - len(text)) + "\n", encoding="utf-8")
    reads = []
    real_read = files.os.fdopen

    def spy(*args, **kw):
        f = real_read(*args, **kw)
        reads.append(f)
        return f

    monkeypatch.setattr(files.os, "fdopen", spy)
    code, err, before = run_verify(tmp_path, capsys, path)
    assert_refused(tmp_path, code, err, before, "big.toml", "larger than the limit")
    assert len(reads) == 1 and reads[0].closed


def _cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "derive", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of the suite
        check=False,
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_at_once(device):
    if not Path(device).exists():
        pytest.skip(f"{device} does not exist here")
    proc = _cli("verify", device, timeout=60)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.count("\n") == 1 and "not a regular file" in proc.stderr, proc.stderr


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "claims.toml"
    os.mkfifo(fifo)
    proc = _cli("verify", str(fifo), timeout=60)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.count("\n") == 1 and "not a regular file" in proc.stderr, proc.stderr


def test_a_folder_is_refused(tmp_path, capsys):
    code, err, before = run_verify(tmp_path, capsys, tmp_path)
    assert_refused(tmp_path, code, err, before, "Is a directory")


# ------------------------------------------------------------ folders that cannot be written


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "doc.toml"
    path.write_text(toml(TINY), encoding="utf-8")
    return path


def test_report_naming_an_existing_file(tmp_path, capsys, tiny):
    (tmp_path / "out").write_text("mine\n")
    code, err, before = run_verify(tmp_path, capsys, tiny, "--report", str(tmp_path / "out"))
    assert_refused(tmp_path, code, err, before, "out")
    assert (tmp_path / "out").read_text() == "mine\n"


def test_report_under_a_file(tmp_path, capsys, tiny):
    (tmp_path / "plain").write_text("mine\n")
    target = tmp_path / "plain" / "out"
    code, err, before = run_verify(tmp_path, capsys, tiny, "--report", str(target))
    assert_refused(tmp_path, code, err, before, "plain")


@pytest.mark.parametrize(
    ("number", "reason"),
    [(errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space left on device")],
)
def test_a_read_only_or_full_disk(tmp_path, capsys, tiny, monkeypatch, number, reason):
    # Tests run as root, which ignores permission bits: the system call is made to fail.
    def refuse(src, dst):
        raise OSError(number, os.strerror(number), str(dst))

    monkeypatch.setattr(files.os, "replace", refuse)
    out = tmp_path / "out"
    out.mkdir()
    code, err, before = run_verify(tmp_path, capsys, tiny, "--report", str(out))
    assert_refused(tmp_path, code, err, before, reason)


def test_permission_denied(tmp_path, capsys, tiny, monkeypatch):
    def refuse(*args, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "out"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    code, err, before = run_verify(tmp_path, capsys, tiny, "--report", str(tmp_path / "out"))
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and "Permission denied" in err
    assert tree(tmp_path) - before <= {"out"}  # at most the (empty) folder itself
    assert not any((tmp_path / "out").iterdir())


def test_build_into_a_folder_under_a_file(tmp_path, capsys, tiny, monkeypatch):
    (tmp_path / "plain").write_text("mine\n")
    monkeypatch.setattr(cli, "shipped_documents", lambda: [tiny])
    monkeypatch.setattr(cli, "REPORTS", tmp_path / "plain" / "reports")
    before = tree(tmp_path)
    code = main(["build", "--n", "2"])
    err = capsys.readouterr().err
    assert_refused(tmp_path, code, err, before, "plain")


# --------------------------------------------------------------------------- sides and models

# Payloads that ran code, hung or ate memory through the old parser (which
# evaluated the text): each is refused by the syntax-tree parser, naming the field.
HOSTILE_SIDES = [
    "d.__globals__['__builtins__']['__import__']('os').system('touch MARKER')",
    "().__class__.__base__.__subclasses__()",
    '\'__import__("os").system("touch MARKER")\'',
    'sum(\'__import__("os").system("touch MARKER")\', k)',
    "__import__('os').system('touch MARKER')",
    "eval('1')",
    "open('MARKER', 'w')",
    "[0]*10**9",
    "10**10**10",
    "sigma**(10**6)",
    "Rational(1, 10**10**8)",
    "Float(1, 10**9)",
    "x[i]**x[i]",
    "lambda: 0",
    "[c for c in ()]",
    "d",
    "sum(x[k], k, start=0)",
    "x[0]",
    "9" * 50,
]


@pytest.mark.parametrize("side", HOSTILE_SIDES, ids=range(len(HOSTILE_SIDES)))
def test_a_hostile_side_is_refused_and_runs_nothing(tmp_path, capsys, side):
    path = tmp_path / "doc.toml"
    path.write_text(toml(edited("dmu", "rhs", side)), encoding="utf-8")
    code, err, before = run_verify(tmp_path, capsys, path)
    assert_refused(tmp_path, code, err, before, str(path), "claim 'dmu'", "field 'rhs'")


HOSTILE_NODES = [
    ("mu = __import__('os').system('touch MARKER')", "model.nodes[1]"),
    ("mu = x.__class__", "model.nodes[1]"),
    ("mu = D(x[1], x[1])", "model.nodes[1]"),
    ("mu = sum(x[k], k)**(10**9)", "model.nodes[1]"),
    ("__class__ = 1", "model.nodes[1]"),
]


@pytest.mark.parametrize("node, field", HOSTILE_NODES)
def test_a_hostile_node_declaration_is_refused(tmp_path, capsys, node, field):
    data = copy.deepcopy(TINY)
    del data["document"]["model"]
    text = toml(data) + "[model]\nvectors = ['x']\nnodes = [" + json.dumps(node) + "]\n"
    path = tmp_path / "doc.toml"
    path.write_text(text, encoding="utf-8")
    code, err, before = run_verify(tmp_path, capsys, path)
    assert_refused(tmp_path, code, err, before, str(path), field)


def test_n_above_the_limit_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["verify", "--n", str(cli.MAX_N + 1)])
    assert info.value.code == EXIT_BAD_INPUT
    assert f"n above {cli.MAX_N} is not supported" in capsys.readouterr().err
