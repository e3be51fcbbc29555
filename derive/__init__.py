"""derive: a symbolic verifier for hand-written gradient derivations.

The Python API (``derive.load``, ``derive.loads``, ``derive.document``,
``derive.verify``, ``derive.assert_holds``) is in ``derive.api``.  It is loaded
on first use, so that importing a generated module (``derive.generated``,
NumPy only) does not import SymPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import (
        ClaimFileError,
        ClaimVerdict,
        Document,
        Result,
        VerifierError,
        assert_holds,
        document,
        load,
        loads,
        verify,
    )

__all__ = [
    "ClaimFileError",
    "ClaimVerdict",
    "Document",
    "Result",
    "VerifierError",
    "assert_holds",
    "document",
    "load",
    "loads",
    "verify",
]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
