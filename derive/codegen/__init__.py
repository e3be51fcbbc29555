"""Emit verified formulas as NumPy (and fused numba) modules, as the documents declare.

Which claims become code, and as which helper of which public function, is
declared in each document's ``[emit]`` table (``emits.py``).  For each declared
formula:

1. the claim is verified (``verify.verify_document`` at small n, together with
   every claim it ``uses``); nothing is written if one fails;
2. the claim's last side is read with ``language.parse`` on the document's model
   at a symbolic n, so its sums stay ``Sum`` objects;
3. ``lower`` rewrites it for arrays: every node but the mean and root is expanded,
   x becomes mean + xc where the emit table names a mean, every ``Sum`` becomes a
   reduction over the axes the layout names (``sum_dy``, ``sum_dy_gamma_xc``: one
   product of per-element values each), and the root statistic becomes
   1/inverse (``invstd``);
4. ``collect`` splits the result into per-statistic coefficients times products of
   per-element values (or one value per statistic), exactly, and checks the split;
5. coefficients and the per-element expression are printed with SymPy's NumPy
   printer, re-spaced to the layout ``ruff format`` writes.

A module is one template of array plumbing per layout (``emits.LAYOUTS``) plus
these printed helpers.  The templates write two paths from the same helpers: NumPy
over blocks that stay in cache, and numba kernels that call the helpers compiled
by numba (one pass per channel or group, float64 accumulation).

The package, one concern a module: ``common`` (the error and what the layouts
need), ``lowering`` (steps 3 and 4), ``verification`` (step 1), ``printing`` (step
5), ``rendering`` (templates and files) and ``rows`` (the row-wise and elementwise
layouts).
"""

from ..paths import DOCUMENTS
from .common import LAYER_DOCUMENT, REQUIRED, SEED_DOCUMENT, TOGETHER, VERIFY_NS, CodegenError
from .lowering import (
    N_VALUES,
    Formula,
    Lowered,
    build_formula,
    collect,
    element_names,
    formulas,
    inverse_symbol,
    lower,
    reduction_symbol,
)
from .printing import call, python_code, statements
from .rendering import (
    render_module,
    render_modules,
    shipped_emitters,
    wrap,
    write_generated,
)
from .verification import verify_emitted

__all__ = [
    "CodegenError",
    "DOCUMENTS",
    "Formula",
    "LAYER_DOCUMENT",
    "Lowered",
    "N_VALUES",
    "REQUIRED",
    "SEED_DOCUMENT",
    "TOGETHER",
    "VERIFY_NS",
    "build_formula",
    "call",
    "collect",
    "element_names",
    "formulas",
    "inverse_symbol",
    "lower",
    "python_code",
    "reduction_symbol",
    "render_module",
    "render_modules",
    "shipped_emitters",
    "statements",
    "verify_emitted",
    "wrap",
    "write_generated",
]
