"""The results cache: every part of the key counts, a hit equals a fresh result,
and the directory is used only where nobody else can write to it."""

import os
import pickle

import pytest
import sympy as sp

from derive import cache as cache_module
from derive.bounded import result_key, verify_many
from derive.cache import Cache, CacheError, dumps, key, source_hash
from derive.claims import load
from derive.present import result_json

FILE = """
[document]
id = "c"
title = "C"

[[claims]]
id = "mean"
title = "t"
latex = "x"
for = "all i"
lhs = "d(mu, x[i])"
rhs = "{rhs}"
"""
OPTIONS = {"all_n": True, "normal_forms": True}


def _file(tmp_path, rhs="1/n", name="c.toml"):
    path = tmp_path / name
    path.write_text(FILE.format(rhs=rhs))
    return path


def _key(path, ns=(1, 2), options=OPTIONS, closed_forms=False):
    return result_key(load(path), ns, options, closed_forms)


def test_each_part_of_the_key_changes_it(tmp_path, monkeypatch):
    path = _file(tmp_path)
    base = _key(path)
    assert _key(path) == base  # and nothing else does
    other = _file(tmp_path, name="d.toml")  # the same bytes at another path
    changed = {
        "bytes": _key(_file(tmp_path, rhs="2/n")),
        "path": _key(other),
        "n": _key(path, ns=(1, 2, 3)),
        "options": _key(path, options={"all_n": False, "normal_forms": True}),
        "full": _key(path, options={**OPTIONS, "full": True}),
        "closed form": _key(path, closed_forms=True),
    }
    _file(tmp_path)  # back to the first bytes
    monkeypatch.setattr(cache_module, "source_hash", lambda: "another source")
    changed["source"] = _key(path)
    monkeypatch.undo()
    source_hash.cache_clear()
    monkeypatch.setattr(sp, "__version__", "0.0.1")
    changed["sympy"] = _key(path)
    monkeypatch.undo()
    source_hash.cache_clear()
    assert _key(path) == base
    assert all(k != base for k in changed.values()), changed
    assert len(set(changed.values())) == len(changed)


def test_the_source_hash_covers_every_module_and_template():
    files = {p.name for p in cache_module.PACKAGE.rglob("*") if p.suffix in (".py", ".j2")}
    assert {"checking.py", "exact.py", "alln.py", "report.tex.j2", "cache.py"} <= files
    assert len(source_hash()) == 64


def test_a_cached_result_equals_a_fresh_one(tmp_path, seed_document):
    store = Cache(tmp_path / "cache")
    doc = load(seed_document.path)
    (fresh,) = verify_many([doc], (1, 2, 3), cache=store, **OPTIONS)
    assert store.misses == 1 and store.hits == 0
    (hit,) = verify_many([doc], (1, 2, 3), cache=store, **OPTIONS)
    assert store.hits == 1
    assert result_json(hit) == result_json(fresh)
    for a, b in zip(hit.claims, fresh.claims, strict=True):
        assert a.normal_forms == b.normal_forms
        assert [sp.srepr(s.expr) for p in a.proofs for s in p.proof.steps] == [
            sp.srepr(s.expr) for p in b.proofs for s in p.proof.steps
        ]


def test_an_unevaluated_equation_comes_back_unevaluated():
    x = sp.Symbol("x")
    eq = sp.Eq(x + 1 - 1, x, evaluate=False)
    assert sp.srepr(pickle.loads(dumps(eq))) == sp.srepr(eq)
    terms = sp.Add(x, x, evaluate=False)
    assert pickle.loads(dumps(terms)).args == terms.args


def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path):
    store = Cache(tmp_path)
    store.put("k", {"a": 1})
    assert store.get("k") == {"a": 1}
    (tmp_path / "k.pickle").write_bytes(b"not a pickle")
    assert store.get("k") is None
    assert not (tmp_path / "k.pickle").exists()


def test_writes_are_whole_or_absent(tmp_path, monkeypatch):
    store = Cache(tmp_path)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put("k", [1, 2, 3])
    assert list(tmp_path.iterdir()) == []


def test_a_directory_others_can_write_is_not_used(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)
    with pytest.raises(CacheError, match="writable by others"):
        Cache(folder).check()
    fresh = Cache(tmp_path / "new")
    fresh.check()
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700


def test_keys_name_their_kind():
    assert key("report", "a").startswith("report-") and key("report", "a") != key("report", "b")


def test_clear_removes_every_entry(tmp_path):
    store = Cache(tmp_path)
    store.put("a", 1)
    store.put("b", 2)
    assert store.clear() == 2 and store.get("a") is None


def test_old_entries_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 3)
    store = Cache(tmp_path)
    for k in range(5):
        store.put(f"e{k}", k)
        os.utime(tmp_path / f"e{k}.pickle", (k, k))
    assert len(list(tmp_path.glob("*.pickle"))) == 3


def test_a_cache_that_cannot_be_written_is_only_slower(tmp_path, monkeypatch):
    store = Cache(tmp_path)

    def full(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.tempfile, "mkstemp", full)
    store.put("k", 1)
    assert store.get("k") is None
