"""PDFs from the reports: latexmk (pdflatex), its log read for problems, and
``python -m derive.report``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..files import copy_atomic, describe_os_error, write_if_changed
from ..limits import LATEXMK_TIMEOUT_S, PDF_SOURCE_DATE_EPOCH

PDFLATEX_DEBIAN_PACKAGES = (
    "latexmk texlive-latex-base texlive-latex-recommended "
    "texlive-latex-extra texlive-fonts-recommended texlive-pictures lmodern"
)


class ReportBuildError(RuntimeError):
    """latexmk is missing or a report does not compile."""


# --------------------------------------------------------------------------- PDFs

# An overfull line wider than this is a layout bug.  TeX reports overruns of a
# fraction of a point that no reader can see; 3pt (about 1 mm) is the most a
# line may stick into the margin before it looks wrong on paper.
OVERFULL_LIMIT_PT = 3.0
_OVERFULL = re.compile(r"Overfull \\hbox \(([0-9.]+)pt too wide\)[^\n]*")
# A formula wider than the line is scaled down (\fitmath, \checkedline in the
# template, which log "derive-scaled: <width> to <line width>").  Below this
# factor its type is smaller than 8pt at 11pt: too small to read on paper.
MIN_SCALE = 0.75
_SCALED = re.compile(r"^derive-scaled: ([0-9.]+)pt to ([0-9.]+)pt", re.MULTILINE)


def latexmk_available() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def read_log(path) -> str:
    """A pdflatex log as text (logs may hold bytes of any encoding)."""
    return Path(path).read_text(encoding="utf-8", errors="replace")


def log_problems(log: str, overfull_limit_pt: float = OVERFULL_LIMIT_PT) -> list[str]:
    """What is wrong in a pdflatex log: errors, undefined references or
    citations, overfull lines wider than the limit, and formulas scaled below
    MIN_SCALE."""
    problems = []
    for line in log.splitlines():
        if line.startswith("! ") or re.match(r"^[^:\s]+\.tex:\d+: ", line):
            problems.append(f"error: {line}")
        elif "undefined" in line and ("Reference" in line or "Citation" in line):
            problems.append(f"undefined: {line}")
        elif "There were undefined references" in line:
            problems.append(f"undefined: {line}")
    for m in _OVERFULL.finditer(log):
        if float(m.group(1)) > overfull_limit_pt:
            problems.append(f"overfull: {m.group(0)}")
    for m in _SCALED.finditer(log):
        if float(m.group(2)) < MIN_SCALE * float(m.group(1)):
            problems.append(f"scaled below {MIN_SCALE:.0%}: {m.group(0)}")
    return problems


# What pdflatex writes when a further run would change the PDF: the warnings
# themselves, each anchored at the start of its log line, so that a claim's
# text echoed into the log (an overfull line prints its words) never matches.
_RERUN = re.compile(
    r"^(?:LaTeX Warning: Label\(s\) may have changed\. Rerun to get cross-references right"
    r"|Package \w+ Warning: .*Rerun LaTeX"
    r"|\(rerunfilecheck\) +Rerun to get outlines right"
    r"|(?:LaTeX|Package \w+) Warning: .*Rerun to get .* right)",
    re.MULTILINE,
)
# latexmk decides whether to run pdflatex again by comparing the auxiliary
# files' time, size and checksum; with one-second timestamps, an .aux file
# rewritten within the same second at the same size (a longtable's widths) can
# be taken as unchanged, and latexmk stops while the log still asks for a
# rerun.  How often that happens depends on the machine's load.  So when the
# final log asks for a rerun, the build forces further passes itself (latexmk
# -g), at most this many, and fails only if the log still asks after them.
EXTRA_PASSES = 3


def latexmk_command(tex_name: str, build_dir: Path) -> list[str]:
    """latexmk for one report: no rc files (a latexmkrc beside the report is Perl
    that latexmk would run), no shell escape, stop at the first error."""
    return [
        "latexmk",
        "-norc",
        "-pdf",
        "-no-shell-escape",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        f"-outdir={build_dir.resolve()}",
        tex_name,
    ]


def latex_environment_variables() -> dict[str, str]:
    """The environment pdflatex runs in: kpathsea's paranoid mode (no reading or
    writing outside the working and output folders, no dot files), and a fixed
    date, so two builds give the same bytes."""
    return dict(
        os.environ,
        openin_any="p",
        openout_any="p",
        shell_escape="f",
        SOURCE_DATE_EPOCH=str(PDF_SOURCE_DATE_EPOCH),
        FORCE_SOURCE_DATE="1",
    )


def _run_latexmk(cmd, cwd, timeout_s) -> subprocess.CompletedProcess:
    """Run latexmk in its own process group, and end the whole group (pdflatex
    included, which holds the output pipe open) when it runs past timeout_s."""
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=latex_environment_variables(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ReportBuildError(
                f"{Path(cwd) / cmd[-1]}: latexmk ran past the limit of {timeout_s} s"
                " (LATEXMK_TIMEOUT_S) and was stopped"
            ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def build_pdfs(
    tex_paths, build_dir: Path = Path("reports/_build"), *, timeout_s: float = LATEXMK_TIMEOUT_S
) -> list[Path]:
    """Compile each ``.tex`` with latexmk (pdflatex) into ``build_dir`` and copy
    the PDF beside its source (atomically); returns the PDFs' paths.

    Raises ReportBuildError when latexmk is missing, a file does not compile
    (with the log's first errors), the build runs past timeout_s, the log
    still asks for a rerun, or it names a problem (log_problems: a formula
    scaled below MIN_SCALE, a line overfull by more than OVERFULL_LIMIT_PT)."""
    if not latexmk_available():
        raise ReportBuildError(
            "latexmk and pdflatex are needed to build the PDF reports; on Debian/Ubuntu: "
            f"apt-get install {PDFLATEX_DEBIAN_PACKAGES}"
        )
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for tex in map(Path, tex_paths):
        stamp = build_dir / f"{tex.stem}.built-from"
        built = _built_from(tex)
        if built is not None and built == _read_stamp(stamp):
            out.append(tex.with_suffix(".pdf"))  # this very source made this very PDF
            continue
        proc = _run_latexmk(latexmk_command(tex.name, build_dir), tex.parent, timeout_s)
        log_path = build_dir / f"{tex.stem}.log"
        pdf = build_dir / f"{tex.stem}.pdf"
        if proc.returncode != 0 or not pdf.exists():
            log = read_log(log_path) if log_path.exists() else proc.stdout
            errors = [p for p in log_problems(log) if p.startswith("error")][:5]
            raise ReportBuildError(
                f"{tex}: latexmk failed (exit {proc.returncode}); see {log_path}\n"
                + "\n".join(errors or proc.stdout.splitlines()[-10:])
            )
        rerun = _RERUN.search(read_log(log_path))
        for _ in range(EXTRA_PASSES):
            if not rerun:
                break
            forced = latexmk_command(tex.name, build_dir)
            forced.insert(1, "-g")
            proc = _run_latexmk(forced, tex.parent, timeout_s)
            if proc.returncode != 0:
                raise ReportBuildError(
                    f"{tex}: latexmk -g failed (exit {proc.returncode}); see {log_path}"
                )
            rerun = _RERUN.search(read_log(log_path))
        if rerun:
            raise ReportBuildError(
                f"{tex}: the log still says {rerun.group(0)!r} after latexmk; see {log_path}"
            )
        # A formula scaled below MIN_SCALE or a line far into the margin is as
        # much a failure as an error: every report is checked, not one sample.
        problems = log_problems(read_log(log_path))
        if problems:
            raise ReportBuildError(f"{tex}: see {log_path}\n" + "\n".join(problems[:5]))
        target = tex.with_suffix(".pdf")
        copy_atomic(pdf, target)
        write_if_changed(stamp, _built_from(tex) or "")
        out.append(target)
    return out


def _built_from(tex: Path) -> str | None:
    """The sha256 of a report's source and of its PDF beside it (None without one)."""
    pdf = tex.with_suffix(".pdf")
    try:
        return " ".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in (tex, pdf))
    except OSError:
        return None


def _read_stamp(stamp: Path) -> str | None:
    try:
        return stamp.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def main(argv=None) -> int:
    """``python -m derive.report [FILE.tex ...]``: build PDFs (default reports/*.tex)."""
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted(Path("reports").glob("*.tex"))
    if not paths:
        print("error: no .tex reports to build (run make first)", file=sys.stderr)
        return 2
    try:
        for pdf in build_pdfs(paths, paths[0].parent / "_build"):
            print(pdf)
    except ReportBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    return 0
