"""packviz.export: bit-exact round trips, metadata, and refusal of pickled payloads."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
import torch

import packviz as pv
from packviz.pieces import piece_lengths


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    lengths = [5, 17, 3, 0, 9, 30, 1]
    ids = [rng.integers(0, 30_000, n) for n in lengths]
    return pv.materialize(pv.pack(lengths, 16), ids, pad_id=7)


def assert_same(a, b, fields=pv.FIELDS):
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype == np.int32, f
        np.testing.assert_array_equal(x, y, err_msg=f)
    np.testing.assert_array_equal(a.cu_seqlens, b.cu_seqlens)
    assert b.cu_seqlens.dtype == np.int32
    np.testing.assert_array_equal(a.row_index, b.row_index)
    assert a.max_seqlen == b.max_seqlen


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_round_trip(tmp_path, arrays, fmt):
    path = tmp_path / f"rows.{fmt}"
    pv.save(arrays, path, metadata={"tokenizer": "abc123", "stats": {"efficiency": 0.5}})
    back = pv.load(path)
    assert_same(arrays, back)
    assert back.metadata["tokenizer"] == "abc123"
    assert back.metadata["stats"] == {"efficiency": 0.5}
    assert back.metadata["plan"]["strategy"] == "best_fit"
    assert back.metadata["packviz_version"] == pv.__version__
    # same arrays, same bytes
    assert pv.to_bytes(arrays, fmt, metadata={"x": 1}) == pv.to_bytes(
        arrays, fmt, metadata={"x": 1}
    )


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_selected_fields(tmp_path, arrays, fmt):
    path = tmp_path / f"rows.{fmt}"
    pv.save(arrays, path, fields=["input_ids", "labels"])
    back = pv.load(path)
    assert back.position_ids is None and back.doc_ids is None
    assert_same(arrays, back, fields=["input_ids", "labels"])
    assert back.metadata["fields"] == ["input_ids", "labels"]


def test_parquet_is_one_row_per_packed_row(tmp_path, arrays):
    import pandas as pd
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pv.save(arrays, path)
    table = pq.read_table(path)
    assert table.num_rows == arrays.n_rows
    assert set(table.column_names) >= {
        "input_ids",
        "labels",
        "position_ids",
        "doc_ids",
        "seq_lengths",
    }
    df = pd.read_parquet(path)
    assert list(df["input_ids"][0]) == arrays.input_ids[0].tolist()
    flat, per_row = piece_lengths(arrays.doc_ids)
    assert [list(x) for x in df["seq_lengths"]] == [
        p.tolist() for p in np.split(flat, np.cumsum(per_row)[:-1])
    ]


def test_shuffle_is_seeded_and_recorded(tmp_path, arrays):
    path = tmp_path / "rows.npz"
    pv.save(arrays, path, shuffle_seed=3)
    back = pv.load(path)
    assert back.metadata["shuffle_seed"] == 3
    assert sorted(back.row_index.tolist()) == arrays.row_index.tolist()
    np.testing.assert_array_equal(back.input_ids, arrays.input_ids[back.row_index])


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_refuses_pickles(tmp_path):
    npz = tmp_path / "evil.npz"
    np.savez(npz, metadata=np.array([Evil()], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        pv.load(npz)
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ValueError, match="not a packviz"):
        pv.load(raw)
    pt = tmp_path / "evil.pt"
    torch.save({"metadata": "{}", "x": Evil()}, pt)
    with pytest.raises(ValueError, match="not a packviz .pt file"):
        pv.load(pt)


def test_bad_paths_and_fields(tmp_path, arrays):
    with pytest.raises(ValueError, match=r"\.npz, \.pt, \.parquet"):
        pv.save(arrays, tmp_path / "rows.csv")
    with pytest.raises(ValueError, match="unknown field"):
        pv.save(arrays, tmp_path / "rows.npz", fields=["tokens"])
    lengths_only = pv.materialize(pv.pack([3], 4), None, pad_id=0)
    with pytest.raises(ValueError, match="no input_ids"):
        pv.save(lengths_only, tmp_path / "rows.npz", fields=["input_ids"])
    pv.save(lengths_only, tmp_path / "ok.npz")  # saves what it has
    assert pv.load(tmp_path / "ok.npz").input_ids is None
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="not a packviz .parquet"):
        pv.load(tmp_path / "junk.parquet")


def test_corrupt_files_are_value_errors(tmp_path, arrays):
    good = pv.to_bytes(arrays, "npz")
    for fmt, data in [
        ("npz", good[: len(good) // 2]),
        ("npz", b"PK\x03\x04junk"),
        ("pt", b"\x00" * 10),
        ("parquet", b"PAR1" + b"\x00" * 20 + b"PAR1"),
    ]:
        path = tmp_path / f"bad.{fmt}"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"not a packviz .{fmt} file"):
            pv.load(path)


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_partial_fields_still_know_their_shape(tmp_path, arrays, fmt):
    path = tmp_path / f"rows.{fmt}"
    pv.save(arrays, path, fields=["labels"])
    back = pv.load(path)
    assert (back.n_rows, back.max_len) == (arrays.n_rows, arrays.max_len)
    assert back.doc_ids is None and back.labels.shape == arrays.labels.shape


def test_parquet_rows_are_fixed_size_lists(tmp_path, arrays):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pv.save(arrays, path)
    schema = pq.read_schema(path)
    assert schema.field("input_ids").type == pa.list_(pa.int32(), 16)


def test_npz_has_fixed_timestamps(arrays):
    with zipfile.ZipFile(io.BytesIO(pv.to_bytes(arrays, "npz"))) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_estimate_bytes_close_to_actual(arrays):
    for fmt in ("npz", "pt"):
        actual = len(pv.to_bytes(arrays, fmt))
        est = pv.estimate_bytes(arrays.n_rows, arrays.max_len, fmt)
        assert 0.5 * actual <= est <= 2 * actual + 8192
