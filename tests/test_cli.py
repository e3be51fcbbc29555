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


# -- many files at once, remembered --------------------------------------------------------
def _several(tmp_path):
    failing = only(mutate("eq3", "steps[4]", "2*(x[i] - mu)", "2*(x[i] + mu)"), "eq3")
    failing["document"]["id"] = "failing"
    finding = tmp_path / "finding.toml"
    finding.write_text(finding_toml(), encoding="utf-8")
    return [str(_file(tmp_path, failing, "failing.toml")), str(SEED), str(finding)]


@pytest.mark.parametrize("form", ["text", "json"])
def test_jobs_give_the_output_and_exit_code_of_one_process(tmp_path, capsys, form):
    files = _several(tmp_path)
    common = ["verify", *files, "--n", "1..3", "--all-n", "--format", form, "--no-cache"]
    one = main([*common, "--jobs", "1"]), capsys.readouterr()
    two = main([*common, "--jobs", "3"]), capsys.readouterr()
    assert one == two and one[0] == EXIT_FAIL
    if form == "json":
        assert [d["path"] for d in json.loads(one[1].out)["documents"]] == files


def _started(monkeypatch):
    """The documents (paths) whose claims a run checks in a child."""
    import derive.bounded as bounded

    started = []
    real = bounded._Run.start

    def start(self, part, item):
        started.append(part.document.path)
        real(self, part, item)

    monkeypatch.setattr(bounded._Run, "start", start)
    return started


def test_a_second_run_verifies_nothing_and_an_edit_only_its_file(tmp_path, capsys, monkeypatch):
    files = _several(tmp_path)
    common = ["verify", *files, "--n", "1..3", "--jobs", "2"]
    started = _started(monkeypatch)
    first = main(common), capsys.readouterr().out
    assert sorted(started) == sorted(files)
    started.clear()
    assert (main(common), capsys.readouterr().out) == first
    assert started == []
    edited = files[0]
    with open(edited, "a", encoding="utf-8") as f:
        f.write("\n# edited\n")
    assert (main(common), capsys.readouterr().out) == first
    assert set(started) == {edited}  # in two parts (by n): two jobs, one file
    started.clear()
    assert main([*common, "--no-cache"]) == first[0]
    assert sorted(started) == sorted(files)
    capsys.readouterr()


def test_past_the_total_time_limit_the_rest_is_undecided_with_exit_3(tmp_path, capsys):
    slow = "sum(x[k], k)**16*sum(g[k], k)**16*sum(x[k]*g[k], k)**16"
    data = {
        "document": {"id": "s", "title": "S"},
        "claims": [
            {"id": "quick", "title": "t", "latex": "x", "for": "all", "lhs": "0", "rhs": "0"},
            {"id": "slow", "title": "t", "latex": "x", "for": "all", "lhs": slow, "rhs": "0"},
        ],
    }
    path = _file(tmp_path, data)
    code = main(["verify", str(path), "--n", "64", "--total-time-limit", "3", "--no-cache"])
    out = capsys.readouterr().out
    assert code == EXIT_UNDECIDED
    assert "PASS quick" in out and "UNDECIDED slow" in out
    assert "run time budget: more than 3 s for the whole run" in out


def test_bad_jobs_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(SEED), "--jobs", "0"])
    assert exc.value.code == 2
    assert "expected a number of processes" in capsys.readouterr().err


def test_cache_says_where_it_is_and_clears(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "c"))
    assert main(["verify", str(SEED), "--n", "2"]) == EXIT_OK
    capsys.readouterr()
    assert main(["cache"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(tmp_path / "c")
    assert main(["cache", "--clear"]) == EXIT_OK
    assert "removed 2 entries" in capsys.readouterr().out
    assert list((tmp_path / "c").glob("*.pickle")) == []


def test_an_unsafe_cache_directory_is_not_used(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(folder))
    assert main(["verify", str(SEED), "--n", "2"]) == EXIT_OK
    assert "note: no cache" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_files_sharing_an_id_verify_together_but_cannot_share_a_report(tmp_path, capsys):
    # A course's files are copies of one template: same document id, other claims.
    good, bad = tmp_path / "a" / "squares.toml", tmp_path / "b" / "squares.toml"
    for path, rhs in ((good, "x[i]"), (bad, "2*x[i]")):  # "slip" is expected to fail
        path.parent.mkdir()
        path.write_text(finding_toml(rhs), encoding="utf-8")
    assert main(["verify", str(good), str(bad), "--n", "2", "--format", "json"]) == EXIT_FAIL
    out = json.loads(capsys.readouterr().out)
    assert [d["exit_code"] for d in out["documents"]] == [EXIT_OK, EXIT_FAIL]
    args = ["verify", str(good), str(bad), "--n", "2", "--report", str(tmp_path / "r")]
    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "field 'document.id'" in err and "is also the id of" in err and str(bad) in err


def test_a_file_that_cannot_be_read_does_not_hide_the_others(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[document\n", encoding="utf-8")
    wrong = tmp_path / "wrong.toml"  # reads, but a side names an unknown symbol
    wrong.write_text(finding_toml("x[i] + foo"), encoding="utf-8")
    good = _finding(tmp_path)
    files = [str(bad), str(good), str(wrong)]
    assert main(["verify", *files, "--n", "2"]) == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert [line.split(":")[1].strip() for line in err.splitlines()] == [str(bad), str(wrong)]
    assert all(line.startswith("error: ") for line in err.splitlines())
    assert "PASS grad" in out and "the others: " in out.splitlines()[-1]
    assert main(["verify", *files, "--n", "2", "--format", "json"]) == EXIT_BAD_INPUT
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == EXIT_BAD_INPUT
    assert [d["exit_code"] for d in out["documents"]] == [EXIT_BAD_INPUT, EXIT_OK, EXIT_BAD_INPUT]
    assert out["documents"][1]["id"] == "squares" and "error" not in out["documents"][1]
    assert "field 'rhs'" in out["documents"][2]["error"]
    # and --report writes nothing while any file is bad
    out_dir = tmp_path / "reports"
    assert main(["verify", *files, "--n", "2", "--report", str(out_dir)]) == EXIT_BAD_INPUT
    assert not out_dir.exists() or not any(out_dir.iterdir())
    assert len(capsys.readouterr().err.splitlines()) == 2  # one line per bad file, no more
