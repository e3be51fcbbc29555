"""Files: generated ones written whole or not at all (and only when they change),
claim files read only when they are regular files of a bounded size."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


def write_if_changed(path: Path, text: str) -> bool:
    """Write text to path atomically (a reader never sees half a file);
    leave the file, and its timestamp, alone when the content is the same."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    # Compared only when it is a regular file of the same size: a symlink or a
    # device in its place is replaced, never read (or followed).
    if info and stat.S_ISREG(info.st_mode) and info.st_size == len(data):
        if path.read_bytes() == data:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def copy_atomic(source: Path, target: Path) -> None:
    """Copy source to target so that a reader sees the old file or the whole new one."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


class NotReadable(ValueError):
    """A file that is not read at all: not a regular file, or over the size limit."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most limit bytes.

    Opened without blocking and checked before reading, so a FIFO (which would
    wait for a writer), a device such as /dev/zero (endless) or a huge file is
    refused at once with NotReadable; OSError for anything the system refuses."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotReadable("not a regular file")
        if info.st_size > limit:
            raise NotReadable(f"larger than the limit of {limit} bytes ({info.st_size} bytes)")
        data = f.read(limit + 1)  # a file still growing stops here
    if len(data) > limit:
        raise NotReadable(f"larger than the limit of {limit} bytes")
    return data


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: the file(s) and the system's reason, with any
    control character in a name (a newline, say) shown as '?'."""
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    reason = exc.strerror or str(exc) or type(exc).__name__
    text = f"{' -> '.join(names)}: {reason}" if names else reason
    return "".join(c if c.isprintable() else "?" for c in text)
