"""What every part of code generation shares: the error, the documents codegen
knows by name, the n it verifies at, and the helpers each layout's template calls."""

from __future__ import annotations

from ..paths import DOCUMENTS

LAYER_DOCUMENT = DOCUMENTS / "batchnorm_layer.toml"
SEED_DOCUMENT = DOCUMENTS / "bn_backward.toml"

# n checked before emitting: n = 1 (σ = sqrt(ε) for the layer) and the first
# sizes where every index case (i = j, i ≠ j, a third position) occurs.
VERIFY_NS = (1, 2, 3, 4)

# The helpers each template calls, by layout: a document set that leaves one out
# cannot be rendered (CodegenError), rather than failing when the module is imported.
REQUIRED = {
    "channels": ("_root_squared", "_y", "_dgamma", "_dbeta", "_dx", "_xhat_dx"),
    "trailing": ("_root_squared", "_y", "_dgamma", "_dx"),
    "groups": ("_root_squared", "_y", "_dgamma", "_dbeta", "_dx"),
}

# Formulas a template prints a further public function from when a document declares them:
# all of a group or none (batchnorm_double_backward needs its three outputs).
TOGETHER = {
    "channels": (
        ("_dx2", "_dgamma2", "_ddy"),
        ("_eval_y", "_eval_dgamma", "_eval_dbeta", "_eval_dx"),
    ),
    "trailing": (),
    "groups": (),
}


class CodegenError(RuntimeError):
    """A claim cannot be emitted: it fails, or it is not in a form with a kernel."""
