"""derive/results.py: the worst verdict, the exit code of many, and n ranges as text."""

from __future__ import annotations

import pytest

from derive.results import (
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_UNDECIDED,
    FAILS,
    HOLDS,
    NOT_APPLICABLE,
    UNDECIDED,
    WORDS,
    combine_exit_codes,
    format_ns,
    worst,
)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({HOLDS}, HOLDS),
        ({HOLDS, UNDECIDED}, UNDECIDED),
        ({HOLDS, UNDECIDED, FAILS}, FAILS),
        ({NOT_APPLICABLE, HOLDS}, HOLDS),
        ({NOT_APPLICABLE}, UNDECIDED),  # nothing was checked: never "holds"
    ],
)
def test_worst_puts_fails_before_undecided_before_holds(statuses, expected):
    assert worst(statuses) == expected


def test_exit_codes_combine_by_severity():
    assert combine_exit_codes([]) == EXIT_OK
    assert combine_exit_codes([EXIT_OK, EXIT_UNDECIDED]) == EXIT_UNDECIDED
    assert combine_exit_codes([EXIT_UNDECIDED, EXIT_FAIL]) == EXIT_FAIL
    assert combine_exit_codes([EXIT_FAIL, EXIT_BAD_INPUT, EXIT_OK]) == EXIT_BAD_INPUT


def test_format_ns():
    assert format_ns([8, 2, 3, 4]) == "2..4, 8"
    assert format_ns([5]) == "5"
    assert format_ns([]) == "none"


def test_every_verdict_has_one_word():
    assert WORDS == {HOLDS: "PASS", FAILS: "FAIL", UNDECIDED: "UNDECIDED", NOT_APPLICABLE: "N/A"}
