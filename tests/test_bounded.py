"""Claims checked in a child process: a slow or huge claim is UNDECIDED, the rest run."""

import time

import pytest

from derive.bounded import verify_bounded
from derive.claims import from_dict
from derive.results import HOLDS, UNDECIDED
from derive.verify import VerifierError, verify_document

SLOW = "sum(x[k], k)**16*sum(g[k], k)**16*sum(x[k]*g[k], k)**16"
# Starting a child and checking the two quick claims at n = 64 takes about 1 s.
OVERHEAD_S = 10


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
    import derive.verify as verify

    def broken(*args, **kwargs):
        raise VerifierError("claim 'x', field 'rhs': bad")
        yield

    monkeypatch.setattr(verify, "verify_claims", broken)
    import derive.bounded as bounded

    monkeypatch.setattr(bounded, "verify_claims", broken)
    with pytest.raises(VerifierError, match="field 'rhs'"):
        verify_bounded(_document("0"), (2,))
