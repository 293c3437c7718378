"""packviz.streaming: every row exactly once per epoch across ranks and DataLoader
workers, seeded shuffles, and resuming at exactly the next row."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import packviz as pv
from packviz import export
from packviz.streaming import PackedIterableDataset, shard_paths


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """83 rows in three shards of three formats (parquet in row groups of 4 rows)."""
    out = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 30, size=90)
    ids = [rng.integers(0, 10_000, n) for n in lengths]
    plan = pv.pack(lengths, 16)
    a = pv.materialize(plan, ids, pad_id=0)
    saved = export._PARQUET_GROUP_BYTES
    export._PARQUET_GROUP_BYTES = 4 * 4 * 16 * 4
    try:
        cuts = [0, 15, 35, a.n_rows]
        for k, fmt in enumerate(["parquet", "npz", "pt"]):
            rows = pv.materialize(plan, ids, pad_id=0, rows=range(cuts[k], cuts[k + 1]))
            pv.save(rows, out / f"shard-{k:05d}.{fmt}")
    finally:
        export._PARQUET_GROUP_BYTES = saved
    (out / "manifest.json").write_text("{}")
    (out / ".shard-00003.npz.1234.partial").write_bytes(b"half a file")
    return out, a


def row_numbers(a):
    """input_ids row -> plan row number (the rows are all different)."""
    table = {tuple(r): i for i, r in enumerate(a.input_ids.tolist())}
    assert len(table) == a.n_rows
    return table


def taken(batches, table):
    return [table[tuple(r)] for b in batches for r in b["input_ids"].tolist()]


def test_shards_in_sorted_order(shards):
    out, a = shards
    assert [p.name for p in shard_paths(out)] == [
        f"shard-0000{k}.{f}" for k, f in enumerate(["parquet", "npz", "pt"])
    ]
    ds = PackedIterableDataset(out)
    assert len(ds) == ds.n_rows == a.n_rows == 83
    assert taken(
        DataLoader(ds, batch_size=5, collate_fn=pv.collate_with("dense")), row_numbers(a)
    ) == list(range(a.n_rows))


@pytest.mark.parametrize("shuffle", [False, True])
def test_each_row_once_across_ranks_and_workers(shards, shuffle):
    out, a = shards
    table = row_numbers(a)
    seen = []
    for rank in range(2):
        ds = PackedIterableDataset(out, rank=rank, world_size=2, shuffle=shuffle, seed=7)
        ds.set_epoch(3)
        loader = ds.loader(4, num_workers=2, collate_fn=pv.collate_with("dense"))
        got = taken(loader, table)
        assert got == ds.order().tolist()  # in the rank's order, whatever the workers
        assert len(got) == len(ds) in (41, 42)
        seen += got
    assert sorted(seen) == list(range(a.n_rows))
    # a DataLoader built by hand also gets each row once (but cannot be resumed exactly)
    hand = []
    for rank in range(2):
        ds = PackedIterableDataset(out, rank=rank, world_size=2, shuffle=shuffle, seed=7)
        loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=pv.collate_with("dense"))
        hand += taken(loader, table)  # (the workers warn that progress is not tracked)
    assert sorted(hand) == list(range(a.n_rows))


def test_shuffles_are_seeded_per_epoch(shards):
    out, a = shards
    ds = PackedIterableDataset(out, shuffle=True, seed=1)
    first = ds.order()
    assert sorted(first.tolist()) == list(range(a.n_rows)) and first.tolist() != list(
        range(a.n_rows)
    )
    assert np.array_equal(PackedIterableDataset(out, shuffle=True, seed=1).order(), first)
    assert not np.array_equal(PackedIterableDataset(out, shuffle=True, seed=2).order(), first)
    ds.set_epoch(1)
    assert not np.array_equal(ds.order(), first)
    # the parquet shard (rows 0-14, groups of 4) is read a row group at a time
    pos = {r: i for i, r in enumerate(first.tolist())}
    for g in range(0, 15, 4):
        at = sorted(pos[r] for r in range(g, min(g + 4, 15)))
        assert at == list(range(at[0], at[0] + len(at)))


@pytest.mark.parametrize("workers_before, workers_after", [(2, 2), (2, 0), (0, 2)])
def test_resume_at_exactly_the_next_row(shards, workers_before, workers_after):
    out, a = shards
    table = row_numbers(a)
    collate = pv.collate_with("dense")

    def dataset():
        ds = PackedIterableDataset(out, rank=1, world_size=2, shuffle=True, seed=5)
        ds.set_epoch(2)
        return ds

    whole = taken(dataset().loader(3, num_workers=2, collate_fn=collate), table)
    ds = dataset()
    loader = ds.loader(3, num_workers=workers_before, collate_fn=collate)
    first = []
    for i, batch in enumerate(loader):
        first += taken([batch], table)
        if i == 3:
            state = ds.state_dict()
            break
    assert state["rows_taken"] == 12 and state["epoch"] == 2
    state = pickle.loads(pickle.dumps(state))
    again = dataset()
    again.load_state_dict(state)
    again.set_epoch(2)  # the loop calls it again on resuming: same epoch, same place
    rest = taken(again.loader(3, num_workers=workers_after, collate_fn=collate), table)
    assert first + rest == whole
    assert again.state_dict()["rows_taken"] == len(again)
    again.set_epoch(3)
    assert again.state_dict()["rows_taken"] == 0


def test_resume_when_iterating_in_process(shards):
    out, a = shards
    ds = PackedIterableDataset(out, shuffle=True)
    it = iter(ds)
    head = [next(it)["input_ids"].tolist() for _ in range(10)]
    assert ds.state_dict()["rows_taken"] == 10
    again = PackedIterableDataset(out, shuffle=True)
    again.load_state_dict(ds.state_dict())
    rest = [item["input_ids"].tolist() for item in again]
    full = [item["input_ids"].tolist() for item in PackedIterableDataset(out, shuffle=True)]
    assert head + rest == full


def test_errors(shards, tmp_path):
    out, a = shards
    with pytest.raises(ValueError, match="rank must be below world_size 2, got 2"):
        PackedIterableDataset(out, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size must be an integer >= 1"):
        PackedIterableDataset(out, world_size=0)
    ds = PackedIterableDataset(out, shuffle=True, seed=1)
    with pytest.raises(ValueError, match="saved with seed=2, this dataset has 1"):
        ds.load_state_dict({**ds.state_dict(), "seed": 2})
    with pytest.raises(ValueError, match="persistent_workers would keep"):
        ds.loader(2, num_workers=1, persistent_workers=True)
    with pytest.raises(ValueError, match="holds no .npz, .pt or .parquet shards"):
        PackedIterableDataset(tmp_path)
    pv.save(pv.materialize(pv.pack([3], 8), [[1, 2, 3]], pad_id=0), tmp_path / "a.npz")
    pv.save(pv.materialize(pv.pack([3], 4), [[1, 2, 3]], pad_id=0), tmp_path / "b.npz")
    with pytest.raises(ValueError, match=r"the shards have different max lengths \[4, 8\]"):
        PackedIterableDataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        PackedIterableDataset(tmp_path / "nothing.npz")


def test_is_a_torch_iterable_dataset_yielding_model_inputs(shards):
    out, _ = shards
    ds = pv.PackedIterableDataset(out)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    assert list(next(iter(ds))) == ["input_ids", "labels", "position_ids", "attention_mask"]
