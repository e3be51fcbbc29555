import pytest

from derive.claims import ClaimFileError, from_dict, load, side_fields
from tests.conftest import SEED, finding_toml, plain_toml, seed_data

# Every claim of shared/seed/claims.md, in the post's order (see the ids' notes
# in the claim file for which restored line each one encodes).
SEED_CLAIMS = [
    "eq1-literal",  # (1) as printed
    "eq1-corrected",  # (1) with the chain rule proper
    "eq1-upstream",  # dL/dx = dL/dxhat . dxhat/dx
    "eq2",
    "eq2-summed",
    "eq3",  # the chain of four
    "eq3-mu-free",  # "holding mu fixed or not gives the same result"
    "eq3-summed",
    "eq4",
    "eq4-summed",
    "dsigma-dmu",  # "dsigma/dmu evaluates to 0"
    "eq5",
    "eq5-summed",
    "eq6",
    "eq6-summed",
    "route-a",  # "plug (2)-(6) back into (1) ... simplify"
    "fool-expansion",  # xhat written in x alone
    "eq7",
    "dsigma-dx-fool",  # the ten-equality chain
    "jacobian",  # both quotient-rule cases
    "lhs-group",
    "rhs-group",
    "lhs-plus-rhs",
    "closed-form-grouping",  # LHS + RHS = (F)
    "closed-form",  # (F) against the direct derivative
    "route-c-dp",
    "route-c-dx",
    "route-c",
]


def test_seed_encodes_every_claim_of_the_post(seed_document):
    assert [c.id for c in seed_document.claims] == SEED_CLAIMS


def test_claim_kinds(seed_document):
    kinds = {c.id: c.kind for c in seed_document.claims}
    assert kinds["eq6"] == "equation"
    assert kinds["eq3"] == "chain"
    assert kinds["jacobian"] == "cases"
    assert seed_document.claim("dsigma-dx-fool").cases[0].steps == 10
    assert seed_document.claim("eq3").cases[0].steps == 4


def test_every_claim_has_document_latex_and_known_uses(seed_document):
    ids = {c.id for c in seed_document.claims}
    for c in seed_document.claims:
        assert c.latex.strip(), c.id
        assert set(c.uses) <= ids


def test_side_field_names(seed_document):
    assert side_fields(seed_document.claim("eq3"), 1)[0] == "steps[1]"
    assert side_fields(seed_document.claim("jacobian"), 2) == ["cases[2].lhs", "cases[2].rhs"]


def _write(tmp_path, text):
    p = tmp_path / "doc.toml"
    p.write_text(text, encoding="utf-8")
    return p


HEADER = '[document]\nid = "t"\ntitle = "T"\n\n'


def _claim(body):
    return HEADER + '[[claims]]\nid = "c1"\ntitle = "C"\nlatex = "x"\n' + body


@pytest.mark.parametrize(
    "body, field, message",
    [
        ('for = "all i"\nlhs = "d(mu, x[i])"\nrhs = "1/nn"\n', "rhs", "unknown symbol 'nn'"),
        ('for = "all i"\nsteps = ["d(mu, x[i])"]\n', "steps", "three or more"),
        (
            'for = "all i"\nsteps = ["d(mu, x[i])", "1/n"]\n',
            "steps",
            "write a single equality as lhs/rhs",
        ),
        ('for = "all i"\nlhs = "1"\nrhs = "1"\nuses = ["nope"]\n', "uses", "unknown claim id"),
        ('for = "every i"\nlhs = "1"\nrhs = "1"\n', "for", "expected one of"),
        ('for = "all i"\nlhs = "1"\n', "rhs", "missing"),
        ('for = "all i"\nlhs = "1"\nrhs = "1"\ncolour = "red"\n', "colour", "unknown field"),
        ('for = "all i"\nlhs = "g[j]"\nrhs = "1"\n', "lhs", "not bound by a sum"),
        (
            'for = "all"\nlhs = "1"\nrhs = "1"\nexpect = "holds"\n',
            "expect",
            'only value is "fails"',
        ),
        ('for = "all"\nlhs = "1"\nrhs = "1"\nexpect = "FAILS"\n', "expect", "got 'FAILS'"),
        ('for = "all"\nlhs = "1"\nrhs = "1"\nexpect = true\n', "expect", "got True"),
        (
            '[[claims.cases]]\nfor = "i = j"\nlhs = "1"\nrhs = "1"\n',
            "cases",
            "two or more",
        ),
        (
            '[[claims.cases]]\nfor = "i = j"\nlhs = "1"\nrhs = "1"\n'
            '[[claims.cases]]\nfor = "i != j"\nlhs = "1"\nrhs = "foo"\n',
            "cases[2].rhs",
            "unknown symbol 'foo'",
        ),
    ],
)
def test_malformed_claims_name_file_claim_and_field(tmp_path, body, field, message):
    path = _write(tmp_path, _claim(body))
    with pytest.raises(ClaimFileError) as info:
        load(path)
    err = info.value
    assert err.path == str(path)
    assert err.claim == "c1"
    assert err.field == field
    assert message in str(err)
    assert str(path) in str(err) and "'c1'" in str(err)


def test_toml_syntax_error_names_the_file(tmp_path):
    path = _write(tmp_path, HEADER + "[[claims]\nid = 'x'\n")
    with pytest.raises(ClaimFileError, match="TOML error") as info:
        load(path)
    assert info.value.path == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(ClaimFileError, match="cannot read"):
        load(tmp_path / "absent.toml")


def test_duplicate_ids_and_document_fields():
    data = seed_data()
    data["claims"].append(dict(data["claims"][0]))
    with pytest.raises(ClaimFileError, match="duplicate claim id"):
        from_dict(data, SEED)
    data = seed_data()
    data["document"]["model"] = "conv"
    with pytest.raises(ClaimFileError, match="document.model"):
        from_dict(data, SEED)
    data = seed_data()
    del data["document"]
    with pytest.raises(ClaimFileError, match="missing \\[document\\]"):
        from_dict(data, SEED)


def test_expect_fails_marks_a_finding(tmp_path):
    document = load(_write(tmp_path, finding_toml()))
    grad, slip = document.claims
    assert (grad.expect, grad.finding) == ("holds", False)
    assert (slip.expect, slip.finding) == ("fails", True)


def _uses_the_slip(text: str) -> str:
    """finding_toml with a third claim that uses the finding."""
    return text + (
        '\n[[claims]]\nid = "on-slip"\ntitle = "T"\nlatex = "x"\nfor = "all i"\n'
        'lhs = "D(L, x[i])"\nrhs = "2*x[i]"\nuses = ["grad", "slip"]\n'
    )


@pytest.mark.parametrize(
    "text, claim, field",
    [
        (_uses_the_slip(finding_toml()), "on-slip", "uses"),
        (
            finding_toml().replace('title = "Squares"', 'title = "S"\nclosed_form = "slip"'),
            None,
            "document.closed_form",
        ),
        (
            finding_toml() + '\n[emit]\nmodule = "squares"\nlayout = "trailing"\nroot = "L"\n'
            'inverse = "inv"\n[[emit.formulas]]\nname = "_dx"\nclaim = "slip"\n'
            'function = "f"\nform = "value"\ndoc = "d"\n',
            None,
            "emit.formulas[1].claim",
        ),
    ],
)
def test_nothing_may_build_on_a_finding(tmp_path, text, claim, field):
    path = _write(tmp_path, text)
    with pytest.raises(ClaimFileError) as info:
        load(path)
    err = info.value
    assert (err.claim, err.field) == (claim, field)
    assert "'slip' is expected to fail (a finding): nothing may build on it" in str(err)
    assert "\n" not in str(err)


def test_a_file_with_too_many_claims_is_refused_naming_the_field(tmp_path):
    from derive.limits import MAX_CLAIMS_PER_FILE

    claim = '[[claims]]\nid = "c{}"\ntitle = "t"\nlatex = "x"\nfor = "all"\nlhs = "0"\nrhs = "0"\n'
    head = '[document]\nid = "many"\ntitle = "Many"\n'
    path = tmp_path / "many.toml"
    path.write_text(head + "".join(claim.format(k) for k in range(MAX_CLAIMS_PER_FILE)))
    assert len(load(path).claims) == MAX_CLAIMS_PER_FILE
    path.write_text(head + "".join(claim.format(k) for k in range(MAX_CLAIMS_PER_FILE + 1)))
    with pytest.raises(ClaimFileError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "claims" in message
    assert f"at most {MAX_CLAIMS_PER_FILE} per file" in message


def test_load_skips_reading_sides_only_for_bytes_it_has_read(tmp_path):
    from derive.cache import Cache

    store = Cache(tmp_path / "cache")
    path = tmp_path / "d.toml"
    path.write_text(finding_toml())
    assert load(path, store) == load(path)
    assert load(path, store).digest == load(path).digest  # the second load was a hit
    assert store.hits == 1
    path.write_text(finding_toml("nosuch[i]"))
    with pytest.raises(ClaimFileError, match="nosuch"):
        load(path, store)


def test_a_claim_without_latex_loads(tmp_path):
    document = load(_write(tmp_path, plain_toml()))
    kinds = {c.id: (c.kind, c.latex) for c in document.claims}
    assert kinds == {
        "grad": ("equation", ""),
        "grad-chain": ("chain", ""),
        "hessian": ("cases", ""),
        "written": ("equation", r"\frac{\partial L}{\partial x_i} = 2 x_i"),
    }


@pytest.mark.parametrize("latex", ['""', '"  "', "1"])
def test_a_written_latex_must_be_a_non_empty_string(tmp_path, latex):
    path = _write(
        tmp_path, plain_toml().replace('id = "grad"\n', f'id = "grad"\nlatex = {latex}\n')
    )
    with pytest.raises(ClaimFileError) as info:
        load(path)
    err = info.value
    assert (err.path, err.claim, err.field) == (str(path), "grad", "latex")
    assert "missing or empty (expected a string)" in str(err)
    assert str(path) in str(err) and "'grad'" in str(err) and "'latex'" in str(err)


def test_without_the_claim_s_latex_a_case_s_latex_is_still_checked(tmp_path):
    text = plain_toml().replace('rhs = "0"\n', 'rhs = "0"\nlatex = "\\\\input{x}"\n')
    with pytest.raises(ClaimFileError, match="input") as info:
        load(_write(tmp_path, text))
    assert (info.value.claim, info.value.field) == ("hessian", "cases[2].latex")


def test_a_constraint_on_a_position_absent_at_n_1_is_refused_at_load():
    # x[2] exists at n = 3, where the load reads the model, but not at n = 1: before,
    # each check at n = 1 was an internal error (UNDECIDED, exit 3), not an input error
    data = {
        "document": {"id": "t", "title": "t"},
        "model": {
            "size": "n",
            "vectors": ["x", "g"],
            "constraints": ["x[2] = 1"],
            "nodes": ["L = sum(g[k]*x[k], k)"],
        },
        "claims": [{"id": "c", "title": "c", "for": "all i", "lhs": "D(L, x[i])", "rhs": "g[i]"}],
    }
    with pytest.raises(ClaimFileError, match="does not exist at n = 1") as err:
        from_dict(data)
    assert err.value.field == "model.constraints[1]"
