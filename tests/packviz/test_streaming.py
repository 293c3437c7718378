"""packviz.streaming: the same number of batches on every rank, each row at most once
per epoch (exactly once with padding) across ranks and DataLoader workers, seeded
shuffles that read each parquet row group once, passes that start at the epoch's first
row, and resuming at exactly the next row."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import packviz as pv
from packviz import _formats, export
from packviz.streaming import PADDING, PackedIterableDataset, shard_paths


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """83 rows in three shards of three formats (parquet in row groups of 4 rows)."""
    out = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 30, size=90)
    ids = [rng.integers(0, 10_000, n) for n in lengths]
    plan = pv.pack(lengths, 16)
    a = pv.materialize(plan, ids, pad_id=0)
    with pytest.MonkeyPatch.context() as m:  # (a module-scoped fixture)
        m.setattr(export, "_PARQUET_GROUP_BYTES", 4 * 4 * 16 * 4)
        cuts = [0, 15, 35, a.n_rows]
        for k, fmt in enumerate(["parquet", "npz", "pt"]):
            rows = pv.materialize(plan, ids, pad_id=0, rows=range(cuts[k], cuts[k + 1]))
            pv.save(rows, out / f"shard-{k:05d}.{fmt}")
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
    """83 rows on 2 ranks: 41 each, and the last row of the epoch's order sits it out."""
    out, a = shards
    table = row_numbers(a)
    seen = []
    for rank in range(2):
        ds = PackedIterableDataset(out, rank=rank, world_size=2, shuffle=shuffle, seed=7)
        ds.set_epoch(3)
        loader = ds.loader(4, num_workers=2, collate_fn=pv.collate_with("dense"))
        got = taken(loader, table)
        assert got == ds.order().tolist()  # in the rank's order, whatever the workers
        assert len(got) == len(ds) == 41
        seen += got
    everything = np.arange(a.n_rows)
    if shuffle:
        everything = PackedIterableDataset(out, shuffle=True, seed=7)
        everything.set_epoch(3)
        everything = everything.order()
    assert seen == everything[:82].tolist()  # all but the last of the epoch's order
    # a DataLoader built by hand also gets each row once (but cannot be resumed exactly)
    hand = []
    for rank in range(2):
        ds = PackedIterableDataset(out, rank=rank, world_size=2, shuffle=shuffle, seed=7)
        ds.set_epoch(3)
        loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=pv.collate_with("dense"))
        hand += taken(loader, table)  # (the workers warn that progress is not tracked)
    assert sorted(hand) == sorted(everything[:82].tolist())


def test_padding_evens_the_ranks_with_every_row_once(shards):
    out, a = shards
    seen, counts = [], []
    for rank in range(2):
        ds = PackedIterableDataset(out, rank=rank, world_size=2, shuffle=True, uneven="pad")
        batches = list(ds.loader(4, num_workers=2, collate_fn=pv.collate_with("flattened")))
        counts.append(len(batches))
        assert len(ds) == 42
        order = ds.order().tolist()  # 83 = 41 + 42: rank 0 gets a padding row, first
        if rank == 0:
            assert order[0] == PADDING and PADDING not in order[1:]
        else:
            assert PADDING not in order
        seen += [r for r in order if r != PADDING]
        tokens = sum(int(b["cu_seq_lens_q"][-1]) for b in batches)
        assert tokens == int((a.doc_ids[[r for r in order if r != PADDING]] >= 0).sum())
    assert counts == [11, 11]
    assert sorted(seen) == list(range(a.n_rows))
    pad = next(iter(PackedIterableDataset(out, world_size=2, uneven="pad")))
    assert pad["labels"].tolist() == [-100] * 16 and pad["attention_mask"].tolist() == [0] * 16
    assert pad["input_ids"].dtype == a.input_ids.dtype  # a default collate stacks it


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


# --- equal batches per rank, passes, peeking, uneven row groups --------------------------


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """Files of 1 to 12 rows; row i holds the one document [i + 1] (so ids name rows)."""
    out = tmp_path_factory.mktemp("small")
    paths = {}
    for n in range(1, 13):
        a = pv.materialize(
            pv.pack([1] * n, 4, strategy="padded", sort="none"),
            [[i + 1] for i in range(n)],
            pad_id=0,
        )
        assert a.input_ids[:, 0].tolist() == list(range(1, n + 1))
        paths[n] = out / f"rows{n}.npz"
        pv.save(a, paths[n])
    return paths


def ids_of(loader):
    """Per batch, the row numbers it holds (PADDING for a padding row)."""
    return [
        [
            int(r) - 1 if m else PADDING
            for r, m in zip(b["input_ids"][:, 0], b["attention_mask"][:, 0], strict=True)
        ]
        for b in loader
    ]


def collate_rows(items):
    """Stack the items as they are (the ranks' rows, padding included)."""
    return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}


@given(
    n_rows=st.integers(1, 12),
    world_size=st.integers(1, 5),
    batch_size=st.integers(1, 4),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    uneven=st.sampled_from(["drop", "pad"]),
)
@settings(max_examples=60, deadline=None)
def test_every_rank_gets_the_same_number_of_batches(
    small_files, n_rows, world_size, batch_size, drop_last, shuffle, uneven
):
    """DDP steps in lockstep: a rank with one batch more would wait forever. "drop" trains
    the first world_size * (n_rows // world_size) rows of the epoch's order, each once;
    "pad" trains every row once, the short ranks padded."""
    if uneven == "drop" and n_rows < world_size:
        with pytest.raises(ValueError, match=f"{n_rows} rows cannot give each of {world_size}"):
            PackedIterableDataset(small_files[n_rows], world_size=world_size)
        return
    batches, rows, orders = [], [], []
    for rank in range(world_size):
        ds = PackedIterableDataset(
            small_files[n_rows], rank=rank, world_size=world_size, shuffle=shuffle, uneven=uneven
        )
        got = ids_of(ds.loader(batch_size, drop_last=drop_last, collate_fn=collate_rows))
        batches.append(len(got))
        rows += [r for b in got for r in b if r != PADDING]
        orders.append(ds.order())
        assert [r for b in got for r in b] == ds.order().tolist()[: len(got) * batch_size]
    assert len(set(batches)) == 1, batches
    whole = PackedIterableDataset(small_files[n_rows], shuffle=shuffle).order()
    if uneven == "drop":
        want = whole[: world_size * (n_rows // world_size)]
    else:
        want = whole
    if not drop_last:
        assert sorted(rows) == sorted(want.tolist())
    real = np.concatenate(orders)
    assert sorted(real[real != PADDING].tolist()) == sorted(want.tolist())
    assert len(rows) == len(set(rows))  # never a row twice


def test_drop_last_passes_every_epoch(small_files):
    ds = PackedIterableDataset(small_files[5])
    loader = ds.loader(2, drop_last=True, collate_fn=collate_rows)
    for _ in range(3):  # each pass is a whole epoch: no pass left empty
        assert ids_of(loader) == [[0, 1], [2, 3]]
        assert ds.state_dict()["rows_taken"] == 5  # ran to the end: the epoch is over
    ds.set_epoch(1)
    assert ids_of(loader) == [[0, 1], [2, 3]]


def test_a_peek_does_not_shorten_the_next_pass(small_files):
    ds = PackedIterableDataset(small_files[5])
    next(iter(ds))
    assert ds.state_dict()["rows_taken"] == 1  # what was handed out
    assert len(list(ds)) == 5  # a fresh pass starts at the epoch's first row
    loader = ds.loader(2, collate_fn=collate_rows)
    next(iter(loader))
    assert ds.state_dict()["rows_taken"] == 2
    assert ids_of(loader) == [[0, 1], [2, 3], [4]]


def test_only_load_state_dict_resumes_and_only_once(small_files):
    ds = PackedIterableDataset(small_files[7], shuffle=True)
    it = iter(ds.loader(2, collate_fn=collate_rows))
    head = ids_of([next(it), next(it)])
    state = ds.state_dict()
    assert state["rows_taken"] == 4
    again = PackedIterableDataset(small_files[7], shuffle=True)
    again.load_state_dict(state)
    loader = again.loader(2, collate_fn=collate_rows)
    rest = ids_of(loader)
    whole = ids_of(loader)  # the next pass: from the first row again
    assert head + rest == whole
    finished = again.state_dict()
    assert finished["rows_taken"] == 7
    again.load_state_dict(finished)  # resumed after the last batch: nothing left this epoch
    assert list(again) == []
    again.set_epoch(1)
    assert len(list(again)) == 7


def test_load_state_dict_says_what_is_wrong(small_files):
    ds = PackedIterableDataset(small_files[5])
    state = ds.state_dict()
    with pytest.raises(ValueError, match="the state has no epoch, rows_taken; pass what state_di"):
        ds.load_state_dict({k: v for k, v in state.items() if k not in ("epoch", "rows_taken")})
    with pytest.raises(TypeError, match="takes the dict state_dict\\(\\) returned, got NoneType"):
        ds.load_state_dict(None)
    with pytest.raises(ValueError, match="saved with uneven='pad', this dataset has 'drop'"):
        ds.load_state_dict({**state, "uneven": "pad"})
    with pytest.raises(ValueError, match="rows_taken must be an integer >= 0, got -1"):
        ds.load_state_dict({**state, "rows_taken": -1})
    with pytest.raises(ValueError, match="unknown uneven 'repeat'; choose one of drop, pad"):
        PackedIterableDataset(small_files[5], uneven="repeat")


@pytest.fixture(scope="module")
def uneven_groups(tmp_path_factory):
    """A parquet shard of row groups of 50, 10, 50, 10, ... rows, and an npz shard."""
    import pyarrow.parquet as pq

    out = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 400)
    a = pv.materialize(pv.pack(lengths, 32), [rng.integers(1, 99, n) for n in lengths], pad_id=0)
    pv.save(a, out / "whole.parquet")
    table = pq.read_table(out / "whole.parquet")
    sizes = [50, 10, 50, 10, 50, 10, 25]
    assert sum(sizes) == table.num_rows
    with pq.ParquetWriter(out / "a.parquet", table.schema) as w:
        at = 0
        for n in sizes:
            w.write_table(table.slice(at, n), row_group_size=n)
            at += n
    pv.save(
        pv.materialize(pv.pack(lengths[:40], 32), [[1] * n for n in lengths[:40]], pad_id=0),
        out / "b.npz",
    )
    (out / "whole.parquet").unlink()
    return out, np.cumsum([0, *sizes])


def test_parquet_row_groups_of_any_size_are_read_once_per_pass(uneven_groups, monkeypatch):
    out, starts = uneven_groups
    assert pv.open(out / "a.parquet").read_starts.tolist() == starts.tolist()
    decodes = []
    window = _formats._Parquet.window
    monkeypatch.setattr(
        _formats._Parquet, "window", lambda self, lo, hi: decodes.append(lo) or window(self, lo, hi)
    )
    ds = PackedIterableDataset(out / "a.parquet", shuffle=True)
    assert len(list(ds)) == starts[-1]
    assert sorted(decodes) == starts[:-1].tolist()  # each group once
    order = ds.order()
    assert sorted(order.tolist()) == list(range(starts[-1]))
    group = np.searchsorted(starts, order, side="right")
    assert np.count_nonzero(np.diff(group)) == len(starts) - 2  # each group one run
    assert order.tolist() != list(range(starts[-1]))


def test_a_mixed_directory_shuffles_groups_and_rows(uneven_groups):
    out, starts = uneven_groups
    ds = PackedIterableDataset(out, shuffle=True, seed=3)
    n = int(starts[-1])
    order = ds.order()
    assert sorted(order.tolist()) == list(range(ds.n_rows)) and ds.n_rows > n
    group = np.searchsorted(starts, order[order < n], side="right")
    assert np.count_nonzero(np.diff(group)) == len(starts) - 2  # parquet groups kept whole
    npz_rows = order[order >= n]
    assert sorted(npz_rows.tolist()) == list(range(n, ds.n_rows))
    assert npz_rows.tolist() != sorted(npz_rows.tolist())  # npz rows shuffled among them
    ds.set_epoch(1)
    assert not np.array_equal(ds.order(), order)
