"""Step 1: every emitted claim, and every claim it uses, verified first (or read
from the verifier's results)."""

from __future__ import annotations

import dataclasses

from ..checking import verify_document
from ..claims import Document
from .common import VERIFY_NS, CodegenError


# -- verification before emitting -------------------------------------------------------
def _closure(document: Document, ids) -> list[str]:
    todo, seen = list(ids), set()
    while todo:
        cid = todo.pop()
        if cid not in seen:
            seen.add(cid)
            todo.extend(document.claim(cid).uses)
    return [c.id for c in document.claims if c.id in seen]


def verify_emitted(document: Document, ids, ns=VERIFY_NS, result=None) -> tuple[str, ...]:
    """Check that the claims in ids and every claim they use hold; raise CodegenError
    on a failure.  ``result``: the document's results.DocumentResult, when the
    verifier already ran on it at every n in ns; read instead of verifying again."""
    keep = _closure(document, ids)
    if result is not None and result.document == document and set(ns) <= set(result.ns):
        by_id = {c.claim.id: c for c in result.claims}
        claims = [by_id[c] for c in keep if c in by_id]
    else:
        sub = dataclasses.replace(document, claims=tuple(document.claim(c) for c in keep))
        claims = verify_document(sub, ns).claims
    checked = {c.claim.id for c in claims}
    bad = [c.claim.id for c in claims if not c.holds] + [c for c in keep if c not in checked]
    if bad:
        raise CodegenError(
            f"{document.path}: refusing to emit code, claim(s) {', '.join(bad)} do not hold"
        )
    return tuple(keep)
