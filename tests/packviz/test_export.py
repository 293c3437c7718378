"""packviz.export: bit-exact round trips, metadata, and refusal of pickled payloads."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from packed_files import raw_bytes, sealed

import packviz as pv
from packviz import export
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


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_arrays_without_doc_ids_save_where_they_can(tmp_path, arrays, fmt):
    """Arrays read back from a file saved without doc_ids: .npz and .pt take them as they
    are; .parquet (its seq_lengths) and shuffle_seed need each row's pieces: refused,
    saying why (not a TypeError from inside)."""
    pv.save(arrays, tmp_path / "some.npz", fields=["input_ids", "labels"])
    some = pv.load(tmp_path / "some.npz")
    assert some.doc_ids is None
    path = tmp_path / f"again.{fmt}"
    if fmt == "parquet":
        with pytest.raises(ValueError, match="no doc_ids, and a .parquet file stores each row"):
            pv.save(some, path)
        with pytest.raises(ValueError, match="no doc_ids, and a .parquet file stores"):
            pv.to_bytes(some, fmt)
    else:
        pv.save(some, path)
        assert_same(arrays, pv.load(path), fields=["input_ids", "labels"])
    with pytest.raises(ValueError, match="no doc_ids, and shuffle_seed rebuilds each row's"):
        pv.to_bytes(some, "npz" if fmt == "parquet" else fmt, shuffle_seed=1)
    left = {p.name for p in tmp_path.iterdir()}  # no partial file left behind
    assert left == ({"some.npz"} if fmt == "parquet" else {"some.npz", path.name})


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_whole_reads_are_writable_arrays_of_their_own(tmp_path, arrays, fmt):
    data = pv.to_bytes(arrays, fmt)
    (tmp_path / f"rows.{fmt}").write_bytes(data)
    for back in (pv.from_bytes(data, fmt), pv.load(tmp_path / f"rows.{fmt}")):
        for name in (*pv.FIELDS, "cu_seqlens", "row_index"):
            a = getattr(back, name)
            assert a.flags.writeable, name
            assert not np.shares_memory(a, np.frombuffer(data, np.uint8)), name
        back.labels[0, 0] = 1  # (writing does not touch the file's bytes)
    assert pv.from_bytes(data, fmt).labels[0, 0] == -100


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nothing.npz"
    for read in (pv.load, pv.open, pv.to_hf_dataset, pv.PackedIterableDataset):
        with pytest.raises(FileNotFoundError, match=f"^no file at {missing}$"):
            read(missing)
        with pytest.raises(ValueError, match="no file at"):  # a bad input, like the others
            read(missing)
    (tmp_path / "shards.npz").mkdir()
    with pytest.raises(ValueError, match="shards.npz is a directory, not a packed file"):
        pv.load(tmp_path / "shards.npz")


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


# --- exact dtypes, checked loads, hostile files (issue 9) -------------------------------


def wide(arrays):
    """The fixture with int64 ids past 2**32 and doc ids past 2**31."""
    real = arrays.doc_ids >= 0
    ids = arrays.input_ids.astype(np.int64) + 2**33
    labels = np.where(arrays.labels == -100, -100, arrays.labels.astype(np.int64) + 2**33)
    doc = np.where(real, arrays.doc_ids.astype(np.int64) + 2**31 + 5, -1)
    return dataclasses.replace(arrays, input_ids=ids, labels=labels, doc_ids=doc)


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_int64_values_come_back_exactly(tmp_path, arrays, fmt):
    a = wide(arrays)
    path = tmp_path / f"rows.{fmt}"
    pv.save(a, path)
    back = pv.load(path)
    for f in pv.FIELDS:
        got, want = getattr(back, f), getattr(a, f)
        assert got.dtype == want.dtype, f
        np.testing.assert_array_equal(got, want, err_msg=f)
    assert int(back.doc_ids.max()) > 2**31 and int(back.input_ids.max()) > 2**33


@given(
    st.lists(st.integers(0, 40), max_size=25),
    st.integers(1, 20),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(pv.FORMATS),
    st.booleans(),
)
@settings(max_examples=25)
def test_round_trip_of_any_plan(lengths, max_len, strategy, fmt, trained):
    ids = pv.TokenIds.from_sequences([np.arange(n) % 97 for n in lengths])
    if trained:
        ids = pv.TokenIds(ids.values, ids.offsets, trained=ids.values % 3 > 0)
    a = pv.materialize(pv.pack(lengths, max_len, strategy=strategy), ids, pad_id=0)
    assert_same(a, pv.from_bytes(pv.to_bytes(a, fmt), fmt))


BROKEN = {
    "labels across a boundary": (
        lambda a: _with(a, "labels", (2, 0), a.input_ids[2, 0]),
        r"labels at row 2, slot 0 is \d+ where a piece starts",
    ),
    "positions that never restart": (
        lambda a: _with(a, "position_ids", (2, 14), 14),
        "position_ids at row 2, slot 14 is 14, expected 0",
    ),
    "cu_seqlens against the doc ids": (
        lambda a: dataclasses.replace(a, cu_seqlens=a.cu_seqlens[::-1].copy()),
        "cu_seqlens must be 1-D and start at 0",
    ),
    "labels of another shape": (
        lambda a: dataclasses.replace(a, labels=a.labels[:, :5].copy()),
        "labels has 5 slots per row but the other fields have 16",
    ),
}


def _with(a, field, at, value):
    arr = getattr(a, field).copy()
    arr[at] = value
    return dataclasses.replace(a, **{field: arr})


@pytest.mark.parametrize("fmt", ["npz", "pt"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_load_refuses_broken_files(tmp_path, arrays, fmt, case):
    change, message = BROKEN[case]
    path = tmp_path / f"rows.{fmt}"
    path.write_bytes(raw_bytes(change(arrays), fmt))
    with pytest.raises(ValueError, match=message) as err:
        pv.load(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="the arrays to save: .* Write files with pv.save"):
        pv.save(change(arrays), tmp_path / f"again.{fmt}")  # save refuses what load would
    assert not (tmp_path / f"again.{fmt}").exists()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left


def test_load_refuses_wrong_dtypes_and_missing_fields(tmp_path, arrays):
    path = tmp_path / "rows.npz"
    path.write_bytes(raw_bytes(dataclasses.replace(arrays, input_ids=arrays.input_ids[0]), "npz"))
    with pytest.raises(ValueError, match=r"input_ids must be \[rows, max_len\]"):
        pv.load(path)
    floats = dataclasses.replace(arrays, input_ids=arrays.input_ids.astype(np.float64))
    path.write_bytes(raw_bytes(floats, "npz"))
    with pytest.raises(ValueError, match="input_ids must hold integers, got float64"):
        pv.load(path)
    path = tmp_path / "rows.pt"
    path.write_bytes(raw_bytes(floats, "pt"))
    with pytest.raises(ValueError, match="input_ids must hold integers, got torch.float64"):
        pv.load(path)
    # the metadata lists doc_ids but the file lacks them
    path = tmp_path / "rows.npz"
    data = raw_bytes(
        arrays, "npz", fields=["input_ids", "labels"], meta={"fields": list(pv.FIELDS)}
    )
    path.write_bytes(data)
    with pytest.raises(ValueError, match="the metadata lists position_ids, doc_ids but the file"):
        pv.load(path)


def _parquet(tmp_path, columns, meta):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns).replace_schema_metadata({b"packviz": json.dumps(meta)})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    return path


def test_parquet_refuses_floats_and_unequal_rows(tmp_path, arrays):
    import pyarrow as pa

    meta = {"max_len": 4, "max_seqlen": 3, "fields": ["input_ids", "labels"]}
    base = {
        "input_ids": pa.array([[1, 2, 3, 0], [4, 5, 0, 0]], pa.list_(pa.int64())),
        "labels": pa.array([[-100, 2, 3, -100], [-100, 5, -100, -100]], pa.list_(pa.int64())),
        "seq_lengths": pa.array([[3], [2]], pa.large_list(pa.int32())),
        "row_index": pa.array([0, 1], pa.int64()),
    }
    values = {k: base[k].to_pylist() for k in ("input_ids", "labels", "row_index")}
    meta = sealed(meta, values, [0, 3, 5], 3)
    back = pv.load(_parquet(tmp_path, base, meta))  # variable-size lists of equal width load
    assert back.input_ids.dtype == np.int64 and back.input_ids.tolist()[1] == [4, 5, 0, 0]
    floats = {**base, "labels": pa.array([[-100, 2.5, 3, -100], [-100, 5, -100, -100]])}
    with pytest.raises(ValueError, match="labels holds double values; packed columns hold int"):
        pv.load(_parquet(tmp_path, floats, meta))
    ragged = {**base, "input_ids": pa.array([[1, 2, 3, 0, 9], [4, 5, 0]], pa.list_(pa.int64()))}
    with pytest.raises(ValueError, match="input_ids row 0 has 5 slots but max_len is 4; rows of"):
        pv.load(_parquet(tmp_path, ragged, meta))
    nulls = {**base, "input_ids": pa.array([[1, 2, 3, 0], None], pa.list_(pa.int64()))}
    with pytest.raises(ValueError, match="input_ids"):
        pv.load(_parquet(tmp_path, nulls, meta))


def test_npz_members_that_inflate_past_the_limit(tmp_path, monkeypatch):
    from packviz import _formats

    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, input_ids=np.zeros((2000, 1000), np.int64), metadata=np.array("{}"))
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(_formats, "MAX_INFLATED_BYTES", 1 << 20)
    with pytest.raises(ValueError, match="inflate to 16,000,128 bytes, over the 1,048,576-byte"):
        pv.load(path)
    with pytest.raises(ValueError, match="is compressed; pv.open maps only uncompressed"):
        pv.open(path)


def test_npy_headers_that_declare_more_than_they_hold(tmp_path, arrays):
    data = bytearray(pv.to_bytes(arrays, "npz"))
    # the .npy header of input_ids declares (5, 16); make it declare ten times that
    at = data.index(b"'shape': (5, 16)")
    data[at : at + 16] = b"'shape': (5,160)"
    path = tmp_path / "rows.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"member input_ids.npy declares [\d,]+ bytes of data but"):
        pv.load(path)


class Odd:
    pass


@pytest.mark.parametrize(
    "metadata, error, message",
    [
        ({"x": {1, 2}}, TypeError, r"metadata metadata.x is a set, which JSON cannot hold"),
        ({"x": Odd()}, TypeError, "metadata metadata.x is a Odd"),
        ({"x": b"raw"}, TypeError, "metadata metadata.x is a bytes"),
        ({"x": [1, float("nan")]}, ValueError, r"metadata metadata.x\[1\] is nan; JSON has no NaN"),
        ({3: "three"}, TypeError, "has the key 3; JSON keys are strings"),
        ("notes", TypeError, "metadata must be a dict, got str"),
    ],
)
def test_non_json_metadata_is_refused(tmp_path, arrays, metadata, error, message):
    with pytest.raises(error, match=message):
        pv.save(arrays, tmp_path / "rows.npz", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_json_like_numpy_metadata_is_converted(tmp_path, arrays):
    pv.save(arrays, tmp_path / "rows.npz", metadata={"n": np.int64(3), "v": np.arange(2)})
    assert pv.load(tmp_path / "rows.npz").metadata["v"] == [0, 1]


def test_fields_must_name_something(tmp_path, arrays):
    with pytest.raises(ValueError, match="fields is empty; name at least one of input_ids"):
        pv.save(arrays, tmp_path / "rows.npz", fields=[])
    with pytest.raises(TypeError, match=r"fields must be a list of choices \(from input_ids"):
        pv.save(arrays, tmp_path / "rows.npz", fields="input_ids")


def test_metadata_size_limit(tmp_path, arrays, monkeypatch):
    monkeypatch.setattr(export, "MAX_METADATA_BYTES", 1000)
    with pytest.raises(ValueError, match=r"metadata is [\d,]+ bytes as JSON, over the 1,000-byte"):
        pv.save(arrays, tmp_path / "rows.parquet", metadata={"x": "y" * 2000})


def test_what_save_writes_load_reads_at_the_metadata_limit(tmp_path, arrays):
    big = "y" * (export.MAX_METADATA_BYTES - 2000)
    path = tmp_path / "rows.parquet"
    pv.save(arrays, path, metadata={"x": big})
    assert pv.load(path).metadata["x"] == big


def test_npz_arrays_are_aligned_and_writable(tmp_path, arrays):
    path = tmp_path / "rows.npz"
    pv.save(arrays, path)
    back, mapped = pv.load(path), pv.open(path).rows(0, 5)
    for f in pv.FIELDS:
        assert getattr(back, f).flags.writeable, f
        assert getattr(mapped, f).ctypes.data % 64 == 0, f  # aligned in the file


@given(st.sampled_from(pv.FORMATS), st.data())
@settings(max_examples=40)
def test_damaged_files_give_the_original_or_a_value_error(fmt, data):
    """Any byte changed, cut or added: either exactly the arrays and metadata that were
    saved (the change hit bytes that carry nothing, a timestamp say) or a ValueError with
    a message — never other arrays, another exception or a crash. A changed token id
    that still obeys every rule is caught by the content checksum."""
    a = pv.materialize(pv.pack([5, 3, 9, 1], 8), [np.arange(n) + 1 for n in [5, 3, 9, 1]], pad_id=0)
    original = pv.to_bytes(a, fmt, metadata={"note": "kept"})
    want = pv.from_bytes(original, fmt)
    raw = bytearray(original)
    if fmt == "parquet":  # the column chunks: between the magic and the footer
        lo, hi = 4, len(raw) - 8 - int.from_bytes(raw[-8:-4], "little")
    else:  # the token ids, stored as they are
        lo = raw.index(a.input_ids.tobytes())
        hi = lo + a.input_ids.nbytes
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1) | st.integers(lo, hi - 1))
        at = min(at, len(raw) - 1)  # (an earlier cut may have shortened it)
        how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif how == "cut":
            del raw[at : at + data.draw(st.integers(1, 64))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        back = pv.from_bytes(bytes(raw), fmt)
    except ValueError as exc:
        assert str(exc)
    else:
        assert_same(want, back)
        assert back.metadata == want.metadata


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_a_changed_token_that_obeys_every_rule_is_refused(tmp_path, arrays, fmt, monkeypatch):
    """The input id at a piece start (its label is -100, so no rule ties it to anything)
    and a metadata value: only the content checksum can tell."""
    saved = pv.to_bytes(arrays, fmt, metadata={"note": "kept"})
    checksum = pv.from_bytes(saved, fmt).metadata["checksum"]
    assert checksum.startswith("sha256:")
    ids = arrays.input_ids.copy()
    ids[0, 0] ^= 1  # row 0, slot 0: a piece start
    with monkeypatch.context() as m:  # files changed after writing: the old checksum kept
        m.setattr(export, "_with_checksum", lambda payload, meta: {**meta, "checksum": checksum})
        changed = [
            pv.to_bytes(dataclasses.replace(arrays, input_ids=ids), fmt, metadata={"note": "kept"}),
            pv.to_bytes(arrays, fmt, metadata={"note": "kep7"}),
        ]
    for data in changed:
        with pytest.raises(ValueError, match="the content does not match its checksum"):
            pv.from_bytes(data, fmt)
    path = tmp_path / f"rows.{fmt}"
    path.write_bytes(changed[0])
    with pytest.raises(ValueError, match=f"{path}: the content does not match its checksum"):
        pv.load(path)
