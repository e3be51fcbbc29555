"""The Python API (derive.api, re-exported by derive): tested as the CLI is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import derive
from derive.cli import main
from derive.results import EXIT_FAIL, EXIT_OK, EXIT_UNDECIDED
from tests.conftest import SEED

NS = range(1, 4)
# Exactly the quotient of the sum of squares by n at each position: a claim that holds.
_GOOD = {"id": "dmu", "title": "mean", "for": "all i", "lhs": "d(mu, x[i])", "rhs": "1/n"}
# The quick claim takes about 0.3 s at n = 64, the slow one minutes: a limit between
# them with room for a loaded machine.
TIME_LIMIT_S = 10
_WRONG = {**_GOOD, "id": "wrong", "title": "twice the mean's slope", "rhs": "2/n"}


def _doc(*claims, **fields):
    return derive.document(id="api", title="API", claims=list(claims), **fields)


def test_the_names_the_issue_fixes_are_the_package_s():
    for name in ("load", "loads", "verify", "assert_holds", "document"):
        assert callable(getattr(derive, name))
    assert set(derive.__all__) <= set(dir(derive))
    with pytest.raises(AttributeError):
        derive.no_such_name  # noqa: B018


def test_importing_a_generated_module_does_not_import_sympy():
    code = "import sys, derive.generated.batchnorm; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_load_loads_and_document_read_the_same_claims():
    text = SEED.read_text(encoding="utf-8")
    a, b = derive.load(SEED), derive.loads(text, path=str(SEED))
    assert a.claims == b.claims and a.spec == b.spec and a.digest == b.digest
    c = _doc(_GOOD, model={"vectors": ["x"], "nodes": ["mu = sum(x[k], k)/n"]})
    assert [k.id for k in c.claims] == ["dmu"]


def test_bad_input_raises_an_error_naming_file_claim_and_field():
    with pytest.raises(derive.ClaimFileError, match=r"notes\.toml.*TOML error"):
        derive.loads("[document\n", path="notes.toml")
    with pytest.raises(derive.ClaimFileError, match=r"claim 'dmu'.*'rhs'|rhs"):
        _doc({**_GOOD, "rhs": "__import__('os')"})
    with pytest.raises(TypeError):
        derive.loads(b"[document]")
    with pytest.raises(TypeError):
        derive.verify(42)
    with pytest.raises(derive.ClaimFileError, match="cannot read"):
        derive.verify("no/such/file.toml")


@pytest.mark.parametrize(
    "options",
    [
        {"n": 0},
        {"n": 65},
        {"n": "2..x"},
        {"n": True},
        {"n": []},
        {"n": [1.5]},
        {"time_limit": 0},
        {"time_limit": float("inf")},
        {"total_time_limit": 1e300},
        {"jobs": 0},
        {"jobs": 10**9},  # would build a part per job before forking any
    ],
)
def test_bad_options_are_value_errors(options):
    with pytest.raises(ValueError):
        derive.verify(_doc(_GOOD), **options)


def test_a_result_carries_what_the_cli_s_json_carries(tmp_path, capsys):
    result = derive.verify(SEED, n=NS, all_n=True)
    assert result.holds and result.exit_code == EXIT_OK
    assert [c.id for c in result.claims] == [c.id for c in derive.load(SEED).claims]
    assert {c.verdict for c in result.claims} == {"PASS"}
    assert all(c.proofs and [v.n for v in c.per_n] == list(NS) for c in result.claims)
    code = main(["verify", str(SEED), "--n", "1..3", "--all-n", "--format", "json", "--no-cache"])
    printed = json.loads(capsys.readouterr().out)
    assert code == result.exit_code
    assert printed["documents"] == [result.json()]
    main(["verify", str(SEED), "--n", "1..3", "--all-n", "--no-cache"])
    assert str(result) in capsys.readouterr().out


def test_a_wrong_claim_fails_with_its_step_and_a_counterexample_that_separates():
    result = derive.verify(_doc(_GOOD, _WRONG), n=NS)
    good, wrong = result.claims
    assert good.verdict == "PASS" and wrong.verdict == "FAIL"
    assert result.exit_code == EXIT_FAIL and not result.holds
    cx = wrong.counterexample
    assert cx is not None and float(cx.lhs) != float(cx.rhs)
    assert any("first failure at n = 1: the equation" in line for line in wrong.details)
    with pytest.raises(AssertionError) as info:
        derive.assert_holds(_doc(_GOOD, _WRONG), n=NS)
    message = str(info.value)
    assert "FAIL wrong" in message and "counterexample" in message and "dmu" not in message


def test_assert_holds_passes_a_finding_that_fails_as_expected():
    finding = {**_WRONG, "expect": "fails", "note": "wrong on purpose"}
    result = derive.assert_holds(_doc(_GOOD, finding), n=NS)
    assert result.claim("wrong").verdict == "FAIL" and result.claim("wrong").as_expected


def test_a_claim_that_holds_at_each_n_but_is_not_proved_for_all_n_is_undecided():
    # n(n - 1)(n - 2) = 0 at n = 1, 2 only.
    claim = {"id": "small", "title": "t", "for": "all", "lhs": "n*(n - 1)*(n - 2)", "rhs": "0"}
    result = derive.verify(_doc(claim), n=[1, 2], all_n=True)
    (c,) = result.claims
    assert c.result.status == "holds" and c.verdict == "UNDECIDED"
    assert result.exit_code == EXIT_UNDECIDED
    assert any("all n" in line for line in c.details)
    assert result.json()["claims"][0]["verdict"] == "UNDECIDED"  # as the text says
    with pytest.raises(AssertionError, match="UNDECIDED small"):
        derive.assert_holds(_doc(claim), n=[1, 2], all_n=True)


def test_a_slow_claim_is_undecided_within_the_time_limit():
    slow = "sum(x[k], k)**16*sum(x[k]**2, k)**16*sum(x[k]**3, k)**16"
    claim = {"id": "slow", "title": "t", "for": "all", "lhs": slow, "rhs": "0"}
    result = derive.verify(_doc(_GOOD, claim), n=64, time_limit=TIME_LIMIT_S)
    assert result.claim("dmu").verdict == "PASS"
    slow_claim = result.claim("slow")
    assert slow_claim.verdict == "UNDECIDED"
    assert any("time limit" in line for line in slow_claim.details)


def test_jupyter_shows_the_claims_as_mathematics_and_escapes_the_file_s_text():
    hostile = {**_WRONG, "title": "<script>alert(1)</script> & $x$"}
    result = derive.verify(_doc(_GOOD, hostile, citation="c"), n=[2])
    page = result._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'style="color:red' in page and 'style="color:green' in page
    assert r"$\frac{\partial \mu}{\partial x_{i}} = \frac{1}{n}$" in page
    tex = result._repr_latex_()
    assert tex.startswith("$$\\begin{array}") and tex.endswith("\\end{array}$$")
    assert "\\color{red}{\\textbf{FAIL}}" in tex and "\\texttt{wrong}" in tex


def test_a_file_s_latex_cannot_add_rows_or_verdicts_to_what_jupyter_shows():
    # The statement shown is derive's print of the sides, never the file's latex.
    forged = r"x \\ \mathtt{slip} & \textbf{PASS} & y"
    result = derive.verify(_doc({**_WRONG, "latex": forged}), n=[2])
    (c,) = result.claims
    assert (
        c.verdict == "FAIL" and c.statement == r"\frac{\partial \mu}{\partial x_{i}} = \frac{2}{n}"
    )
    for shown in (result._repr_latex_(), result._repr_html_()):
        assert "PASS" not in shown and "mathtt{slip}" not in shown


def test_only_the_statement_is_typeset_in_html():
    result = derive.verify(_doc({**_GOOD, "title": r"costs $\href{javascript:x}{5}$"}), n=[2])
    page = result._repr_html_()
    assert page.startswith('<div class="tex2jax_ignore mathjax_ignore">')
    assert page.count('class="tex2jax_process mathjax_process"') == 1
