"""The layered layout of the picture of the argument."""

from derive.argument import layers, layout


def test_everything_a_claim_uses_lies_to_its_left(seed_document):
    layer = layers(seed_document.claims)
    for c in seed_document.claims:
        assert all(layer[u] < layer[c.id] for u in c.uses), c.id
    assert layer["route-c"] > layer["closed-form"] > layer["lhs-plus-rhs"]


def test_layout_is_deterministic_and_rows_are_distinct(seed_document):
    placed = layout(seed_document.claims)
    assert placed == layout(seed_document.claims)
    spots = {(p.layer, p.row) for p in placed}
    assert len(spots) == len(placed) == len(seed_document.claims)
