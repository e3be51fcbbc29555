"""bench.py's results as goals met or missed, as LaTeX (tables and pgfplots charts,
through ``bench.tex.j2``) and as docs/benchmarks.md's markdown tables: each a pure
function of ``bench.json``'s content.

Length: the goals and the two printers of one JSON, kept together so that a goal's
limit and the bold or red that marks it missed cannot drift apart.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import BUDGET_S, MAX_ROUNDS, goal_word, shape_text  # noqa: E402

TEMPLATE = Path(__file__).resolve().parent / "bench.tex.j2"

# Goals, as the issue states them.
JACOBIAN_N, JACOBIAN_SPEEDUP = 16, 50.0
SEED_RANGE_BUDGET_S = 5.0

TORCH_RATIO_MAX = 0.8  # batch norm

FAMILY_RATIO_MAX = 1.0  # LayerNorm, RMSNorm, GroupNorm

COPIES_MAX = 3.0  # on the NCHW shapes

COPIES_FLOOR = 2.5  # read x and dy twice-ish, write dx once: about 2.5 copies

MEMORY_MAX = 1.3

DOUBLE_RATIO_MAX = 1.0  # batch-norm double backward against PyTorch's

FAMILY_NAMES = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm", "groupnorm": "GroupNorm"}


def evaluate_goals(results: dict) -> list[dict]:
    goals = []
    ver = results.get("verification")
    if ver:
        row = next((r for r in ver["rows"] if r["n"] == JACOBIAN_N), None)
        if row is None:
            met, value = None, f"n = {JACOBIAN_N} not measured"
        else:
            ratio = row["ratio_jacobian"]
            if row["ratio_is_lower_bound"]:
                met = True if ratio >= JACOBIAN_SPEEDUP else None
                value = f">= {ratio:.0f}x (naive capped at {row['naive']['cap_s']:g} s)"
            else:
                met = ratio >= JACOBIAN_SPEEDUP
                naive_s, ours_s = row["naive"]["seconds"], row["ours_jacobian_s"]
                value = f"{ratio:.0f}x ({naive_s:.2f} s / {ours_s:.3f} s)"
        goals.append(
            {
                "id": "jacobian-speedup",
                "text": f"Jacobian claim at n = {JACOBIAN_N} at least {JACOBIAN_SPEEDUP:g}x "
                "faster than the naive baseline",
                "met": met,
                "value": value,
            }
        )
        sr = ver["seed_range"]
        goals.append(
            {
                "id": "seed-file-time",
                "text": f"whole seed file for every n in {sr['ns'][0]}..{sr['ns'][-1]} "
                f"(one verify_document call) in at most {SEED_RANGE_BUDGET_S:g} s",
                "met": sr["seconds"] <= SEED_RANGE_BUDGET_S,
                "value": f"{sr['seconds']:.2f} s",
            }
        )
    bw = results.get("backward")
    if bw:
        goals.append(
            _worst_goal(
                "backward-vs-torch",
                f"backward time at most {TORCH_RATIO_MAX:g}x PyTorch's on every shape and dtype",
                bw["rows"],
                "ratio_torch",
                TORCH_RATIO_MAX,
                "{:.2f}x",
            )
        )
        nchw = [r for r in bw["rows"] if len(r["shape"]) > 2] or bw["rows"]
        goals.append(
            _worst_goal(
                "backward-copies",
                f"backward time at most {COPIES_MAX:g} array copies on the NCHW shapes",
                nchw,
                "ours_copies",
                COPIES_MAX,
                "{:.2f} copies",
            )
        )
    mem = results.get("memory")
    if mem:
        goals.append(
            _worst_goal(
                "backward-memory",
                f"peak extra memory of the backward at most {MEMORY_MAX:g} input arrays "
                "(tracemalloc, dx included)",
                mem["rows"],
                "ours_tracemalloc_arrays",
                MEMORY_MAX,
                "{:.3f} arrays",
            )
        )
    fam = results.get("family")
    if fam:
        goals.append(
            _worst_goal(
                "family-vs-torch",
                f"LayerNorm, RMSNorm and GroupNorm backward at most {FAMILY_RATIO_MAX:g}x"
                " PyTorch's",
                fam["rows"],
                "ratio_torch",
                FAMILY_RATIO_MAX,
                "{:.2f}x",
            )
        )
        goals.append(
            _worst_goal(
                "family-memory",
                f"their backward's peak extra memory at most {MEMORY_MAX:g} input arrays",
                fam["rows"],
                "ours_tracemalloc_arrays",
                MEMORY_MAX,
                "{:.3f} arrays",
            )
        )
    dbl = results.get("double_backward")
    if dbl:
        goals.append(
            _worst_goal(
                "double-backward-vs-torch",
                f"batch-norm double backward at most {DOUBLE_RATIO_MAX:g}x PyTorch's",
                dbl["rows"],
                "ratio_torch",
                DOUBLE_RATIO_MAX,
                "{:.2f}x",
            )
        )
    return goals


def _worst_goal(goal_id, text, rows, key, limit, fmt) -> dict:
    """A goal met when the worst row's `key` is at most `limit`."""
    worst = max(rows, key=lambda r: r[key])
    return {
        "id": goal_id,
        "text": text,
        "met": worst[key] <= limit,
        "value": f"worst {fmt.format(worst[key])} at {shape_text(worst['shape'])} {worst['dtype']}",
    }


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def tex_escape(text) -> str:
    """Plain text as pdflatex-safe LaTeX; non-ASCII becomes '?'-free ASCII."""
    out = []
    for c in str(text):
        if c in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[c])
        elif c == "\u00d7":
            out.append(r"$\times$")
        elif c.isascii():
            out.append(c)
        else:
            out.append(f"[U+{ord(c):04X}]")
    return "".join(out)


def _sig(v, digits=3) -> str:
    """A number in `digits` significant figures, plain decimal notation."""
    if v is None:
        return "--"
    if v == 0:
        return "0"
    exp = math.floor(math.log10(abs(v)))
    places = max(0, digits - 1 - exp)
    return f"{v:.{places}f}"


def _tex_shape(shape) -> str:
    return r"$" + r"\times".join(str(s) for s in shape) + r"$"


def _timing_cells(row, ours_s, torch_s) -> dict:
    """The table cells every timing row has: shape, dtype, both times, their ratios."""
    return {
        "shape": _tex_shape(row["shape"]),
        "dtype": row["dtype"],
        "ours_ms": _sig(ours_s * 1e3),
        "torch_ms": _sig(torch_s * 1e3),
        "ratio": f"{row['ratio_torch']:.2f}",
        "ratio_median": f"{row['ratio_torch_median']:.2f}",
    }


def _tex_shape_breakable(shape) -> str:
    """A shape that may break after a times sign: chart labels are narrower than 32x64x56x56."""
    return r"$" + r"{\times}$\allowbreak$".join(str(s) for s in shape) + r"$"


def tex_context(results: dict) -> dict:
    """Everything the template prints, as ready-made strings (pure function of results)."""
    m = results["machine"]
    t = results["settings"]["threads"]
    ctx = {
        "mode": results["mode"],
        "created": tex_escape(results["created"]),
        "machine": [
            ("CPU", tex_escape(m["cpu_model"])),
            ("cores", f"{m['usable_cores']} usable of {m['logical_cores']} logical"),
            ("load average at start", tex_escape(" ".join(str(v) for v in m["load_average"]))),
            (
                "Python / NumPy / PyTorch / SymPy",
                tex_escape(f"{m['python']} / {m['numpy']} / {m['torch']} / {m['sympy']}"),
            ),
            (
                "generated code's backend",
                tex_escape(
                    m.get("backend", "?")
                    + (f" (numba {m['numba']})" if m.get("numba") else "")
                    + "; DERIVE_BACKEND=numpy forces the NumPy path"
                ),
            ),
            (
                "threads",
                tex_escape(
                    f"NumPy ufuncs {t['numpy_ufunc_threads']}, NumPy BLAS {t['numpy_blas_threads']}"
                    f" (default {t['numpy_blas_threads_default']}), PyTorch {t['torch_threads']}"
                    f" (default {t['torch_threads_default']})"
                ),
            ),
        ],
        "goals": [
            {
                "text": tex_escape(g["text"]),
                "value": tex_escape(g["value"]),
                "word": goal_word(g["met"]),
                "met": g["met"],
            }
            for g in results["goals"]
        ],
    }
    ver = results.get("verification")
    if ver:
        rows = []
        for r in ver["rows"]:
            nv = r["naive"]
            rows.append(
                {
                    "n": r["n"],
                    "doc": _sig(r["ours_document_s"]),
                    "jac": _sig(r["ours_jacobian_s"]),
                    "naive": (r"$>$" if nv["capped"] else "") + _sig(nv["seconds"]),
                    "entries": f"{nv['entries_done']}/{nv['entries_total']}",
                    "capped": nv["capped"],
                    "ratio": (r"$\geq$" if r["ratio_is_lower_bound"] else "")
                    + _sig(r["ratio_jacobian"]),
                }
            )
        ctx["verification"] = {
            "rows": rows,
            "cap": f"{ver['cap_s']:g}",
            "claims": ver["claims"],
            "document": tex_escape(ver["document"]),
            "range_lo": ver["seed_range"]["ns"][0],
            "range_hi": ver["seed_range"]["ns"][-1],
            "range_s": _sig(ver["seed_range"]["seconds"]),
            "plot_doc": " ".join(f"({r['n']},{r['ours_document_s']:.6g})" for r in ver["rows"]),
            "plot_jac": " ".join(f"({r['n']},{r['ours_jacobian_s']:.6g})" for r in ver["rows"]),
            "plot_naive": " ".join(
                f"({r['n']},{r['naive']['seconds']:.6g})"
                for r in ver["rows"]
                if not r["naive"]["capped"]
            ),
            "plot_capped": " ".join(
                f"({r['n']},{r['naive']['seconds']:.6g})"
                for r in ver["rows"]
                if r["naive"]["capped"]
            ),
            "xticks": ",".join(str(r["n"]) for r in ver["rows"]),
        }
    bw = results.get("backward")
    if bw:
        rows = []
        for k, r in enumerate(bw["rows"]):
            rows.append(
                {
                    "k": k,
                    **_timing_cells(r, r["ours_s"], r["torch_s"]),
                    "copy_ms": _sig(r["copy_s"] * 1e3),
                    "ours_copies": f"{r['ours_copies']:.2f}",
                    "torch_copies": f"{r['torch_copies']:.2f}",
                    "fresh_copies": f"{r['fresh_copy_s'] / r['copy_s']:.2f}",
                    "err": f"{r['max_rel_err']['dx']:.1e}",
                }
            )
        ctx["backward"] = {
            "rows": rows,
            "repeats": bw["repeats"],
            "labels": ",".join(
                "{" + _tex_shape_breakable(r["shape"]) + r"\\" + r["dtype"] + "}"
                for r in bw["rows"]
            ),
            "xticks": ",".join(str(k) for k in range(len(bw["rows"]))),
            "xmax": len(bw["rows"]) - 0.5,
            "plot_ours": " ".join(
                f"({k},{r['ours_copies']:.4f})" for k, r in enumerate(bw["rows"])
            ),
            "plot_torch": " ".join(
                f"({k},{r['torch_copies']:.4f})" for k, r in enumerate(bw["rows"])
            ),
            "floor": f"{COPIES_FLOOR:g}",
            "goal": f"{COPIES_MAX:g}",
            "max_rounds": MAX_ROUNDS,
            "budget": f"{BUDGET_S:g}",
        }
    fam = results.get("family")
    if fam:
        ctx["family"] = {
            "repeats": fam["repeats"],
            "rows": [
                {
                    "name": FAMILY_NAMES[r["module"]]
                    + (f", {r['groups']} groups" if r.get("groups") else ""),
                    **_timing_cells(r, r["ours_b_s"], r["torch_b_s"]),
                    "forward": f"{r['ratio_forward']:.2f}",
                    "forward_median": f"{r['ratio_forward_median']:.2f}",
                    "copies": f"{r['ours_copies']:.2f}",
                    "memory": f"{r['ours_tracemalloc_arrays']:.2f}",
                }
                for r in fam["rows"]
            ],
            "goal": f"{FAMILY_RATIO_MAX:g}",
        }
    dbl = results.get("double_backward")
    if dbl:
        ctx["double"] = {
            "repeats": dbl["repeats"],
            "rows": [
                {
                    **_timing_cells(r, r["ours_s"], r["torch_s"]),
                    "err": f"{max(r['max_rel_err'].values()):.1e}",
                }
                for r in dbl["rows"]
            ],
            "goal": f"{DOUBLE_RATIO_MAX:g}",
        }
    mem = results.get("memory")
    if mem:
        ctx["memory"] = {
            "rows": [
                {
                    "shape": _tex_shape(r["shape"]),
                    "dtype": r["dtype"],
                    "tm": f"{r['ours_tracemalloc_arrays']:.3f}",
                    "ours_rss": "--"
                    if r["ours_rss_arrays"] is None
                    else f"{r['ours_rss_arrays']:.2f}",
                    "torch_rss": "--"
                    if r["torch_rss_arrays"] is None
                    else f"{r['torch_rss_arrays']:.2f}",
                }
                for r in mem["rows"]
            ],
            "goal": f"{MEMORY_MAX:g}",
        }
    return ctx


def render_tex(results: dict) -> str:
    from derive.report import latex_environment

    # tex_context already escapes every string, so values print as they are
    env = latex_environment(TEMPLATE.parent, finalize=None)
    return env.get_template(TEMPLATE.name).render(**tex_context(results))


def build_pdf(tex: Path, build_dir: Path) -> Path:
    """Compile with the reports' latexmk build; the PDF lands beside the .tex."""
    from derive.report import build_pdfs

    (pdf,) = build_pdfs([tex], build_dir)
    return pdf


def print_goals(goals, out=sys.stdout) -> None:
    print("Goals:", file=out)
    for g in goals:
        print(f"  [{goal_word(g['met']):>9}] {g['text']}: {g['value']}", file=out)


# --------------------------------------------------------------- markdown


def _cell(text: str, missed: bool) -> str:
    return f"**{text}**" if missed else text


def _ratio_cell(row: dict, limit: float, key: str = "ratio_torch") -> str:
    text = f"{row[key]:.2f} ({row[key + '_median']:.2f})"
    return _cell(text, row[key] > limit)


def markdown(results: dict) -> dict:
    """docs/benchmarks.md's tables of bench.json, one string per section present
    (verification, backward, family, double_backward, goals); bold marks a goal missed."""
    out = {}
    ver = results.get("verification")
    if ver:
        lines = [
            "| n | seed file (s) | Jacobian claim (s) | naive (s) | naive / ours |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in ver["rows"]:
            nv = r["naive"]
            if nv["capped"]:
                naive = f"> {nv['cap_s']:g} ({nv['entries_done']}/{nv['entries_total']} entries)"
                ratio = f"≥ {r['ratio_jacobian']:.0f}×"
            else:
                naive, ratio = _sig(nv["seconds"]), f"{r['ratio_jacobian']:.0f}×"
            lines.append(
                f"| {r['n']} | {_sig(r['ours_document_s'])} | {_sig(r['ours_jacobian_s'])} "
                f"| {naive} | {ratio} |"
            )
        ns = ver["seed_range"]["ns"]
        lines += [
            "",
            f"The whole seed file for every n in {ns[0]}..{ns[-1]}, in one call: "
            f"{ver['seed_range']['seconds']:.2f} s.",
        ]
        out["verification"] = "\n".join(lines)
    if results.get("backward"):
        memory = {
            (tuple(r["shape"]), r["dtype"]): r for r in results.get("memory", {}).get("rows", ())
        }
        lines = [
            "| batch-norm backward | dtype | ours (ms) | PyTorch (ms) | ours / PyTorch "
            "| copies | peak memory |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in results["backward"]["rows"]:
            mem = memory.get((tuple(r["shape"]), r["dtype"]))
            nchw = len(r["shape"]) == 4
            peak = "--"
            if mem:
                arrays = mem["ours_tracemalloc_arrays"]
                peak = _cell(f"{arrays:.2f} arrays", arrays > MEMORY_MAX)
            copies = _cell(f"{r['ours_copies']:.2f}", nchw and r["ours_copies"] > COPIES_MAX)
            lines.append(
                f"| {shape_text(r['shape'])} | {r['dtype']} | {_sig(r['ours_s'] * 1e3)} "
                f"| {_sig(r['torch_s'] * 1e3)} | {_ratio_cell(r, TORCH_RATIO_MAX)} | {copies} "
                f"| {peak} |"
            )
        out["backward"] = "\n".join(lines)
    if results.get("family"):
        lines = [
            "| family | dtype | backward ours (ms) | PyTorch (ms) | ours / PyTorch "
            "| forward ours / PyTorch | copies | peak memory |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["family"]["rows"]:
            name = f"{FAMILY_NAMES[r['module']]} {shape_text(r['shape'])}"
            if r.get("groups"):
                name += f", {r['groups']} groups"
            lines.append(
                f"| {name} | {r['dtype']} | {_sig(r['ours_b_s'] * 1e3)} "
                f"| {_sig(r['torch_b_s'] * 1e3)} | {_ratio_cell(r, FAMILY_RATIO_MAX)} "
                f"| {r['ratio_forward']:.2f} ({r['ratio_forward_median']:.2f}) "
                f"| {r['ours_copies']:.2f} | {r['ours_tracemalloc_arrays']:.2f} arrays |"
            )
        out["family"] = "\n".join(lines)
    if results.get("double_backward"):
        lines = [
            "| double backward | dtype | ours (ms) | PyTorch (ms) | ours / PyTorch "
            "| max rel. error vs PyTorch |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in results["double_backward"]["rows"]:
            lines.append(
                f"| {shape_text(r['shape'])} | {r['dtype']} | {_sig(r['ours_s'] * 1e3)} "
                f"| {_sig(r['torch_s'] * 1e3)} | {_ratio_cell(r, DOUBLE_RATIO_MAX)} "
                f"| {max(r['max_rel_err'].values()):.1e} |"
            )
        out["double_backward"] = "\n".join(lines)
    out["goals"] = "\n".join(
        f"- {goal_word(g['met'])}: {g['text']}: {g['value']}" for g in results.get("goals", ())
    )
    return out
