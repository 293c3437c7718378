"""Stream packed rows from files or shard directories to many GPUs, resumably.

`PackedIterableDataset` reads rows lazily (`packviz.open`), so a corpus larger than
memory trains with bounded memory. One epoch is a fixed *order* of all rows (the shards
in sorted name order, one after another; shuffled with a seed per epoch), cut into
``world_size`` contiguous shares; rank ``r`` takes share ``r`` (shares differ by at most
one row: every row is seen exactly once, none repeated to even them out). Within a
rank, the order is cut into chunks of ``batch_size`` rows dealt round-robin to the
DataLoader's workers — so the in-order DataLoader hands the rank's rows in exactly the
rank's order, whatever the worker count, and "rows taken so far" is the whole state::

    epoch order     r0 r1 r2 r3 r4 r5 r6 r7 | r8 r9 ...   (world_size 2: rank 0's share)
    batch_size 2    [r0 r1] [r2 r3] [r4 r5] [r6 r7]
    2 workers       w0      w1      w0      w1     -> the loader yields them in order

Shuffling permutes rows over the whole epoch for memory-mapped files (``.npz``,
``.pt``: any row costs the same). Parquet is read by row groups, so there the row
groups are permuted and then the rows within each: a full row shuffle would decode a
row group per row.

`state_dict` counts the rows the training loop has taken: iterate the dataset itself,
or a DataLoader from `PackedIterableDataset.loader` (which counts batches as the loop
takes them — worker processes cannot see that). A DataLoader built by hand still gets
every row exactly once, but its progress is invisible to the dataset.

Example:
    >>> import os, tempfile
    >>> import packviz as pv
    >>> a = pv.materialize(pv.pack([3, 2, 4, 1], 4), [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]], pad_id=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npz")
    >>> pv.save(a, path)
    >>> ds = PackedIterableDataset(path, rank=1, world_size=2)
    >>> [item["input_ids"].tolist() for item in ds]
    [[1, 2, 3, 10], [4, 5, 0, 0]]
    >>> ds.state_dict()["rows_taken"]
    2
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from packviz.choices import FORMATS
from packviz.reader import MissingFileError, PackedFile
from packviz.reader import open as open_file
from packviz.torch_data import _need_training_fields, item_of


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


class PackedIterableDataset(IterableDataset):
    """Rows of a packed file or shard directory, split by rank and DataLoader worker,
    each exactly once per epoch (module docstring)."""

    def __init__(
        self,
        source: str | os.PathLike,
        *,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.world_size = _count("world_size", world_size, 1)
        self.rank = _count("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be below world_size {world_size}, got {rank}")
        self.shuffle, self.seed = bool(shuffle), _count("seed", seed, 0)
        self.paths = shard_paths(source)
        files = [open_file(p) for p in self.paths]
        for f in files:
            _need_training_fields(f.fields, f.name)
        widths = {f.max_len for f in files}
        if len(widths) > 1:
            raise ValueError(f"the shards have different max lengths {sorted(widths)}")
        self._files: list[PackedFile] | None = files
        self._units = [f.read_unit for f in files]
        self._starts = np.concatenate([[0], np.cumsum([f.n_rows for f in files])]).astype(np.int64)
        self.n_rows = int(self._starts[-1])
        self._share = (
            self.rank * self.n_rows // self.world_size,
            (self.rank + 1) * self.n_rows // self.world_size,
        )
        self.epoch, self.rows_taken, self.batch_size = 0, 0, 1
        self._counted_by_loader = False

    def __len__(self) -> int:
        """Rows of this rank's share of an epoch."""
        return self._share[1] - self._share[0]

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (its shuffle); a new epoch starts from its first row, the
        current one (say, after `load_state_dict`) goes on where it stopped."""
        epoch = _count("epoch", epoch, 0)
        if epoch != self.epoch:
            self.epoch, self.rows_taken = epoch, 0

    def state_dict(self) -> dict:
        """Where this rank is: the epoch and how many of its rows the loop has taken."""
        return {
            "epoch": self.epoch,
            "rows_taken": self.rows_taken,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "rank": self.rank,
            "world_size": self.world_size,
            "n_rows": self.n_rows,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume at exactly the next row of `state_dict`'s epoch (same files and split)."""
        for key in ("seed", "shuffle", "rank", "world_size", "n_rows"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"the state was saved with {key}={state.get(key)!r}, this dataset has "
                    f"{getattr(self, key)!r}: resuming would not continue the same order"
                )
        self.epoch = _count("epoch", state["epoch"], 0)
        self.rows_taken = min(_count("rows_taken", state["rows_taken"], 0), len(self))

    def order(self) -> np.ndarray:
        """This rank's rows of the current epoch, in order (global row numbers)."""
        if not self.shuffle:
            return np.arange(*self._share, dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.epoch])
        if max(self._units) == 1:
            everything = rng.permutation(self.n_rows)
        else:  # row groups permuted, then the rows within each
            bounds = [
                np.arange(s, e, u)
                for s, e, u in zip(self._starts[:-1], self._starts[1:], self._units, strict=True)
            ]
            firsts = np.concatenate(bounds)
            lasts = np.append(firsts[1:], self.n_rows)  # each shard's blocks start at its start
            picked = rng.permutation(firsts.size)
            everything = np.concatenate(
                [firsts[b] + rng.permutation(lasts[b] - firsts[b]) for b in picked]
            )
        return everything[slice(*self._share)].astype(np.int64)

    def __iter__(self):
        files = self._open()
        order = self.order()
        start = self.rows_taken if self.rows_taken < order.size else 0
        info = get_worker_info()
        in_process = info is None
        if in_process and not self._counted_by_loader:
            self.rows_taken = start
        if not in_process and not self._counted_by_loader:
            warnings.warn(
                "PackedIterableDataset in DataLoader workers: state_dict() cannot see what "
                "the loop took; build the loader with dataset.loader(...) to resume exactly",
                stacklevel=2,
            )
        worker, workers = (0, 1) if in_process else (info.id, info.num_workers)
        chunk = self.batch_size
        for k in range(start + worker * chunk, order.size, workers * chunk):
            rows = order[k : k + chunk]
            for arrays, n in self._read(files, rows):
                for j in range(n):
                    if in_process and not self._counted_by_loader:
                        self.rows_taken += 1  # taken once handed out
                    yield item_of(arrays, j)

    def _open(self) -> list[PackedFile]:
        if self._files is None:  # a fresh process: reopen (the files pickle as paths)
            self._files = [open_file(p) for p in self.paths]
        return self._files

    def _read(self, files, rows: np.ndarray):
        """(arrays, count) for ``rows`` (global numbers), shard by shard in their order."""
        shard = np.searchsorted(self._starts, rows, side="right") - 1
        cuts = np.flatnonzero(np.diff(shard)) + 1
        for part, s in zip(np.split(rows, cuts), shard[np.append(0, cuts)], strict=True):
            yield files[s].take(part - self._starts[s]), part.size

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = None
        return state

    def loader(self, batch_size: int, **kwargs) -> DataLoader:
        """A ``DataLoader`` over this dataset whose progress `state_dict` follows exactly
        (any ``num_workers``); takes the usual keyword arguments (``collate_fn`` ...)."""
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
        if ds.rows_taken >= len(ds):
            ds.rows_taken = 0  # the epoch was finished: it starts again
        ds._counted_by_loader = True  # (workers copy the dataset as it is now)
        try:
            for batch in super().__iter__():
                ds.rows_taken = min(ds.rows_taken + ds.batch_size, len(ds))
                yield batch
        finally:
            ds._counted_by_loader = False
