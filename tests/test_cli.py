import json
import subprocess
import sys
import tomllib

import pytest

from derive.cli import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_OK, EXIT_UNDECIDED, main, parse_ns
from tests.conftest import ROOT, SEED, finding_toml, mutate, only


def _toml(data: dict) -> str:
    """A tiny TOML writer for the shapes claim files use."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return "'''" + v + "'''" if "\n" not in v and "'''" not in v else repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(a) for a in v) + "]"
        raise TypeError(v)

    lines = ["[document]"] + [f"{k} = {value(v)}" for k, v in data["document"].items()]
    for c in data["claims"]:
        lines.append("[[claims]]")
        lines += [f"{k} = {value(v)}" for k, v in c.items() if k != "cases"]
        for case in c.get("cases", []):
            lines.append("[[claims.cases]]")
            lines += [f"{k} = {value(v)}" for k, v in case.items()]
    return "\n".join(lines) + "\n"


def _file(tmp_path, data, name="doc.toml"):
    path = tmp_path / name
    path.write_text(_toml(data), encoding="utf-8")
    assert tomllib.loads(path.read_text()) == data
    return path


def test_one_line_per_claim_and_exit_0(capsys):
    assert main(["verify", str(SEED), "--n", "2..3"]) == EXIT_OK
    out = capsys.readouterr().out
    for claim in tomllib.loads(SEED.read_text())["claims"]:
        assert sum(line.split()[1:2] == [claim["id"]] for line in out.splitlines()) == 1
    assert "holds for n = 2..3" in out
    assert out.strip().endswith("all claims hold")


def test_failing_claim_exits_1_with_step_and_counterexample(tmp_path, capsys):
    data = only(mutate("eq3", "steps[4]", "2*(x[i] - mu)", "2*(x[i] + mu)"), "eq3")
    path = _file(tmp_path, data)
    assert main(["verify", str(path), "--n", "2..3"]) == EXIT_FAIL
    out = capsys.readouterr().out
    assert "FAIL eq3" in out
    assert "first failure at n = 2: step 3" in out
    assert "counterexample: n = 2, i = 1; at x_1 = " in out
    assert "lhs = " in out and "rhs = " in out


@pytest.mark.parametrize(
    "text, message",
    [
        ("[document\n", "TOML error"),
        (
            '[document]\nid = "t"\ntitle = "T"\n[[claims]]\nid = "c"\ntitle = "C"\n'
            'latex = "x"\nfor = "all i"\nlhs = "x[i]"\nrhs = "bogus"\n',
            "claim 'c', field 'rhs': unknown symbol 'bogus'",
        ),
        (
            '[document]\nid = "t"\ntitle = "T"\n[[claims]]\nid = "c"\ntitle = "C"\n'
            'latex = "x"\nfor = "all i"\nlhs = "x[i]"\nrhs = "x[i]"\nuses = ["zz"]\n',
            "claim 'c', field 'uses': unknown claim id 'zz'",
        ),
        (
            '[document]\nid = "t"\ntitle = "T"\n[[claims]]\nid = "c"\ntitle = "C"\n'
            'latex = "x"\nfor = "all i"\nsteps = ["x[i]"]\n',
            "claim 'c', field 'steps': a chain needs three or more",
        ),
        (
            '[document]\nid = "t"\ntitle = "T"\n[[claims]]\nid = "c"\ntitle = "C"\n'
            'latex = "x"\nfor = "all i"\nlhs = "x[i]"\nrhs = "x[i]"\nexpect = "fail"\n',
            "claim 'c', field 'expect': the only value is \"fails\" (a finding), got 'fail'",
        ),
    ],
)
def test_malformed_file_exits_2_with_a_message(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["verify", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}")
    assert message in err
    assert "Traceback" not in err


def test_undecidable_side_exits_2_naming_claim_and_field(tmp_path, capsys):
    path = tmp_path / "odd.toml"
    path.write_text(
        '[document]\nid = "t"\ntitle = "T"\n[[claims]]\nid = "c"\ntitle = "C"\n'
        'latex = "x"\nfor = "all i"\nlhs = "x[i]"\nrhs = "x[i]**x[i]"\n',
        encoding="utf-8",
    )
    assert main(["verify", str(path), "--n", "2"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"error: {path}: claim 'c', field 'rhs': an exponent must be a number" in err
    assert "Traceback" not in err


def test_report_for_a_users_file(tmp_path, capsys):
    data = only(mutate("eq3", "steps[4]", "2*(x[i] - mu)", "2*(x[i] + mu)"), "eq3")
    data["document"]["id"] = "mine"
    path = _file(tmp_path, data)
    out_dir = tmp_path / "out"
    assert main(["verify", str(path), "--n", "2", "--report", str(out_dir)]) == EXIT_FAIL
    tex = (out_dir / "mine.tex").read_text(encoding="utf-8")
    assert r"\label{claim:eq3}" in tex and "FAILS" in tex
    assert f"wrote {out_dir / 'mine.tex'}" in capsys.readouterr().out


def test_bad_n_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["verify", "--n", "8..2"])
    assert info.value.code == EXIT_BAD_INPUT
    assert "expected n as" in capsys.readouterr().err


def test_parse_ns():
    assert parse_ns("2..4,16") == (2, 3, 4, 16)
    assert parse_ns("3") == (3,)


def test_module_entry_point_exit_codes(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "derive", "verify", str(SEED), "--n", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == EXIT_OK, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [", encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "derive", "verify", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in res.stderr and "TOML error" in res.stderr


def _finding(tmp_path, slip_rhs="x[i]"):
    path = tmp_path / "squares.toml"
    path.write_text(finding_toml(slip_rhs), encoding="utf-8")
    return path


def _line(out: str, claim_id: str) -> str:
    (line,) = [x for x in out.splitlines() if x.split()[1:2] == [claim_id]]
    return line


def test_a_finding_that_fails_exits_0_and_shows_its_counterexample(tmp_path, capsys):
    assert main(["verify", str(_finding(tmp_path)), "--n", "1..2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert _line(out, "slip").startswith("  FAIL slip")
    assert _line(out, "slip").endswith("fails for n = 1..2; fails, as expected (finding)")
    assert "first failure at n = 1: the equation" in out
    assert "counterexample: n = 1, i = 1; at x_1 = " in out
    assert out.strip().endswith("all claims hold (1 finding fails, as expected)")


def test_a_finding_that_holds_exits_1_saying_so(tmp_path, capsys):
    path = _finding(tmp_path, slip_rhs="2*x[i]")
    assert main(["verify", str(path), "--n", "1..2"]) == EXIT_FAIL
    out = capsys.readouterr().out
    assert _line(out, "slip").endswith("; expected to fail (finding), but holds at every n checked")
    assert out.strip().splitlines()[-1] == "expected to fail, but holds: slip"


def test_a_finding_that_holds_beside_a_failing_claim(tmp_path, capsys):
    path = _finding(tmp_path, slip_rhs="2*x[i]")
    path.write_text(path.read_text().replace('rhs = "2*x[i]"', 'rhs = "3*x[i]"', 1))
    assert main(["verify", str(path), "--n", "1"]) == EXIT_FAIL
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "some claims FAIL; expected to fail, but holds: slip"


def test_an_undecided_finding_stays_undecided(tmp_path, capsys):
    path = _finding(tmp_path, slip_rhs="x[2]")  # no x[2] at n = 1: not applicable
    assert main(["verify", str(path), "--n", "1"]) == EXIT_UNDECIDED
    assert "UNDECIDED slip" in capsys.readouterr().out


def test_json_says_what_each_claim_is_expected_to_give(tmp_path, capsys):
    assert main(["verify", str(_finding(tmp_path)), "--n", "2", "--format", "json"]) == EXIT_OK
    (document,) = json.loads(capsys.readouterr().out)["documents"]
    claims = {c["id"]: c for c in document["claims"]}
    assert claims["slip"]["verdict"] == "FAIL"
    assert (claims["slip"]["expect"], claims["slip"]["as_expected"]) == ("fails", True)
    assert claims["slip"]["exit_code"] == EXIT_OK
    (step,) = claims["slip"]["per_n"][0]["steps"]
    assert step["counterexample"].startswith("n = 2, i = 1; at x_1 = ")
    assert (claims["grad"]["expect"], claims["grad"]["as_expected"]) == ("holds", True)
    path = _finding(tmp_path, slip_rhs="2*x[i]")
    assert main(["verify", str(path), "--n", "2", "--format", "json"]) == EXIT_FAIL
    out = json.loads(capsys.readouterr().out)
    slip = out["documents"][0]["claims"][1]
    assert (slip["verdict"], slip["as_expected"], slip["exit_code"]) == ("PASS", False, EXIT_FAIL)
    assert out["exit_code"] == EXIT_FAIL
