import os
import stat

import pytest

from derive.files import (
    NotReadable,
    copy_atomic,
    describe_os_error,
    read_bounded,
    write_if_changed,
)


def test_writes_and_reports_a_change(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    assert write_if_changed(path, "a\n") is True
    assert path.read_text(encoding="utf-8") == "a\n"
    assert write_if_changed(path, "b\n") is True
    assert path.read_text(encoding="utf-8") == "b\n"


def test_unchanged_content_leaves_the_file_alone(tmp_path):
    path = tmp_path / "out.txt"
    write_if_changed(path, "same\n")
    os.utime(path, (1_000_000, 1_000_000))
    assert write_if_changed(path, "same\n") is False
    assert path.stat().st_mtime == 1_000_000


def test_mode_follows_the_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "out.txt"
        write_if_changed(path, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    write_if_changed(path, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_if_changed(path, "new\n")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_newlines_are_written_as_given(tmp_path):
    path = tmp_path / "out.txt"
    write_if_changed(path, "a\nb\n")
    assert path.read_bytes() == b"a\nb\n"


def test_a_symlink_in_the_way_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    link = tmp_path / "out" / "report.tex"
    link.parent.mkdir()
    link.symlink_to(outside)
    assert write_if_changed(link, "new\n") is True
    assert outside.read_text() == "keep\n"
    assert not link.is_symlink() and link.read_text() == "new\n"


def test_copy_atomic_leaves_no_temporary_file(tmp_path):
    source, target = tmp_path / "a.pdf", tmp_path / "b.pdf"
    source.write_bytes(b"%PDF-1.5 x")
    target.write_bytes(b"old")
    copy_atomic(source, target)
    assert target.read_bytes() == b"%PDF-1.5 x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "b.pdf"]


def test_read_bounded(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10
    with pytest.raises(NotReadable, match="larger than the limit of 9 bytes"):
        read_bounded(path, 9)
    with pytest.raises(NotReadable, match="not a regular file"):
        read_bounded("/dev/null", 10)
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing", 10)


def test_os_errors_are_one_line():
    exc = OSError(30, "Read-only file system", "out/a\nb.tex")
    assert describe_os_error(exc) == "out/a?b.tex: Read-only file system"
    assert describe_os_error(OSError("odd")) == "odd"
