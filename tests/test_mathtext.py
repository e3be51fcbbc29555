"""Unicode prose typeset as LaTeX: which words are mathematics, and that nothing injects."""

from derive.mathtext import is_math_word, math, prose


def test_formulas_get_math_mode_and_subscripts():
    assert prose("(2) ∂x̂_i/∂σ, per component") == (
        r"(2) $\partial \hat{x}_{i}/\partial \sigma$, per component"
    )
    assert prose("for n ≥ 2 only") == r"for $n \ge  2$ only"
    assert prose("the (x_j − μ)(x_i − μ) terms") == r"the $(x_{j} - \mu )(x_{i} - \mu )$ terms"
    assert math("Σ_{k≠i} x_k²") == r"\sum _{k\ne i} x_{k}^{2}"


def test_words_that_stay_text():
    assert not is_math_word("a") and not is_math_word("eq1-literal")
    assert prose("Route C: a claim") == "Route C: a claim"
    assert prose("batchnorm_forward computes") == r"\texttt{batchnorm\_forward} computes"


def test_claim_ids_become_links_and_text_cannot_inject():
    links = {"dsigma-dmu": "claim:dsigma-dmu"}
    assert prose("(claim dsigma-dmu),", links) == (
        r"(claim \hyperref[claim:dsigma-dmu]{\texttt{dsigma-dmu}}),"
    )
    assert "\\input" not in prose(r"\input{/etc/passwd} x_{\input}")
    assert prose("50% & #1") == r"50\% \& \#1"


def test_a_word_with_two_underscores_is_a_name_not_a_double_subscript():
    out = prose("PyTorch's first_back_grad_input(gO, gamma) is called twice.")
    assert r"first\_back\_grad\_input" in out
    assert "_{" not in out


def test_a_formula_with_two_subscripts_is_mathematics_and_never_a_double_subscript():
    # two subscripts in one formula word: mathematics, not a program's name
    assert prose("x̂_i = (x_i − μ_B)/√(σ_B² + ε)") == (
        r"$\hat{x}_{i} = (x_{i} - \mu _{B})/\surd (\sigma _{B}^{2} + \varepsilon )$"
    )
    assert prose("The Jacobian ∂x̂_j/∂x_i") == r"The Jacobian $\partial \hat{x}_{j}/\partial x_{i}$"
    # a program's name inside a bracket stays a name
    assert "_{" not in prose("h (first_back_grad_input(ggI, gamma))")
    # and whatever reaches a formula never stacks two subscripts on one base
    assert math("x_a_b") == "x_{a}{}_{b}"


def test_names_given_are_mathematics_anywhere():
    assert prose("over M values", names={"M": "M"}) == "over $M$ values"
    assert prose("gamma times dy.", names={"gamma": r"\gamma", "dy": r"\mathit{dy}"}) == (
        r"$\gamma$ times $\mathit{dy}$."
    )


def test_names_in_a_formula_of_prose_are_kept_apart():
    names = {"ddgamma": r"\mathit{ddgamma}", "xt": r"\mathit{xt}", "r": "r"}
    assert prose("ddgamma xt r", names=names) == r"$\mathit{ddgamma}\, \mathit{xt}\, r$"
