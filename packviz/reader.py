"""Read packed files lazily: the rows you ask for, never the whole file (`open`).

Training on a file larger than memory needs rows on demand. Each format has a natural
way to get them without reading the rest:

- ``.npz`` as `packviz.save` writes it is an uncompressed zip: every member is an
  ``.npy`` array lying as-is in the file, so each is memory-mapped where it lies (the
  zip and ``.npy`` headers give the offset, dtype and shape). Mapped pages are page
  cache, not process memory: the kernel drops them under pressure.
- ``.pt``: ``torch.load(mmap=True, weights_only=True)`` maps the tensors' storages the
  same way (and unpickles nothing executable).
- ``.parquet``: one row group at a time (`packviz.save` writes groups of about 4 MiB),
  the last one kept decoded for the next row.

Nothing read is trusted: every window of rows is checked (`packviz.validate`) before it
is handed out — for parquet, the stored ``seq_lengths`` against the ``doc_ids`` too —
and dtypes are kept exactly as stored (int64 ids stay int64). `load` and `from_bytes`
(in `packviz.export`) read whole files through the same parsers (`packviz._formats`)
and also verify the file's content checksum; they return writable arrays of their own,
while a window of `open` may be a read-only view of the file (copy it to change it).

Example:
    >>> import os, tempfile
    >>> import packviz as pv
    >>> a = pv.materialize(pv.pack([3, 2, 4], 4), [[1, 2, 3], [4, 5], [6, 7, 8, 9]], pad_id=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npz")
    >>> pv.save(a, path)
    >>> f = pv.open(path)
    >>> len(f), f.max_len, f.rows(1, 3).input_ids.tolist()
    (3, 4, [[1, 2, 3, 0], [4, 5, 0, 0]])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from packviz._formats import CHECKSUM_KEY, PARSERS, Refused, content_checksum
from packviz.choices import FIELDS, FORMATS, Format, check_choice
from packviz.layout import PackedArrays, cu_seqlens_from_doc_ids, cu_seqlens_from_lengths
from packviz.validate import check_arrays


def open(path: str | os.PathLike) -> PackedFile:  # noqa: A001 - pv.open, like io.open
    """Open a packed file (``.npz``, ``.pt`` or ``.parquet``) for reading rows lazily.

    The result has the same fields as `packviz.load` gives, read window by window
    (`PackedFile.rows`); `packviz.PackedDataset` and `packviz.PackedIterableDataset`
    train from it with bounded memory.
    """
    return PackedFile(Path(path), format_of(path))


class MissingFileError(FileNotFoundError, ValueError):
    """No file at the path given (a ``FileNotFoundError``, and a ``ValueError`` like
    every other refusal of a bad input)."""


def format_of(path: str | os.PathLike) -> Format:
    """The file format named by ``path``'s suffix (``.npz``, ``.pt``, ``.parquet``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    suffix = Path(path).suffix.lower()
    return check_choice("file type", suffix, tuple("." + f for f in FORMATS))[1:]


class PackedFile:
    """Rows of a packed file, read on demand; pickles as its path (for DataLoader
    workers, which reopen it)."""

    def __init__(
        self, path: Path | None, fmt: Format, data: bytes | None = None, *, mapped: bool = True
    ) -> None:
        """``path`` is read lazily (memory-mapped where the format allows; with
        ``mapped=False`` arrays are read into memory), or ``data`` parsed in memory."""
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
            path = Path(path)
        fmt = check_choice("format", fmt, FORMATS)
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        if (path is None) == (data is None):
            raise ValueError("give a path or the file's bytes as data (one of the two)")
        self.path, self.format, self._data, self._mapped = path, fmt, data, mapped
        self._window: tuple[int, int, PackedArrays] | None = None
        self.name = str(path) if path is not None else f"the .{fmt} data"
        if path is not None and not path.exists():
            raise MissingFileError(f"no file at {path}")
        if path is not None and path.is_dir():
            raise ValueError(
                f"{path} is a directory, not a packed file (pv.PackedIterableDataset reads a "
                "directory of shards)"
            )
        parser = PARSERS[fmt]
        self._src = self._guard(parser, path, data, mapped)
        self.metadata: dict = self._src.meta
        self.fields = tuple(f for f in FIELDS if f in self._src.fields)
        self.n_rows: int = self._src.n_rows
        self.max_len: int = self._src.width

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return f"PackedFile({self.name!r}, rows={self.n_rows}, max_len={self.max_len})"

    def _guard(self, fn, *args):
        """``fn(*args)``, any failure to parse the file turned into one ValueError."""
        try:
            return fn(*args)
        except Refused as exc:
            raise ValueError(f"{self.name}: {exc}") from exc
        except Exception as exc:  # a corrupt zip, a pickle refused, a bad footer, ...
            raise ValueError(
                f"{self.name}: not a packviz .{self.format} file (or it holds pickled "
                f"objects): {exc}"
            ) from exc

    @property
    def read_unit(self) -> int:
        """Rows that cost one read: a parquet row group (the largest), else 1 (mapped)."""
        return self._src.unit

    @property
    def read_starts(self) -> np.ndarray | None:
        """The first row of every read unit, then ``n_rows`` (a parquet file: its row
        groups, which may differ in size); None where every row is a unit (mapped)."""
        return self._src.starts

    def rows(self, start: int, stop: int) -> PackedArrays:
        """Rows ``start`` to ``stop`` (checked), with ``cu_seqlens`` for this window.
        ``0 <= start <= stop``; a ``stop`` past the end is cut to ``n_rows`` (like a
        slice), negative numbers are refused (not counted from the end).

        >>> import packviz as pv
        >>> a = pv.materialize(pv.pack([2], 4), [[1, 2]], pad_id=0)
        >>> f = PackedFile(None, "npz", pv.to_bytes(a, "npz"))
        >>> f.rows(0, 10).n_rows
        1
        >>> f.rows(-1, 3)
        Traceback (most recent call last):
        ...
        ValueError: rows takes 0 <= start <= stop, got start=-1, stop=3
        """
        start, stop = _row_number(start, "start"), _row_number(stop, "stop")
        if start < 0 or stop < start:
            raise ValueError(f"rows takes 0 <= start <= stop, got start={start}, stop={stop}")
        start, stop = min(start, self.n_rows), min(stop, self.n_rows)
        return self._checked(self._guard(self._src.window, start, stop), np.arange(start, stop))

    def take(self, indices) -> PackedArrays:
        """The rows at ``indices`` (integers in ``[0, n_rows)``, any order), checked, with
        their own ``cu_seqlens``: gathered from the mapping, or from each row's (kept)
        parquet row group."""
        idx = np.asarray(indices).reshape(-1)
        if idx.size and (idx.dtype == bool or idx.dtype.kind not in "iu"):
            raise TypeError(f"row indices must be integers, got {idx.dtype} values")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_rows):
            raise IndexError(f"row indices must be in [0, {self.n_rows})")
        idx = idx.astype(np.int64)
        if idx.size == 0:
            return self.rows(0, 0)
        if self._src.unit == 1:
            return self._checked(self._guard(self._src.gather, idx), idx)
        group = np.searchsorted(self._src.starts, idx, side="right")
        cuts = np.flatnonzero(np.diff(group)) + 1
        parts = []
        for run in np.split(idx, cuts):  # a loop over row groups, not rows
            window, j = self.row(int(run[0]))
            pick = run - (int(run[0]) - j)
            parts.append({f: getattr(window, f)[pick] for f in (*self.fields, "row_index")})
        got = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._checked(got, None)

    def _checked(self, got: dict, row_numbers: np.ndarray | None) -> PackedArrays:
        """The window ``got`` as PackedArrays with its own cu_seqlens, checked (naming
        rows by ``row_numbers``) unless that is None (rows checked when first read)."""
        doc_ids = got.get("doc_ids")
        if "seq_lengths" in got:  # stored (parquet): checked against the doc ids below
            lengths = got["seq_lengths"]
            if lengths.size and lengths.min() < 1:
                raise ValueError(f"{self.name}: seq_lengths must be positive piece lengths")
            cu = cu_seqlens_from_lengths(lengths)
            max_seqlen = int(lengths.max(initial=0))
        elif doc_ids is not None:
            cu, max_seqlen = cu_seqlens_from_doc_ids(doc_ids)
        else:
            raise ValueError(
                f"{self.name} has no doc_ids, so a window of its rows has no cu_seqlens; "
                "read it whole with pv.load"
            )
        arrays = _arrays(got, cu, max_seqlen, self.metadata)
        if row_numbers is not None:
            check_arrays(
                arrays, source=self.name, cu_seqlens="seq_lengths" in got, row_numbers=row_numbers
            )
        return arrays

    def row(self, i: int) -> tuple[PackedArrays, int]:
        """The window holding row ``i`` (one row, or its parquet row group, kept for the
        next call) and ``i``'s place in it: ``window.input_ids[j]`` is row ``i``."""
        i = _row_number(i, "row")
        if not 0 <= i < self.n_rows:
            raise IndexError(f"row {i} out of range for {self.n_rows} rows")
        w = self._window
        if w is None or not w[0] <= i < w[1]:
            lo, hi = self._src.unit_of(i)
            w = self._window = (lo, hi, self.rows(lo, hi))
        return w[2], i - w[0]

    def read(self) -> PackedArrays:
        """Every row, as writable arrays of their own, with the content checksum verified
        and the stored ``cu_seqlens`` checked against the doc ids."""
        got = self._guard(self._src.window, 0, self.n_rows)
        cu, max_seqlen = self._guard(self._src.whole_cu)
        got = {k: v if v.flags.writeable else v.copy() for k, v in got.items()}
        cu = cu if cu.flags.writeable else cu.copy()
        arrays = _arrays(got, cu, max_seqlen, self.metadata)
        check_arrays(arrays, source=self.name)  # first: a broken rule is named exactly
        stored = self.metadata.get(CHECKSUM_KEY)
        if stored is None:
            raise ValueError(
                f"{self.name}: its metadata has no content checksum; write packed files "
                "with pv.save"
            )
        if stored != content_checksum(got, cu, max_seqlen, self.metadata):
            raise ValueError(
                f"{self.name}: the content does not match its checksum: the file was damaged "
                "or changed after pv.save wrote it"
            )
        return arrays

    def __getstate__(self):
        return {
            "path": self.path,
            "format": self.format,
            "data": self._data,
            "mapped": self._mapped,
        }

    def __setstate__(self, state):
        self.__init__(state["path"], state["format"], state["data"], mapped=state["mapped"])


def _row_number(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer row number, got {value!r}")
    return int(value)


def _arrays(got: dict, cu: np.ndarray, max_seqlen: int, meta: dict) -> PackedArrays:
    return PackedArrays(
        input_ids=got.get("input_ids"),
        doc_ids=got.get("doc_ids"),
        position_ids=got.get("position_ids"),
        labels=got.get("labels"),
        cu_seqlens=cu,
        max_seqlen=int(max_seqlen),
        row_index=got["row_index"],
        metadata=dict(meta),
    )
