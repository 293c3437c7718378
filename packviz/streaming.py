"""Stream packed rows from files or shard directories to many GPUs, resumably.

`PackedIterableDataset` reads rows lazily (`packviz.open`), so a corpus larger than
memory trains with bounded memory. One epoch is a fixed *order* of all rows (the shards
in sorted name order, one after another; shuffled with a seed per epoch), cut into
``world_size`` contiguous shares; rank ``r`` takes share ``r``. Within a rank, the order
is cut into chunks of ``batch_size`` rows dealt round-robin to the DataLoader's workers
— so the in-order DataLoader hands the rank's rows in exactly the rank's order, whatever
the worker count, and "rows taken so far" is the whole state::

    epoch order     r0 r1 r2 r3 r4 r5 r6 r7 | r8 r9 ...   (world_size 2: rank 0's share)
    batch_size 2    [r0 r1] [r2 r3] [r4 r5] [r6 r7]
    2 workers       w0      w1      w0      w1     -> the loader yields them in order

Every rank yields the same number of rows, hence of batches: with DDP each step is a
collective, and a rank with one batch more waits forever for the others. When the rows
do not divide evenly (``n_rows % world_size`` left over), ``uneven`` chooses:

- ``"drop"`` (default): each rank takes ``n_rows // world_size`` rows; the last
  ``n_rows % world_size`` rows of the epoch's order (fewer than ``world_size``) are not
  trained that epoch. Shuffled, they are other rows every epoch; unshuffled, always the
  last rows of the last shard. Every row trained is trained exactly once per epoch.
- ``"pad"``: the short ranks get one padding row first (input ids 0, labels all -100,
  ``attention_mask`` all 0): loss-neutral beside real rows, and every row is seen exactly
  once — for evaluation. A batch can still be padding only (``batch_size`` 1, or fewer
  rows than ranks): it has no targets, so a loss averaged over it is NaN; sum the losses
  and the target counts over ranks instead.

Shuffling permutes rows over the whole epoch for memory-mapped files (``.npz``,
``.pt``: any row costs the same). Parquet is read by row groups, so there each row
group (as the file cuts them: groups may differ in size) is a block: blocks are
permuted, then the rows within each, and each group is decoded once per pass.

A pass starts at the epoch's first row, except right after `load_state_dict`, which
resumes where the state says; running a pass to the end finishes the epoch. `state_dict`
counts the rows the training loop has taken: iterate the dataset itself, or a
DataLoader from `PackedIterableDataset.loader` (which counts batches as the loop takes
them — worker processes cannot see that). A DataLoader built by hand still gets each
row of the rank's share once, but its progress is invisible to the dataset.

Example:
    >>> import os, tempfile
    >>> import packviz as pv
    >>> docs = [[6, 7, 8, 9], [1, 2, 3], [10], [4, 5], [11, 12]]
    >>> a = pv.materialize(pv.pack([len(d) for d in docs], 4), docs, pad_id=0)
    >>> a.input_ids.tolist()  # three rows for two ranks
    [[6, 7, 8, 9], [1, 2, 3, 10], [4, 5, 11, 12]]
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npz")
    >>> pv.save(a, path)
    >>> ds = PackedIterableDataset(path, rank=1, world_size=2)
    >>> [item["input_ids"].tolist() for item in ds]  # the third row sits this epoch out
    [[1, 2, 3, 10]]
    >>> ds.state_dict()["rows_taken"]
    1
    >>> evens = PackedIterableDataset(path, rank=0, world_size=2, uneven="pad")
    >>> [(item["input_ids"].tolist(), item["labels"].tolist()) for item in evens][0]
    ([0, 0, 0, 0], [-100, -100, -100, -100])
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from packviz.choices import FORMATS, UNEVEN_SPLITS, UnevenSplit, check_choice
from packviz.reader import MissingFileError, PackedFile
from packviz.reader import open as open_file
from packviz.torch_data import ITEM_KEYS, _need_training_fields, item_of
from packviz.validate import IGNORE_INDEX


def shard_paths(source: str | os.PathLike) -> list[Path]:
    """``source`` itself, or the packed files in a directory in sorted name order
    (hidden and partial files skipped)."""
    path = Path(source)
    if path.is_dir():
        found = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower()[1:] in FORMATS
        )
        if not found:
            raise ValueError(f"{path} holds no .npz, .pt or .parquet shards")
        return found
    if not path.exists():
        raise MissingFileError(f"no file at {path}")
    return [path]


def _count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


#: What `PackedIterableDataset.state_dict` holds; `load_state_dict` needs all of it.
STATE_KEYS = ("epoch", "rows_taken", "seed", "shuffle", "uneven", "rank", "world_size", "n_rows")
#: The keys that must match this dataset for a state to continue the same order.
_SAME = ("seed", "shuffle", "uneven", "rank", "world_size", "n_rows")
#: The row number `order` gives a padding row (``uneven="pad"``).
PADDING = -1


class PackedIterableDataset(IterableDataset):
    """Rows of a packed file or shard directory, split by rank and DataLoader worker:
    the same number of rows on every rank, each row at most once per epoch (exactly once
    with ``uneven="pad"``; module docstring)."""

    def __init__(
        self,
        source: str | os.PathLike,
        *,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        uneven: UnevenSplit = "drop",
    ) -> None:
        self.world_size = _count("world_size", world_size, 1)
        self.rank = _count("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be below world_size {world_size}, got {rank}")
        self.shuffle, self.seed = bool(shuffle), _count("seed", seed, 0)
        self.uneven = check_choice("uneven", uneven, UNEVEN_SPLITS)
        self.paths = shard_paths(source)
        files = [open_file(p) for p in self.paths]
        for f in files:
            _need_training_fields(f.fields, f.name)
        widths = {f.max_len for f in files}
        if len(widths) > 1:
            raise ValueError(f"the shards have different max lengths {sorted(widths)}")
        self._files: list[PackedFile] | None = files
        self._blocks = [f.read_starts for f in files]  # parquet row groups, else None
        self._starts = np.concatenate([[0], np.cumsum([f.n_rows for f in files])]).astype(np.int64)
        self.n_rows = int(self._starts[-1])
        each, left = divmod(self.n_rows, self.world_size)
        if self.uneven == "drop":
            if each == 0:
                raise ValueError(
                    f"{self.n_rows} rows cannot give each of {self.world_size} ranks a row; "
                    "use fewer ranks, or uneven='pad' (padding rows for the ranks without one)"
                )
            self._share = (self.rank * each, (self.rank + 1) * each)
            self._padding = 0
        else:  # contiguous shares that differ by at most a row, the short ones padded
            self._share = (
                self.rank * self.n_rows // self.world_size,
                (self.rank + 1) * self.n_rows // self.world_size,
            )
            self._padding = each + (left > 0) - (self._share[1] - self._share[0])
        self.epoch, self.rows_taken, self.batch_size = 0, 0, 1
        self._resume: int | None = None  # set by load_state_dict: where the next pass starts
        self._start = 0  # where the loader's current pass started (its workers read it)
        self._counted_by_loader = False
        self._pad_item: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        """Rows this rank yields per epoch: the same on every rank (padding included)."""
        return self._share[1] - self._share[0] + self._padding

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (its shuffle): a new epoch starts from its first row; setting
        the current one again (say, after `load_state_dict`) keeps the resume point."""
        epoch = _count("epoch", epoch, 0)
        if epoch != self.epoch:
            self.epoch, self.rows_taken, self._resume = epoch, 0, None

    def state_dict(self) -> dict:
        """Where this rank is: the epoch and how many of its rows the loop has taken
        (`len` once a pass has run to the end), with the settings that fix the order."""
        return {
            "epoch": self.epoch,
            "rows_taken": self.rows_taken,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "uneven": self.uneven,
            "rank": self.rank,
            "world_size": self.world_size,
            "n_rows": self.n_rows,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next pass (iterating the dataset or its `loader`) starts at exactly
        the next row of `state_dict`'s epoch (same files and split). A state taken after
        the epoch's last batch resumes to an empty pass: `set_epoch` the next one."""
        if not isinstance(state, dict):
            raise TypeError(
                f"load_state_dict takes the dict state_dict() returned, got {type(state).__name__}"
            )
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise ValueError(
                f"the state has no {', '.join(missing)}; pass what state_dict() returned"
            )
        for key in _SAME:
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"the state was saved with {key}={state[key]!r}, this dataset has "
                    f"{getattr(self, key)!r}: resuming would not continue the same order"
                )
        self.epoch = _count("epoch", state["epoch"], 0)
        self.rows_taken = min(_count("rows_taken", state["rows_taken"], 0), len(self))
        self._resume = self.rows_taken

    def order(self) -> np.ndarray:
        """This rank's rows of the current epoch, in order (global row numbers;
        `PADDING` for a padding row, which comes first)."""
        if not self.shuffle:
            everything = np.arange(self.n_rows, dtype=np.int64)
        else:
            everything = self._shuffled(np.random.default_rng([self.seed, self.epoch]))
        mine = everything[slice(*self._share)].astype(np.int64)
        return np.concatenate([np.full(self._padding, PADDING, np.int64), mine])

    def _shuffled(self, rng: np.random.Generator) -> np.ndarray:
        """The epoch's order of all rows: a permutation of every row when every shard is
        mapped; else blocks (a parquet row group, or one row of a mapped shard) permuted
        and the rows within each shuffled — all in a few vectorized calls."""
        if all(b is None for b in self._blocks):
            return rng.permutation(self.n_rows)
        firsts = np.concatenate(
            [
                s0 + (np.arange(s1 - s0) if b is None else b[:-1])
                for s0, s1, b in zip(self._starts[:-1], self._starts[1:], self._blocks, strict=True)
            ]
        ).astype(np.int64)
        sizes = np.diff(np.append(firsts, self.n_rows))
        picked = rng.permutation(firsts.size)
        size = sizes[picked]
        begin = np.cumsum(size) - size  # where each picked block starts in the output
        block = np.repeat(np.arange(picked.size), size)
        rows = np.repeat(firsts[picked] - begin, size) + np.arange(self.n_rows)
        within = np.lexsort((rng.random(self.n_rows), block))  # shuffled inside blocks
        return rows[within]

    def _begin(self) -> int:
        """Where a new pass starts: the resume point once after `load_state_dict`, else 0."""
        start = 0 if self._resume is None else self._resume
        self._resume, self.rows_taken = None, start
        return start

    def __iter__(self):
        info = get_worker_info()
        in_process = info is None
        counting = in_process and not self._counted_by_loader  # each row as handed out
        if self._counted_by_loader:
            start = self._start  # fixed by the loader before its workers copied us
        elif in_process:
            start = self._begin()
        else:
            warnings.warn(
                "PackedIterableDataset in DataLoader workers: state_dict() cannot see what "
                "the loop took; build the loader with dataset.loader(...) to resume exactly",
                stacklevel=2,
            )
            start = self._resume or 0
        files = self._open()
        order = self.order()
        worker, workers = (0, 1) if in_process else (info.id, info.num_workers)
        chunk = self.batch_size
        for k in range(start + worker * chunk, order.size, workers * chunk):
            for item in self._items(files, order[k : k + chunk]):
                if counting:
                    self.rows_taken += 1  # taken once handed out
                yield item
        if counting:
            self.rows_taken = len(self)  # the pass ran to the end: the epoch is over

    def _open(self) -> list[PackedFile]:
        if self._files is None:  # a fresh process: reopen (the files pickle as paths)
            self._files = [open_file(p) for p in self.paths]
        return self._files

    def _items(self, files, rows: np.ndarray):
        """The items of ``rows`` (global numbers), read shard by shard in their order."""
        pads = int(np.count_nonzero(rows == PADDING))  # (padding comes first)
        for _ in range(pads):
            yield self._padding_item(files)
        rows = rows[pads:]
        if not rows.size:
            return
        shard = np.searchsorted(self._starts, rows, side="right") - 1
        cuts = np.flatnonzero(np.diff(shard)) + 1
        for part, s in zip(np.split(rows, cuts), shard[np.append(0, cuts)], strict=True):
            arrays = files[s].take(part - self._starts[s])
            for j in range(part.size):
                yield item_of(arrays, j)

    def _padding_item(self, files) -> dict[str, np.ndarray]:
        """A row of padding: ids 0, labels -100, positions 0, attention_mask 0 (in the
        dtypes of the first shard's rows, so a default collate can stack it)."""
        if self._pad_item is None:
            width = files[0].max_len
            like = item_of(files[0].rows(0, 1), 0) if files[0].n_rows else {}
            dtype = {k: like[k].dtype if k in like else np.int64 for k in ITEM_KEYS}
            self._pad_item = {
                "input_ids": np.zeros(width, dtype["input_ids"]),
                "labels": np.full(width, IGNORE_INDEX, dtype["labels"]),
                "position_ids": np.zeros(width, dtype["position_ids"]),
                "attention_mask": np.zeros(width, dtype["attention_mask"]),
            }
        return {k: v.copy() for k, v in self._pad_item.items()}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = None
        return state

    def loader(self, batch_size: int, **kwargs) -> DataLoader:
        """A ``DataLoader`` over this dataset whose progress `state_dict` follows exactly
        (any ``num_workers``; ``drop_last`` too); takes the usual keyword arguments
        (``collate_fn`` ...)."""
        self.batch_size = _count("batch_size", batch_size, 1)
        if kwargs.get("persistent_workers"):
            raise ValueError(
                "persistent_workers would keep each worker's copy of the epoch and position; "
                "leave it off"
            )
        kwargs["in_order"] = True
        return _CountingLoader(self, batch_size=self.batch_size, **kwargs)


class _CountingLoader(DataLoader):
    """A DataLoader that tells its `PackedIterableDataset` each batch the loop takes."""

    def __iter__(self):
        ds = self.dataset
        ds._start = ds._begin()
        ds._counted_by_loader = True  # (workers copy the dataset as it is now)
        try:
            for batch in super().__iter__():
                ds.rows_taken = min(ds.rows_taken + ds.batch_size, len(ds))
                yield batch
            ds.rows_taken = len(ds)  # ran to the end (drop_last may skip a last batch)
        finally:
            ds._counted_by_loader = False
