"""benchmarks/timing.py: the interleaved timer and the shared helpers."""

from __future__ import annotations

import time

import pytest

from tests.conftest import benchmark


@pytest.fixture(scope="module")
def timing():
    return benchmark("timing")


def test_interleaved_gives_short_calls_more_rounds(timing):
    calls = {"a": 0, "b": 0}

    def count(name):
        def fn():
            calls[name] += 1

        return fn

    timed = (("a", count("a")), ("b", count("b")))
    best, median, rounds = timing.interleaved(timed, 3)
    assert rounds == 3 and calls == {"a": 4, "b": 4}  # one warm-up call each
    assert set(best) == set(median) == {"a", "b"}
    assert all(best[k] <= median[k] for k in best)
    calls.update(a=0, b=0)
    _, _, rounds = timing.interleaved(timed, 3, budget_s=10.0, max_rounds=50)
    assert rounds == 50 and calls == {"a": 51, "b": 51}  # capped at max_rounds

    def slow():
        time.sleep(0.02)

    _, _, rounds = timing.interleaved((("slow", slow),), 2, budget_s=0.01)
    assert rounds == 2  # never fewer than repeats


def test_summary_of_repeats(timing):
    assert timing.summary([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "all": [3.0, 1.0, 2.0]}


def test_traced_peak_counts_what_the_call_allocates(timing):
    import numpy as np

    peak, result = timing.traced_peak(lambda: np.ones(1 << 16))
    assert result.shape == (1 << 16,)
    assert result.nbytes <= peak < 2 * result.nbytes  # the returned array is counted
