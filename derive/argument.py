"""A picture of the argument: the claims as a graph of ``uses``, laid out in layers.

A claim's layer is the length of the longest chain of ``uses`` below it, so
everything a claim relies on lies to its left.  Within a layer, claims are
ordered by the mean position of the claims they use (then by the order of
the file), in a few sweeps, which keeps most edges short and uncrossed.  The
layout is computed here, deterministically, and drawn by TikZ in the report:
no Graphviz.
"""

from __future__ import annotations

from dataclasses import dataclass

# Sweeps of the ordering heuristic: each one reorders every layer by the mean
# position of its neighbours; four settle the shipped documents.
SWEEPS = 4


@dataclass(frozen=True)
class Placed:
    id: str
    layer: int  # the column, from 0 (claims that use nothing)
    row: int  # the position within the column, from 0


def layers(claims) -> dict[str, int]:
    """Longest chain of ``uses`` below each claim (``uses`` has no cycle: claims.py)."""
    uses = {c.id: [u for u in c.uses] for c in claims}
    out: dict[str, int] = {}
    for c in claims:
        stack = [c.id]
        while stack:  # without recursion: a long chain cannot overflow the stack
            top = stack[-1]
            todo = [u for u in uses[top] if u not in out]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            out[top] = 1 + max((out[u] for u in uses[top]), default=-1)
    return out


def layout(claims) -> list[Placed]:
    """Every claim with its column and row."""
    layer_of = layers(claims)
    order = {c.id: k for k, c in enumerate(claims)}
    uses = {c.id: tuple(c.uses) for c in claims}
    used_by: dict[str, list[str]] = {c.id: [] for c in claims}
    for c in claims:
        for u in c.uses:
            used_by[u].append(c.id)
    columns: dict[int, list[str]] = {}
    for c in claims:
        columns.setdefault(layer_of[c.id], []).append(c.id)
    row = {cid: k for col in columns.values() for k, cid in enumerate(col)}

    def mean(ids, fallback):
        ids = list(ids)
        return sum(row[i] for i in ids) / len(ids) if ids else fallback

    for sweep in range(SWEEPS):
        keys = sorted(columns) if sweep % 2 == 0 else sorted(columns, reverse=True)
        for k in keys:
            neighbours = uses if sweep % 2 == 0 else used_by
            col = sorted(columns[k], key=lambda cid: (mean(neighbours[cid], row[cid]), order[cid]))
            columns[k] = col
            row.update({cid: pos for pos, cid in enumerate(col)})
    return [Placed(cid, layer_of[cid], row[cid]) for cid in (c.id for c in claims)]
