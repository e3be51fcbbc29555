"""The declared-model documents: LayerNorm, RMSNorm, GroupNorm, unbiased batch
norm and the batch-norm paper's own equations.

Each shipped document loads, every claim holds for n = 1..6 (or is n/a where it
must be) and is proved for all n; and for each document a set of mutants (a
dropped term, 1/n <-> 1/(n - 1), a wrong power, a missing projection, ...) is
rejected: the mutated claim FAILS with a counterexample and is not proved.
"""

from __future__ import annotations

import tomllib

import pytest

from derive.checking import verify_document
from derive.claims import from_dict, load
from derive.results import EXIT_OK, HOLDS, NOT_APPLICABLE
from tests.conftest import DOCUMENTS, assert_mutant_rejected, one_claim_mutant

NS = tuple(range(1, 7))
MUTANT_NS = (2, 3, 4)

# Claims that are not applicable at n = 1 (the unbiased variance divides by
# n - 1; a case "i != j" is empty there, but its "i = j" case is still checked).
# Every other verdict is HOLDS.
NA_AT_1 = {
    "layernorm": set(),
    "rmsnorm": set(),
    "groupnorm": set(),
    "batchnorm_unbiased": "all",
    "bn_paper": set(),
    "batchnorm_eval": set(),
}
NAMES = tuple(NA_AT_1)


def path_of(name: str):
    return DOCUMENTS / f"{name}.toml"


def data_of(name: str) -> dict:
    return tomllib.loads(path_of(name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=NAMES)
def verified(request):
    name = request.param
    document = load(path_of(name))
    return name, document, verify_document(document, NS, all_n=True)


@pytest.mark.parametrize("name", NAMES)
def test_document_loads_with_its_declared_model(name):
    document = load(path_of(name))
    assert document.id == name
    assert document.model == "declared"
    assert document.spec is not None and document.spec.nodes
    assert 5 <= len(document.claims) <= 12
    # The closed form people implement comes last.
    assert document.claims[-1].id.endswith("closed-form")


def test_every_claim_holds_and_is_proved_for_all_n(verified):
    name, _, result = verified
    na = NA_AT_1[name]
    for c in result.claims:
        expected = {
            v.n: NOT_APPLICABLE if v.n == 1 and (na == "all" or c.claim.id in na) else HOLDS
            for v in c.verdicts
        }
        assert {v.n: v.status for v in c.verdicts} == expected, (name, c.claim.id)
        assert c.proved_all_n, (name, c.claim.id, [p.reason for p in c.proofs])
    assert result.exit_code == EXIT_OK


def test_unbiased_batchnorm_is_not_applicable_at_n_1():
    result = verify_document(load(path_of("batchnorm_unbiased")), (1,))
    for c in result.claims:
        assert [v.status for v in c.verdicts] == [NOT_APPLICABLE], c.claim.id


# document, claim, field, old, new, case (1-based, cases only).  Every mutant
# is a false claim a person could write.
MUTANTS = [
    # LayerNorm
    ("layernorm", "dx-closed-form", "rhs", " - sum(gamma[j]*dy[j], j)", "", None),
    ("layernorm", "jacobian-delta", "rhs", "- 1/n", "- 1/(n - 1)", None),
    ("layernorm", "jacobian", "rhs", "xhat[i]**2", "xhat[i]**3", 1),
    ("layernorm", "jacobian", "rhs", "/(n*sigma)", "/(n*sigma**2)", 2),
    ("layernorm", "dx-closed-form", "rhs", " - xhat[i]*sum(xhat[j]*gamma[j]*dy[j], j)", "", None),
    ("layernorm", "dgamma", "rhs", "dy[i]*xhat[i]", "dy[i]*x[i]", None),
    ("layernorm", "dx-chain", "steps[3]", "- 1/n ", "", None),
    # RMSNorm
    ("rmsnorm", "jacobian-delta", "rhs", "delta(i, j) - ", "-", None),
    ("rmsnorm", "dx-closed-form", "rhs", "(n*r**2)", "((n - 1)*r**2)", None),
    ("rmsnorm", "dr-dx", "steps[2]", "2*x[i]/n", "2*x[i]/(n - 1)", None),
    ("rmsnorm", "jacobian", "rhs", "r**3", "r**2", 2),
    ("rmsnorm", "dx-closed-form", "rhs", " - x[i]*sum(gamma[j]*dy[j]*x[j], j)/(n*r**2)", "", None),
    # GroupNorm
    ("groupnorm", "dx-closed-form", "rhs", " - sum(gamma[j]*dy[j], j)", "", None),
    ("groupnorm", "jacobian", "rhs", "/(n*sigma)", "/((n - 1)*sigma)", 1),
    ("groupnorm", "instancenorm-dx", "rhs", "/(n*sigma)", "/((n - 1)*sigma)", None),
    ("groupnorm", "jacobian", "rhs", "/(n*sigma)", "/(n*sigma**2)", 2),
    ("groupnorm", "dx-closed-form", "rhs", " - xhat[i]*sum(xhat[j]*gamma[j]*dy[j], j)", "", None),
    ("groupnorm", "instancenorm-dgamma", "rhs", "dy[k]*xhat[k]", "dy[k]", None),
    # Unbiased batch norm
    ("batchnorm_unbiased", "dx-closed-form", "rhs", " - sum(dy[j], j)", "", None),
    ("batchnorm_unbiased", "dx-closed-form", "rhs", "n/(n - 1)*", "", None),  # the biased form
    ("batchnorm_unbiased", "jacobian", "rhs", "xhat[i]**2/(n - 1)", "xhat[i]**2/n", 1),
    ("batchnorm_unbiased", "dsigma-dx", "steps[4]", "((n - 1)*sigma)", "(n*sigma)", None),
    ("batchnorm_unbiased", "jacobian", "rhs", ")/sigma", ")/sigma**3", 2),
    ("batchnorm_unbiased", "dx-closed-form", "rhs", " - n/(n - 1)*xhat[i]*", " - 0*", None),
    # The batch-norm paper
    ("bn_paper", "dl-dx", "rhs", " + D(L, var)*2*(x[i] - mu)/m", "", None),
    ("bn_paper", "dl-dx", "rhs", "D(L, mu)/m", "D(L, mu)/(m - 1)", None),
    ("bn_paper", "dl-dx-closed-form", "rhs", "(m*sqrt(", "((m - 1)*sqrt(", None),
    ("bn_paper", "dl-dvar", "rhs", "**(-3/2)", "**(-1/2)", None),
    ("bn_paper", "dl-dx-closed-form", "rhs", " - xhat[i]*sum(xhat[j]*dy[j], j)", "", None),
    ("bn_paper", "dl-dxhat", "rhs", "dy[i]*gamma", "dy[i]", None),
    # Eval-mode batch norm: the training-mode terms where the statistics are constants
    ("batchnorm_eval", "dx-closed-form", "rhs", "*dy[i]", "*(dy[i] - sum(dy[j], j)/n)", None),
    ("batchnorm_eval", "jacobian", "rhs", "delta(i, j)/sigma", "(delta(i, j) - 1/n)/sigma", None),
    ("batchnorm_eval", "dgamma", "steps[3]", "*(1/sigma)", "", None),
    ("batchnorm_eval", "dxhat", "rhs", "gamma*dy[i]", "dy[i]", None),
    ("batchnorm_eval", "forward", "rhs", " + beta", " - beta", None),
    (
        "batchnorm_eval",
        "dx-closed-form",
        "rhs",
        "gamma*(1/sigma)",
        "gamma*(1/sigma)*n/(n - 1)",
        None,
    ),
    ("batchnorm_eval", "dgamma", "steps[2]", "dy[j]*xhat[j]", "dy[j]*xhat[j]**2", None),
]


@pytest.mark.parametrize(
    "name, claim_id, field, old, new, case",
    MUTANTS,
    ids=[f"{m[0]}:{m[1]}:{m[3].strip()[:24]}" for m in MUTANTS],
)
def test_mutant_is_rejected(name, claim_id, field, old, new, case):
    data = one_claim_mutant(path_of(name), claim_id, field, old, new, case)
    document = from_dict(data, path_of(name))
    assert_mutant_rejected(verify_document(document, MUTANT_NS, all_n=True))


def test_every_document_has_the_four_kinds_of_mutant():
    # dropped term, 1/n <-> 1/(n - 1), wrong power, missing projection
    for name in NAMES:
        edits = [(old, new) for doc, _, _, old, new, _ in MUTANTS if doc == name]
        assert len(edits) >= 4, name
        assert any("n - 1" in old + new or "m - 1" in old + new for old, new in edits), name
        assert any("**" in old + new for old, new in edits), name
        assert any("xhat" in old or "x[i]*sum" in old for old, new in edits), name
