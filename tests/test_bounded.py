"""Claims checked in a child process: a slow or huge claim is UNDECIDED, the rest run."""

import dataclasses
import time

import pytest

from derive.bounded import (
    BUDGET_REASON,
    CLOSED_FORM,
    _Share,
    split_ns,
    verify_bounded,
    verify_many,
)
from derive.checking import VerifierError, verify_document
from derive.claims import from_dict
from derive.results import HOLDS, UNDECIDED

SLOW = "sum(x[k], k)**16*sum(g[k], k)**16*sum(x[k]*g[k], k)**16"
# Starting a child and checking the two quick claims at n = 64 takes about 1 s.
OVERHEAD_S = 10
# A limit for the quick claims when two or three children share the cores: 5x their
# time alone, while the slow claim takes minutes.
SHARED_LIMIT_S = 5


def _document(middle: str):
    claim = {"title": "t", "latex": "x"}
    return from_dict(
        {
            "document": {"id": "b", "title": "B"},
            "claims": [
                {**claim, "id": "before", "for": "all i", "lhs": "d(mu, x[i])", "rhs": "1/n"},
                {**claim, "id": "middle", "for": "all", "lhs": middle, "rhs": "0"},
                {**claim, "id": "after", "for": "all", "lhs": "sum(d(mu, x[k]), k)", "rhs": "1"},
            ],
        }
    )


def test_a_claim_past_the_time_limit_is_undecided_and_the_others_run():
    start = time.perf_counter()
    result = verify_bounded(_document(SLOW), (64,), time_limit=2, all_n=True)
    assert time.perf_counter() - start < 2 + OVERHEAD_S
    before, middle, after = result.claims
    assert before.status == HOLDS and after.status == HOLDS
    assert middle.status == UNDECIDED and "time limit" in middle.verdicts[0].reason
    assert result.exit_code == 3
    assert not middle.proved_all_n


@pytest.mark.parametrize("jobs", [2, 3])
def test_children_sharing_one_n_stop_and_restart_as_one_child_does(jobs):
    # Two or three children hand the claims of one document at one n among
    # them: the slow one is stopped and the others still hold, as with one child.
    one = verify_bounded(_document(SLOW), (64,), time_limit=SHARED_LIMIT_S, all_n=True)
    many = verify_bounded(_document(SLOW), (64,), time_limit=SHARED_LIMIT_S, all_n=True, jobs=jobs)
    assert _json([one]) == _json([many])
    assert [c.status for c in many.claims] == [HOLDS, UNDECIDED, HOLDS]
    assert many.limited


def test_a_claim_past_the_memory_limit_is_undecided():
    result = verify_bounded(_document(SLOW), (64,), time_limit=60, memory=64 << 20)
    before, middle, after = result.claims
    assert middle.status == UNDECIDED
    assert "memory" in middle.verdicts[0].reason or "stopped" in middle.verdicts[0].reason
    assert after.status == HOLDS


def test_bounded_and_in_process_verdicts_agree(seed_document):
    a = verify_bounded(seed_document, (1, 2, 3), all_n=True)
    b = verify_document(seed_document, (1, 2, 3), all_n=True)
    assert [c.status for c in a.claims] == [c.status for c in b.claims]
    assert [c.proved_all_n for c in a.claims] == [c.proved_all_n for c in b.claims]


def test_an_input_error_found_late_still_is_an_input_error(monkeypatch):
    import derive.checking as checking

    def broken(*args, **kwargs):
        raise VerifierError("claim 'x', field 'rhs': bad")
        yield

    monkeypatch.setattr(checking, "verify_claims", broken)
    import derive.bounded as bounded

    monkeypatch.setattr(bounded, "verify_claims", broken)
    with pytest.raises(VerifierError, match="field 'rhs'"):
        verify_bounded(_document("0"), (2,))


def _malformed(monkeypatch, bad_at):
    """Claims whose sides cannot be read at the n bad_at(claim id, n) says (the
    children are forked, so they see the patch)."""
    import derive.checking as checking

    real = checking.check_claim

    def check(claim, checker, **kw):
        if bad_at(claim.id, checker.model.n):
            raise VerifierError(f"claim {claim.id!r} at n = {checker.model.n}: bad")
        return real(claim, checker, **kw)

    monkeypatch.setattr(checking, "check_claim", check)
    claim = {"title": "t", "for": "all i", "lhs": "d(mu, x[i])", "rhs": "1/n"}
    claims = [{**claim, "id": f"c{k}"} for k in range(6)]
    return from_dict({"document": {"id": "b", "title": "B"}, "claims": claims})


@pytest.mark.parametrize(
    "bad_at",
    [
        lambda cid, n: True,  # every claim, at every n
        lambda cid, n: cid == "c1" and n == 4 or cid in ("c2", "c5"),  # c1 only at n = 4
    ],
)
def test_a_malformed_document_names_the_error_one_process_meets_first(monkeypatch, bad_at):
    doc = _malformed(monkeypatch, bad_at)
    with pytest.raises(VerifierError) as alone:
        verify_document(doc, (2, 3, 4))
    for jobs in (1, 2, 4):
        (result,) = verify_many([doc], (2, 3, 4), jobs=jobs)
        assert isinstance(result, VerifierError) and str(result) == str(alone.value), jobs
        (result,) = verify_many([doc], (4,), jobs=jobs)  # one n: the claims are shared out
        assert str(result) == str(verify_many([doc], (4,), jobs=1)[0]), jobs


# -- several documents at once, and the run's budget ---------------------------------------
def _json(results):
    from derive.present import result_json

    return [result_json(r) for r in results]


def test_jobs_and_splitting_by_n_give_the_results_of_one_process(seed_document):
    docs = [seed_document, _document("0"), _document("sum(x[k], k) - n*mu")]
    ns = (1, 2, 3, 4)
    one = verify_many(docs, ns, jobs=1, all_n=True, normal_forms=True)
    two = verify_many(docs, ns, jobs=2, all_n=True, normal_forms=True)
    split = [verify_many([d], ns, jobs=3, all_n=True, normal_forms=True)[0] for d in docs]
    assert _json(one) == _json(two) == _json(split)
    assert [[c.normal_forms for c in r.claims] for r in one] == [
        [c.normal_forms for c in r.claims] for r in split
    ]
    assert [v.n for v in split[0].claims[0].verdicts] == list(ns)
    assert not any(r.limited for r in one)


def test_jobs_share_the_claims_of_one_document_at_one_n(seed_document):
    # More jobs than groups of n: the claims are shared out, and nothing changes.
    one = verify_many([seed_document], (5,), jobs=1, all_n=True, normal_forms=True)
    two = verify_many(
        [seed_document], (5,), jobs=2, all_n=True, normal_forms=True, closed_forms=True
    )
    alone = verify_many([seed_document], (5,), jobs=1, closed_forms=True)
    assert _json(one) == _json(two)
    assert [c.normal_forms for c in one[0].claims] == [c.normal_forms for c in two[0].claims]
    assert [c.proofs for c in one[0].claims] == [c.proofs for c in two[0].claims]
    assert two[0].derivation == alone[0].derivation is not None


def test_a_share_hands_out_every_claim_once_then_the_closed_form(seed_document):
    share = _Share(0, seed_document, (3,), {}, closed_form=True)
    items = list(iter(share.take, None))
    assert items[-1] == CLOSED_FORM and share.exhausted
    assert sorted(items[:-1]) == list(range(len(seed_document.claims)))
    empty = _Share(0, dataclasses.replace(seed_document, claims=()), (3,), {}, closed_form=False)
    assert empty.take() is None and empty.exhausted


def test_split_ns_balances_the_cost():
    groups = split_ns(range(2, 17), 2)
    assert sorted(n for g in groups for n in g) == list(range(2, 17))
    costs = [sum(n * n for n in g) for g in groups]
    assert max(costs) - min(costs) <= 16 * 16
    assert split_ns((64,), 4) == [(64,)]


def test_past_the_run_budget_the_claims_left_are_undecided_and_nothing_is_lost():
    docs = [_document("0"), _document(SLOW), _document("0")]
    start = time.perf_counter()
    results = verify_many(docs, (64,), jobs=1, time_limit=60, total_time_limit=4)
    assert time.perf_counter() - start < 4 + OVERHEAD_S
    decided = [c for r in results for c in r.claims if c.status == HOLDS]
    left = [c for r in results for c in r.claims if c.status == UNDECIDED]
    assert len(decided) + len(left) == 9 and decided  # what was decided is kept
    assert results[1].claims[1] in left  # the slow claim
    assert all(c.verdicts[0].reason == BUDGET_REASON.format(4) for c in left)
    for r in results:
        assert r.limited == any(c.status == UNDECIDED for c in r.claims)
    assert results[1].exit_code == 3


def test_past_the_budget_children_sharing_one_n_keep_what_they_decided():
    start = time.perf_counter()
    (result,) = verify_many([_document(SLOW)], (64,), jobs=2, time_limit=60, total_time_limit=4)
    assert time.perf_counter() - start < 4 + OVERHEAD_S
    before, middle, after = result.claims
    assert middle.status == UNDECIDED
    assert middle.verdicts[0].reason == BUDGET_REASON.format(4)
    assert HOLDS in (before.status, after.status)  # the other child went on
    assert result.limited and result.exit_code == 3


def test_a_limited_result_is_not_remembered(tmp_path):
    from derive.cache import Cache

    path = tmp_path / "slow.toml"
    store = Cache(tmp_path / "cache")
    doc = dataclasses.replace(_document(SLOW), path=str(path), digest="d")
    (first,) = verify_many([doc], (64,), time_limit=2, cache=store)
    assert first.limited and first.claims[1].status == UNDECIDED
    assert list((tmp_path / "cache").glob("*.pickle")) == []
