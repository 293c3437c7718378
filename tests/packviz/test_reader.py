"""packviz.reader: `pv.open` gives what `pv.load` gives, window by window, checked, with
memory bounded by a window (measured in subprocesses)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from packed_files import raw_bytes, sealed

import packviz as pv
from packviz import export

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def arrays():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 40, size=60)
    ids = [rng.integers(0, 1000, n) for n in lengths]
    return pv.materialize(pv.pack(lengths, 32), ids, pad_id=0)


@pytest.fixture
def small_groups(monkeypatch):
    monkeypatch.setattr(export, "_PARQUET_GROUP_BYTES", 4 * 4 * 32 * 5)  # 5 rows per group


def same_rows(a, b):
    for f in pv.FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        assert getattr(a, f).dtype == getattr(b, f).dtype
    np.testing.assert_array_equal(a.row_index, b.row_index)


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_open_gives_what_load_gives(tmp_path, arrays, fmt, small_groups):
    path = tmp_path / f"rows.{fmt}"
    pv.save(arrays, path, metadata={"note": "x"})
    f = pv.open(path)
    assert (len(f), f.max_len, f.fields) == (arrays.n_rows, 32, pv.FIELDS)
    assert f.metadata["note"] == "x"
    whole = pv.load(path)
    same_rows(f.read(), whole)
    window = f.rows(7, 19)
    same_rows(window, _sub(whole, 7, 19))
    np.testing.assert_array_equal(
        window.cu_seqlens, pv.cu_seqlens_from_doc_ids(whole.doc_ids[7:19])[0]
    )
    idx = np.array([30, 2, 2, 17, 9, arrays.n_rows - 1])
    same_rows(f.take(idx), _sub(whole, idx))
    same_rows(f.rows(arrays.n_rows - 3, arrays.n_rows + 10), _sub(whole, arrays.n_rows - 3, None))
    assert f.rows(5, 5).n_rows == 0 and f.take([]).n_rows == 0
    if fmt == "parquet":
        assert f.read_unit == 5  # read by row groups
    else:
        assert f.read_unit == 1  # mapped
    with pytest.raises(IndexError):
        f.take([arrays.n_rows])


def _sub(a, start, stop=None):
    pick = slice(start, stop) if not isinstance(start, np.ndarray) else start
    return dataclasses.replace(a, **{f: getattr(a, f)[pick] for f in (*pv.FIELDS, "row_index")})


def test_npz_and_pt_are_memory_mapped(tmp_path, arrays):
    for fmt in ("npz", "pt"):
        path = tmp_path / f"rows.{fmt}"
        pv.save(arrays, path)
        window = pv.open(path).rows(0, 4)
        assert not window.input_ids.flags.owndata  # a view into the mapping
        assert str(path) in Path(f"/proc/{os.getpid()}/maps").read_text(), fmt


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_open_files_pickle_as_their_path(tmp_path, arrays, fmt):
    path = tmp_path / f"rows.{fmt}"
    pv.save(arrays, path)
    f = pv.open(path)
    data = pickle.dumps(f)
    assert len(data) < 1000  # not the rows
    same_rows(pickle.loads(data).rows(3, 9), f.rows(3, 9))


@pytest.mark.parametrize("fmt", ["npz", "pt", "parquet"])
def test_a_broken_row_is_refused_when_read(tmp_path, arrays, fmt, small_groups):
    lab = arrays.labels.copy()
    lab[12, 0] = arrays.input_ids[12, 0]  # a target at a piece start, in row 12 only
    path = tmp_path / f"rows.{fmt}"
    path.write_bytes(raw_bytes(dataclasses.replace(arrays, labels=lab), fmt))
    f = pv.open(path)  # opening reads no rows
    f.rows(0, 10)
    with pytest.raises(ValueError, match=rf"{path}: labels at row 12, slot 0 is \d+ where a piece"):
        f.rows(10, 20)
    with pytest.raises(ValueError, match="labels at row 12, slot 0"):
        f.take([3, 12])
    with pytest.raises(ValueError, match="labels at row 12, slot 0"):
        pv.load(path)


def test_parquet_seq_lengths_that_disagree_with_the_doc_ids_are_refused(tmp_path, arrays):
    """A file whose seq_lengths were changed (same row total, other cuts) fails `pv.open`
    when the row is read, as it fails `pv.load`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pv.save(arrays, path)
    table = pq.read_table(path)
    lengths = table.column("seq_lengths").to_pylist()
    row = next(r for r, lens in enumerate(lengths) if len(set(lens)) > 1)
    lengths[row] = lengths[row][::-1]  # same tokens, other piece lengths
    column = pa.array(lengths, pa.large_list(pa.int32()))
    table = table.set_column(table.schema.get_field_index("seq_lengths"), "seq_lengths", column)
    pq.write_table(table, path)
    with pytest.raises(ValueError, match="cu_seqlens gives piece .* but its run of doc_ids has"):
        pv.load(path)
    f = pv.open(path)
    with pytest.raises(ValueError, match=f"{path}: cu_seqlens gives piece .* run of doc_ids"):
        f.rows(row, row + 1)
    with pytest.raises(ValueError, match="cu_seqlens gives piece"):
        f.row(row)
    f.rows(0, row)  # the rows before it are fine


def test_row_numbers_are_integers_in_range(tmp_path, arrays):
    path = tmp_path / "rows.npz"
    pv.save(arrays, path)
    f = pv.open(path)
    n = arrays.n_rows
    assert f.rows(n - 2, n + 5).n_rows == 2 and f.rows(n + 1, n + 3).n_rows == 0
    for start, stop in ((-1, 3), (0, -1), (5, 4)):
        with pytest.raises(ValueError, match=f"0 <= start <= stop, got start={start}, stop"):
            f.rows(start, stop)
    with pytest.raises(TypeError, match="start must be an integer row number, got 1.5"):
        f.rows(1.5, 3)
    with pytest.raises(TypeError, match="row indices must be integers, got float64"):
        f.take([1.7])
    with pytest.raises(TypeError, match="row indices must be integers, got bool"):
        f.take([True])
    with pytest.raises(IndexError, match=rf"row indices must be in \[0, {n}\)"):
        f.take([-1])
    with pytest.raises(TypeError, match="row must be an integer row number, got 2.0"):
        f.row(2.0)
    assert f.take(np.array([2], np.uint8)).input_ids.tolist() == [arrays.input_ids[2].tolist()]


def test_compressed_npz_is_read_whole_not_mapped(tmp_path, arrays):
    path = tmp_path / "rows.npz"
    payload = export._payload(arrays, pv.FIELDS)
    meta = {"fields": list(pv.FIELDS), "max_len": 32}
    meta = sealed(meta, payload, payload["cu_seqlens"], payload["max_seqlen"])
    np.savez_compressed(path, **payload, metadata=np.array(json.dumps(meta)))
    same_rows(pv.load(path), arrays)
    with pytest.raises(ValueError, match="input_ids.npy is compressed; pv.open maps only"):
        pv.open(path)


def test_a_file_without_doc_ids_has_no_windows(tmp_path, arrays):
    path = tmp_path / "rows.npz"
    pv.save(arrays, path, fields=["input_ids", "labels"])
    with pytest.raises(ValueError, match="has no doc_ids, so a window of its rows has no"):
        pv.open(path).rows(0, 2)
    parquet = tmp_path / "rows.parquet"  # parquet keeps seq_lengths: windows work
    pv.save(arrays, parquet, fields=["input_ids", "labels"])
    assert (
        pv.open(parquet).rows(0, 2).cu_seqlens.tolist()
        == arrays.cu_seqlens[: len(pv.cu_seqlens_from_doc_ids(arrays.doc_ids[:2])[0])].tolist()
    )
    with pytest.raises(ValueError, match="training needs all four fields"):
        pv.PackedDataset(pv.open(parquet))


# --- memory: a file ten times the budget, iterated in a fresh process ----------------

PROBE = """
import json, sys, threading, time
import packviz as pv

def anon():  # resident anonymous memory (mapped file pages are page cache, not counted)
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

def loader(path, how):
    if how == "map":
        from torch.utils.data import DataLoader
        ds = pv.PackedDataset(pv.open(path))
        return DataLoader(ds, batch_size=8, collate_fn=pv.collate_with("flattened"))
    ds = pv.PackedIterableDataset(path, shuffle=True)
    return ds.loader(8, collate_fn=pv.collate_with("flattened"))

small, big, how = sys.argv[1:4]
for batch in loader(small, how):  # warm up: imports, allocator arenas, first row groups
    pass
base = anon()
peak, done = [base], []
def sample():
    while not done:
        peak[0] = max(peak[0], anon())
        time.sleep(0.0005)
thread = threading.Thread(target=sample)
thread.start()
rows = sum(int(b["cu_seq_lens_q"].numel()) - 1 for b in loader(big, how))
done.append(1)
thread.join()
batch_bytes = sum(v.nbytes for v in batch.values() if hasattr(v, "nbytes"))
print(json.dumps({"growth": peak[0] - base, "pieces": rows, "batch_bytes": batch_bytes}))
"""


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    """The same ~40 MiB of rows (512 slots) in each format, and a small file to warm up."""
    out = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    with pytest.MonkeyPatch.context() as m:  # (a module-scoped fixture)
        m.setattr(export, "_PARQUET_GROUP_BYTES", 256 << 10)
        for name, n_docs in (("small", 600), ("big", 8000)):
            lengths = rng.integers(1, 700, size=n_docs)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            values = rng.integers(0, 50_000, size=int(offsets[-1]), dtype=np.int32)
            a = pv.materialize(pv.pack(lengths, 512), pv.TokenIds(values, offsets), pad_id=0)
            for fmt in pv.FORMATS:
                pv.save(a, out / f"{name}.{fmt}")
    return out, int(a.cu_seqlens.size - 1)


@pytest.mark.parametrize(
    "fmt, how", [("npz", "map"), ("pt", "iter"), ("parquet", "map"), ("parquet", "iter")]
)
def test_memory_stays_within_a_tenth_of_the_file(big_files, fmt, how):
    out, pieces = big_files
    budget = (out / "big.npz").stat().st_size // 10  # the rows' bytes / 10: ~5.6 MB
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", PROBE, str(out / f"small.{fmt}"), str(out / f"big.{fmt}"), how]
    got = json.loads(
        subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    )
    assert got["pieces"] == pieces  # every row was read
    assert got["growth"] <= budget + got["batch_bytes"], (got, budget)
