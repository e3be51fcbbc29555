"""Shared helpers: the shipped documents and mutated copies of them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from derive.claims import from_dict

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ROOT / "derive" / "documents"
SEED = DOCUMENTS / "bn_backward.toml"


def seed_data() -> dict:
    return tomllib.loads(SEED.read_text(encoding="utf-8"))


def mutate(claim_id: str, field: str, old: str, new: str, *, case: int | None = None) -> dict:
    """The seed document with one side of one claim edited (old must occur in it)."""
    data = seed_data()
    (claim,) = [c for c in data["claims"] if c["id"] == claim_id]
    target = claim if case is None else claim["cases"][case - 1]
    if field.startswith("steps["):
        k = int(field[6:-1]) - 1
        assert old in target["steps"][k], f"{old!r} not in {target['steps'][k]!r}"
        target["steps"][k] = target["steps"][k].replace(old, new, 1)
    else:
        assert old in target[field], f"{old!r} not in {target[field]!r}"
        target[field] = target[field].replace(old, new, 1)
    return data


def only(data: dict, *claim_ids: str) -> dict:
    """Keep only the named claims (and drop references to the others)."""
    data["claims"] = [c for c in data["claims"] if c["id"] in claim_ids]
    if data["document"].get("closed_form") not in claim_ids:
        data["document"].pop("closed_form", None)
    for c in data["claims"]:
        c["uses"] = [u for u in c.get("uses", []) if u in claim_ids]
    return data


@pytest.fixture(scope="session")
def seed_document():
    return from_dict(seed_data(), SEED)
