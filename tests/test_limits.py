"""The limits still mean what their comments say about the shipped files."""

from __future__ import annotations

import re
import tomllib

from derive import limits
from tests.conftest import DOCUMENTS


def test_shipped_files_are_far_under_the_size_limit():
    for path in DOCUMENTS.glob("*.toml"):
        assert path.stat().st_size * 50 < limits.MAX_CLAIM_FILE_BYTES


def test_shipped_formulas_nest_far_less_than_the_limit():
    deepest = 0
    for path in DOCUMENTS.glob("*.toml"):
        for claim in tomllib.loads(path.read_text(encoding="utf-8"))["claims"]:
            depth = 0
            for brace in re.sub(r"\\[{}]", "", claim["latex"]):
                depth += {"{": 1, "}": -1}.get(brace, 0)
                deepest = max(deepest, depth)
    assert 0 < deepest * 10 < limits.MAX_LATEX_GROUP_DEPTH < 255  # TeX's grouping levels


def test_limits_are_positive():
    assert limits.LATEXMK_TIMEOUT_S > 0 and limits.PDF_SOURCE_DATE_EPOCH >= 0
