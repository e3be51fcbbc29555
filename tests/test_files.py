import os
import stat

import pytest

from derive.files import write_if_changed


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
