"""Atomic files: complete under the final name, or absent; errors name the file."""

from __future__ import annotations

import errno
import hashlib

import pytest

from packviz.pipeline.files import (
    AtomicWriter,
    remove_temporaries,
    temp_name,
    write_atomic,
    write_json,
)


def test_a_failed_write_leaves_no_file_and_names_the_path(tmp_path, monkeypatch):
    target = tmp_path / "shard-000001.parquet"
    w = AtomicWriter(target)
    w.write(b"first half")

    def full(_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(w._fh, "write", full)
    with pytest.raises(
        OSError,
        match=r"cannot write .*shard-000001\.parquet: No space left on device; free some space",
    ):
        w.write(b"second half")
    assert list(tmp_path.iterdir()) == []


def test_commit_renames_complete_content_and_returns_its_sha256(tmp_path):
    digest = write_atomic(tmp_path / "a.bin", [b"ab", memoryview(b"cd")])
    assert (tmp_path / "a.bin").read_bytes() == b"abcd"
    assert digest == hashlib.sha256(b"abcd").hexdigest()
    with pytest.raises(ZeroDivisionError), AtomicWriter(tmp_path / "b.bin") as w:
        w.write(b"x")
        1 / 0  # noqa: B018
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_json_is_key_sorted_so_equal_objects_give_equal_bytes(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_leftover_temporaries_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.ids.tmp-123").write_bytes(b"half")
    (tmp_path / "keep.json").write_text("{}")
    remove_temporaries(tmp_path)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["keep.json"]


def test_temporary_names_differ_per_call_and_name_the_host(tmp_path):
    import socket

    a, b = (
        temp_name(tmp_path / "shard-000000.parquet"),
        temp_name(tmp_path / "shard-000000.parquet"),
    )
    assert a != b  # two processes with one pid on two hosts never share a name
    assert a.name.startswith("shard-000000.parquet.tmp-")
    host = socket.gethostname().replace("_", "")
    assert host[:10] in a.name.replace("_", "")
