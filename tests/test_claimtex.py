"""The claim language printed as mathematics, as written."""

import tomllib

from derive.claims import from_dict
from derive.claimtex import name_latex, side_latex, statement_latex, terms
from tests.conftest import plain_toml


def test_names_print_as_their_letters():
    assert name_latex("xhat") == r"\hat{x}"
    assert name_latex("eps") == r"\varepsilon"
    assert name_latex("gamma_c") == r"\gamma_{c}"
    assert name_latex("dy") == r"\mathit{dy}"


def test_derivatives_sums_and_order_as_written():
    assert side_latex("d(xhat[j], sigma)*d(sigma, x[i])") == (
        r"\frac{\partial \hat{x}_{j}}{\partial \sigma} \frac{\partial \sigma}{\partial x_{i}}"
    )
    assert side_latex("D(L, x[i])") == r"\frac{\mathrm{d} L}{\mathrm{d} x_{i}}"
    assert side_latex("sum(x[k], k, ne=i)") == r"\sum_{k \ne i} x_{k}"
    # nothing simplified: 2 * (1/(2 n sigma)) stays
    assert side_latex("1/(2*n*sigma) * 2*(x[i] - mu)") == (
        r"\frac{1}{2 n \sigma} \cdot 2 \left(x_{i} - \mu\right)"
    )
    assert side_latex("-(x[i] - mu)/sigma**2") == r"-\frac{x_{i} - \mu}{\sigma^{2}}"


def test_terms_for_breaking_a_long_side():
    assert terms("a - b + c".replace("a", "x[i]").replace("b", "mu").replace("c", "g[i]")) == [
        "x_{i}",
        r"- \mu",
        "+ g_{i}",
    ]


def test_multi_letter_names_are_kept_apart_and_capital_greek_and_digits_print():
    assert side_latex("dbeta*ddbeta") == r"\mathit{dbeta}\, \mathit{ddbeta}"
    assert side_latex("ddgamma*xt[i]*r") == r"\mathit{ddgamma}\, \mathit{xt}_{i}\, r"
    assert side_latex("gamma*rinvstd") == r"\gamma \,\mathit{rinvstd}"
    assert side_latex("Sg*2") == r"\mathit{Sg} \cdot 2"  # no space before an operator
    assert side_latex("D(Phi1, dy1[i])") == (
        r"\frac{\mathrm{d} \Phi_{1}}{\mathrm{d} \,\mathit{dy}_{1,i}}"  # d dy, not ddy
    )
    assert name_latex("Phi") == r"\Phi" and name_latex("L1") == "L_{1}"


def test_a_long_term_times_a_bracket_is_broken_inside_the_bracket():
    inner = " + ".join(f"sum(dy[k]*x[k]*x{q}, k)" for q in range(6))
    lines = terms(f"gamma/n*({inner}) + beta")
    assert len(lines) == 7 and lines[0].startswith(r"\frac{\gamma}{n} \biggl(")
    assert lines[5].endswith(r"\biggr)") and lines[6] == r"+ \beta"
    assert terms("gamma*(x[i] + mu)") == [r"\gamma \left(x_{i} + \mu\right)"]  # short: whole


def test_exp_and_log_print_as_mathematics_as_written():
    assert side_latex("exp(z[i] - c)/sum(exp(z[k] - c), k)") == (
        r"\frac{e^{z_{i} - c}}{\sum_{k=1}^{n} e^{z_{k} - c}}"
    )
    assert (
        side_latex("-sum(t[k]*log(p[k]), k)") == r"-\sum_{k=1}^{n} t_{k} \log{\left(p_{k} \right)}"
    )
    # nothing simplified: log(exp(u)) stays, and a power of e^u is bracketed
    assert side_latex("log(exp(z[i]))") == r"\log{\left(e^{z_{i}} \right)}"
    assert side_latex("exp(z[i])**2") == r"\left(e^{z_{i}}\right)^{2}"


def test_a_statement_is_its_written_latex_or_else_its_sides():
    document = from_dict(tomllib.loads(plain_toml()))
    grad = r"\frac{\mathrm{d} L}{\mathrm{d} x_{i}}"
    hessian = r"\frac{\mathrm{d}}{\mathrm{d} x_{j}}\left(" + grad + r"\right)"
    assert statement_latex(document.claim("grad")) == grad + " = 2 x_{i}"
    assert statement_latex(document.claim("grad-chain")) == grad + " = 2 x_{i} = x_{i} + x_{i}"
    assert statement_latex(document.claim("hessian")) == (
        hessian
        + r" = 2 \quad \text{for $i = j$}, \qquad "
        + hessian
        + r" = 0 \quad \text{for $i \ne j$}"
    )
    assert statement_latex(document.claim("written")) == r"\frac{\partial L}{\partial x_i} = 2 x_i"


def test_cases_for_every_value_print_no_condition_and_sums_use_the_size():
    data = tomllib.loads(plain_toml())
    data["claims"][2]["cases"] = [
        {"for": "all", "lhs": "sum(D(L, x[k]), k)", "rhs": "2*sum(x[k], k)"},
        {"for": "all", "lhs": "sum(D(L, x[k]), k)", "rhs": "sum(2*x[k], k)"},
    ]
    sums = r"\sum_{k=1}^{m} \frac{\mathrm{d} L}{\mathrm{d} x_{k}}"
    assert statement_latex(from_dict(data).claim("hessian"), size="m") == (
        sums + r" = 2 \sum_{k=1}^{m} x_{k}, \qquad " + sums + r" = \sum_{k=1}^{m} 2 x_{k}"
    )
