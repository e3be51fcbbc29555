import pytest
import sympy as sp

from derive.checking import FAILS
from derive.claims import from_dict
from derive.derivation import DerivationError, derive_closed_form, solve_coefficients
from derive.model import N_SYMBOL
from tests.conftest import SEED, mutate


def test_coefficients_are_found_not_assumed(seed_document):
    assert solve_coefficients(seed_document, 4) == (1, sp.Rational(-1, 4), sp.Rational(-1, 4))


def test_closed_form_is_derived_and_equals_the_documents(seed_document):
    d = derive_closed_form(seed_document)
    assert d.coefficients == {"alpha": 1, "beta": -1 / N_SYMBOL, "gamma": -1 / N_SYMBOL}
    assert d.result.holds and d.result.proved_all_n
    assert d.holds


def test_n_2_is_degenerate(seed_document):
    with pytest.raises(DerivationError, match="span"):
        solve_coefficients(seed_document, 2)


def test_a_wrong_document_form_is_not_confirmed():
    doc = from_dict(mutate("closed-form", "rhs", "(n*sigma)", "((n - 1)*sigma)"), SEED)
    d = derive_closed_form(doc)
    assert not d.holds
    bad = d.result.first_failure
    assert bad.status == FAILS
    assert bad.first_failure.step == 2  # direct = derived holds; derived = document fails
