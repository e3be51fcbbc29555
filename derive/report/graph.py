"""The picture of the argument: the claims as boxes, each below the claims it
uses (TikZ coordinates for the template)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..argument import layout
from ..claims import Document
from ..mathtext import escape_tex
from .maths import TeX, label
from .views import ClaimView


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: TeX
    x: str  # TikZ coordinates, cm
    y: str
    text: TeX  # the id, broken at hyphens into short lines
    status: str


def _graph(claims: list[ClaimView], document: Document) -> dict:
    placed = layout(document.claims)
    status = {c.id: c.status for c in claims}
    columns = max((p.layer for p in placed), default=0) + 1
    rows = max((p.row for p in placed), default=0) + 1
    dx = min(GRAPH_MAX_DX_CM, GRAPH_WIDTH_CM / max(columns - 1, 1))
    # Rows far enough apart for the tallest box (an id of four short lines
    # overlapped its neighbours at a fixed spacing).
    tallest = max((len(_short_lines(p.id)) for p in placed), default=1)
    dy = max(GRAPH_DY_CM, GRAPH_LINE_CM * tallest + GRAPH_GAP_CM)
    nodes = []
    for p in placed:
        y = -(p.row - (sum(1 for q in placed if q.layer == p.layer) - 1) / 2) * dy
        nodes.append(
            GraphNode(
                id=p.id,
                label=label(p.id),
                x=f"{p.layer * dx:.2f}",
                y=f"{y:.2f}",
                text=TeX(r"\\".join(escape_tex(part) for part in _short_lines(p.id))),
                status=status[p.id],
            )
        )
    edges = [(u, c.id) for c in document.claims for u in c.uses]
    index = {n.id: k for k, n in enumerate(nodes)}
    return {
        "nodes": nodes,
        "edges": [(index[a], index[b]) for a, b in edges],
        "rows": rows,
        "node_width": f"{min(GRAPH_NODE_CM, dx - 0.3):.2f}",
    }


def _short_lines(claim_id: str, width: int = 11) -> list[str]:
    """An id broken at hyphens into lines of about ``width`` characters."""
    lines: list[str] = []
    for part in re.split(r"(?<=-)", claim_id):
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return lines


# The picture of the argument: at most this wide (the text block is 16 cm),
# columns at most this far apart, rows this far apart, nodes this wide.
GRAPH_WIDTH_CM = 13.5
GRAPH_MAX_DX_CM = 3.2
GRAPH_DY_CM = 0.9
# A line of a box's text (\scriptsize) and the space between two boxes.
GRAPH_LINE_CM = 0.3
GRAPH_GAP_CM = 0.35
GRAPH_NODE_CM = 2.0
