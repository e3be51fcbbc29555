"""Results remembered between runs: a verified document is not verified again.

An entry is keyed by everything its value depends on: the document's bytes
and path, the options (n, --full, --all-n, ...), a hash of derive's own source
(every module and template of the package) and the versions of Python, SymPy
and mpmath.  Changing any of them misses; nothing is ever invalidated by
hand.  A result that a limit decided (a claim stopped by the time or memory
limit, or by the run's budget) is not stored: on a faster or quieter machine
the check may finish.

Entries are pickles, and unpickling runs code, so the cache is only used in a
directory that this user owns and nobody else can write to (it is created
with mode 0700): a claim file, which anybody may write, is never a pickle.  A
damaged entry is a miss.  Writes are atomic (a temporary file, then a rename),
so an interrupted run leaves whole entries or none.

Where: ``$DERIVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/derive``, else
``~/.cache/derive``.  ``python -m derive cache --clear`` empties it;
``--no-cache`` runs without it.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import os
import pickle
import stat
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import mpmath
import sympy

PACKAGE = Path(__file__).resolve().parent
# Bumped when the layout of an entry changes in a way the source hash would not show.
FORMAT = 1
# Entries beyond this many are removed, oldest first (a result is some 10-500 KB;
# the shipped documents and their reports are some 60 entries).
MAX_ENTRIES = 2000


def default_directory() -> Path:
    env = os.environ.get("DERIVE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "derive"


@lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 over derive's modules and templates (names and bytes) and the versions
    of what computes the results."""
    h = hashlib.sha256()
    versions = f"{FORMAT} {sys.version} sympy {sympy.__version__} mpmath {mpmath.__version__}"
    h.update(versions.encode())
    files = sorted(
        p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".j2") and "generated" not in p.parts
    )
    for p in files:
        h.update(str(p.relative_to(PACKAGE)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def key(kind: str, *parts) -> str:
    """The entry's name: ``kind`` and ``parts`` (str, bytes, numbers, tuples of them)
    with the source hash."""
    h = hashlib.sha256(f"{kind}\0{source_hash()}\0".encode())
    h.update(repr(parts).encode())
    return f"{kind}-{h.hexdigest()}"


def _relational(cls, lhs, rhs):
    return cls(lhs, rhs, evaluate=False)


def _assoc(cls, args, commutative):
    return cls._from_args(args, commutative)


def _pow(base, exp):
    return sympy.Pow(base, exp, evaluate=False)


# SymPy pickles an expression as its class called on its arguments, which
# evaluates again: Eq(a, b, evaluate=False) in a proof came back as True or
# False after seconds of simplification.  These rebuild the tree as it was.
_REDUCERS = {
    **{
        cls: lambda e: (_relational, (type(e), e.lhs, e.rhs))
        for cls in (sympy.Eq, sympy.Ne, sympy.Lt, sympy.Le, sympy.Gt, sympy.Ge)
    },
    sympy.Add: lambda e: (_assoc, (sympy.Add, e.args, e.is_commutative)),
    sympy.Mul: lambda e: (_assoc, (sympy.Mul, e.args, e.is_commutative)),
    sympy.Pow: lambda e: (_pow, e.args),
}


def dumps(value) -> bytes:
    """value pickled, with SymPy expressions stored as trees (_REDUCERS)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, **_REDUCERS}
    pickler.dump(value)
    return buffer.getvalue()


class CacheError(RuntimeError):
    """The directory cannot be used safely (the run goes on without it)."""


class Cache:
    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else default_directory()
        self.hits = 0
        self.misses = 0
        self._ready = False

    def check(self) -> None:
        """Raise CacheError if the directory cannot be used safely."""
        if self._ready:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.directory.lstat()
        except OSError as exc:
            raise CacheError(f"{self.directory}: {exc.strerror}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise CacheError(f"{self.directory}: not a directory")
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CacheError(
                f"{self.directory}: owned by another user or writable by others; "
                "not used (its entries could run code)"
            )
        self._ready = True

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.pickle"

    def get(self, name: str):
        """The stored value, or None (a miss)."""
        self.check()
        path = self._path(name)
        try:
            with open(path, "rb") as f:
                value = pickle.load(f)
        except OSError:
            self.misses += 1
            return None
        except Exception:  # a damaged or foreign entry: a miss, and gone
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return value

    def put(self, name: str, value) -> None:
        """Store value under name; a cache that cannot be written (a full disk) is
        only slower, so an OSError is not passed on."""
        self.check()
        data = dumps(value)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".pickle")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._path(name))
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._prune()

    def _prune(self) -> None:
        entries = list(self.directory.glob("*.pickle"))
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda p: p.stat().st_mtime)
        for p in entries[: len(entries) - MAX_ENTRIES]:
            p.unlink(missing_ok=True)

    def clear(self) -> int:
        """Remove every entry; return how many there were."""
        if not self.directory.is_dir():
            return 0
        count = 0
        for p in self.directory.glob("*.pickle"):
            p.unlink(missing_ok=True)
            count += 1
        for p in self.directory.glob(".tmp-*"):
            p.unlink(missing_ok=True)
        return count
