"""Read packed files lazily: the rows you ask for, never the whole file (`open`).

Training on a file larger than memory needs rows on demand. Each format has a natural
way to get them without reading the rest:

- ``.npz`` as `packviz.save` writes it is an uncompressed zip: every member is an
  ``.npy`` array lying as-is in the file, so each is memory-mapped where it lies (the
  zip and ``.npy`` headers give the offset, dtype and shape). Mapped pages are page
  cache, not process memory: the kernel drops them under pressure.
- ``.pt``: ``torch.load(mmap=True, weights_only=True)`` maps the tensors' storages the
  same way (and unpickles nothing executable).
- ``.parquet``: one row group at a time (`packviz.save` writes groups of about 16 MiB),
  the last one kept decoded for the next row.

Nothing read is trusted: every window of rows is checked (`packviz.validate`) before it
is handed out, and dtypes are kept exactly as stored (int64 ids stay int64). `load` and
`from_bytes` (in `packviz.export`) use the same parsers on a file read whole.

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

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from packviz.choices import FIELDS, FORMATS, Format, check_choice
from packviz.layout import PackedArrays, cu_seqlens_from_doc_ids, cu_seqlens_from_lengths
from packviz.validate import check_arrays

#: Deflated ``.npz`` members (not written by `save`) may inflate to at most this many
#: bytes in all: a small hostile file must not allocate gigabytes.
MAX_INFLATED_BYTES = 1 << 30
_EXTRAS = ("cu_seqlens", "row_index", "max_seqlen", "metadata")


class _Refused(ValueError):
    """What a parser found wrong in a file (its message is shown as it is)."""


def open(path: str | os.PathLike) -> PackedFile:  # noqa: A001 - pv.open, like io.open
    """Open a packed file (``.npz``, ``.pt`` or ``.parquet``) for reading rows lazily.

    The result has the same fields as `packviz.load` gives, read window by window
    (`PackedFile.rows`); `packviz.PackedDataset` and `packviz.PackedIterableDataset`
    train from it with bounded memory.
    """
    return PackedFile(Path(path), format_of(path))


def format_of(path: str | os.PathLike) -> Format:
    """The file format named by ``path``'s suffix (``.npz``, ``.pt``, ``.parquet``)."""
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
        self.path, self.format, self._data, self._mapped = path, fmt, data, mapped
        self._window: tuple[int, int, PackedArrays] | None = None
        self.name = str(path) if path is not None else f"the .{fmt} data"
        parser = {"npz": _Npz, "pt": _Pt, "parquet": _Parquet}[fmt]
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
        except _Refused as exc:
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

    def rows(self, start: int, stop: int) -> PackedArrays:
        """Rows ``start`` to ``stop`` (checked), with ``cu_seqlens`` for this window."""
        start, stop = max(0, int(start)), min(self.n_rows, int(stop))
        stop = max(start, stop)
        return self._checked(self._guard(self._src.window, start, stop), np.arange(start, stop))

    def take(self, indices) -> PackedArrays:
        """The rows at ``indices`` (any order), checked, with their own ``cu_seqlens``:
        gathered from the mapping, or from each row's (kept) parquet row group."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_rows):
            raise IndexError(f"row indices must be in [0, {self.n_rows})")
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
        if doc_ids is not None:
            cu, max_seqlen = cu_seqlens_from_doc_ids(doc_ids)
        elif "seq_lengths" in got:
            cu = cu_seqlens_from_lengths(got["seq_lengths"])
            max_seqlen = int(np.diff(cu).max(initial=0))
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
        i = int(i)
        if not 0 <= i < self.n_rows:
            raise IndexError(f"row {i} out of range for {self.n_rows} rows")
        w = self._window
        if w is None or not w[0] <= i < w[1]:
            lo, hi = self._src.unit_of(i)
            w = self._window = (lo, hi, self.rows(lo, hi))
        return w[2], i - w[0]

    def read(self) -> PackedArrays:
        """Every row, with the stored ``cu_seqlens`` checked against the doc ids."""
        got = self._guard(self._src.window, 0, self.n_rows)
        cu, max_seqlen = self._guard(self._src.whole_cu)
        arrays = _arrays(got, cu, max_seqlen, self.metadata)
        check_arrays(arrays, source=self.name)
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


def _parse_meta(raw: str | bytes) -> dict:
    meta = json.loads(raw)
    if not isinstance(meta, dict):
        raise _Refused("packviz metadata is not a JSON object")
    return meta


def _declared_fields(meta: dict, present) -> tuple[str, ...]:
    """The fields present, checked against those the metadata says were saved."""
    fields = tuple(f for f in FIELDS if f in present)
    declared = meta.get("fields")
    if declared is not None:
        missing = [f for f in declared if f not in fields]
        if missing:
            raise _Refused(
                f"the metadata lists {', '.join(map(str, missing))} but the file lacks it"
            )
    return fields


class _Npz:
    """Members of an ``.npz``: mapped, read into memory, or viewed in ``data``."""

    def __init__(self, path: Path | None, data: bytes | None, mapped: bool) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        inflated = 0
        fh = io.BytesIO(data) if data is not None else io.open(path, "rb")  # noqa: UP020
        with fh, zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise _Refused(f"member {info.filename} is not an .npy array")
                key = info.filename[:-4]
                if info.compress_type == zipfile.ZIP_STORED:
                    self.arrays[key] = self._stored(fh, info, path if mapped else None, data)
                    continue
                if data is None and mapped and key not in _EXTRAS:
                    raise _Refused(
                        f"member {info.filename} is compressed; pv.open maps only uncompressed "
                        "members (as pv.save writes them): re-save it, or read it whole "
                        "with pv.load"
                    )
                inflated += info.file_size
                if inflated > MAX_INFLATED_BYTES:
                    raise _Refused(
                        f"its compressed members inflate to {inflated:,} bytes, over the "
                        f"{MAX_INFLATED_BYTES:,}-byte limit: save it uncompressed (pv.save, "
                        "np.savez) and read it with pv.open"
                    )
                with zf.open(info) as member:
                    dtype, shape, order, _ = _npy_header(member, info.file_size, info.filename)
                    raw = bytearray(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
                    if member.readinto(raw) != len(raw):
                        raise _Refused(f"member {info.filename} is truncated")
                self.arrays[key] = np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)
        if "metadata" not in self.arrays:
            raise _Refused("missing packviz metadata")
        self.meta = _parse_meta(str(self.arrays.pop("metadata")))
        self.fields = _declared_fields(self.meta, self.arrays)
        self.n_rows, self.width = _shape(self.arrays, self.fields, "row_index")
        self.unit = 1

    @staticmethod
    def _stored(fh, info: zipfile.ZipInfo, path, data) -> np.ndarray:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise _Refused(f"member {info.filename} has no local header")
        n_name, n_extra = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + n_name + n_extra
        fh.seek(start)
        dtype, shape, order, header = _npy_header(fh, info.file_size, info.filename)
        offset = start + header
        if int(np.prod(shape, dtype=np.int64)) == 0:
            return np.empty(shape, dtype=dtype, order=order)
        if data is not None:
            count = int(np.prod(shape, dtype=np.int64))
            flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
            return flat.reshape(shape, order=order)
        if path is not None:
            mapped = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
            return mapped.view(np.ndarray)  # plain arrays (memmap's ufunc wrapping is slow)
        out = np.empty(shape, dtype=dtype, order=order)  # read into memory (aligned)
        if fh.readinto(memoryview(out.reshape(-1, order="A")).cast("B")) != out.nbytes:
            raise _Refused(f"member {info.filename} is truncated")
        return out

    def window(self, start: int, stop: int) -> dict:
        got = {f: self.arrays[f][start:stop] for f in self.fields}
        got["row_index"] = self.arrays["row_index"][start:stop]
        return got

    def unit_of(self, i: int) -> tuple[int, int]:
        return i, i + 1

    def gather(self, idx: np.ndarray) -> dict:
        got = {f: self.arrays[f][idx] for f in self.fields}
        got["row_index"] = self.arrays["row_index"][idx]
        return got

    def whole_cu(self) -> tuple[np.ndarray, int]:
        return _stored_cu(self.arrays.get("cu_seqlens"), self.arrays.get("max_seqlen"))


def _npy_header(fh, member_size: int, name: str):
    """(dtype, shape, order, header bytes) of an ``.npy`` stream, refusing object dtypes
    and headers that declare more (or less) data than the member holds."""
    start = fh.tell()
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise _Refused(f"member {name}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise _Refused(f"member {name} holds pickled objects (refused)")
    header = fh.tell() - start
    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if declared != member_size - header:
        raise _Refused(
            f"member {name} declares {declared:,} bytes of data but holds {member_size - header:,}"
        )
    return dtype, tuple(shape), "F" if fortran else "C", header


def _shape(arrays, fields, index_name) -> tuple[int, int]:
    if index_name not in arrays:
        raise _Refused("missing row_index")
    n = int(np.shape(arrays[index_name])[0]) if np.ndim(arrays[index_name]) else 0
    widths = [np.shape(arrays[f])[-1] for f in fields if np.ndim(arrays[f]) == 2]
    return n, int(widths[0]) if widths else 0


def _stored_cu(cu, max_seqlen) -> tuple[np.ndarray, int]:
    if cu is None or max_seqlen is None:
        raise _Refused("missing cu_seqlens / max_seqlen")
    ms = np.asarray(max_seqlen)
    if ms.ndim != 0 or ms.dtype.kind not in "iu":
        raise _Refused("max_seqlen must be one integer")
    return np.asarray(cu), int(ms)


class _Pt:
    """A dict of tensors from ``torch.load(weights_only=True)``, memory-mapped from a path."""

    def __init__(self, path: Path | None, data: bytes | None, mapped: bool) -> None:
        import torch

        src = io.BytesIO(data) if data is not None else str(path)
        mmap = data is None and mapped
        obj = torch.load(src, weights_only=True, map_location="cpu", mmap=mmap)
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), str):
            raise _Refused("missing packviz metadata")
        self.meta = _parse_meta(obj["metadata"])
        self.arrays = {}
        for key, value in obj.items():
            if isinstance(value, torch.Tensor):
                if (
                    value.dtype.is_floating_point
                    or value.dtype.is_complex
                    or value.dtype == torch.bool
                ):
                    raise _Refused(f"{key} must hold integers, got {value.dtype}")
                self.arrays[key] = value.numpy()
        self.max_seqlen = obj.get("max_seqlen")
        if isinstance(self.max_seqlen, bool) or not isinstance(self.max_seqlen, int):
            raise _Refused("max_seqlen must be one integer")
        self.fields = _declared_fields(self.meta, self.arrays)
        self.n_rows, self.width = _shape(self.arrays, self.fields, "row_index")
        self.unit = 1

    window = _Npz.window
    unit_of = _Npz.unit_of
    gather = _Npz.gather

    def whole_cu(self) -> tuple[np.ndarray, int]:
        return _stored_cu(self.arrays.get("cu_seqlens"), self.max_seqlen)


class _Parquet:
    """A parquet file read by row groups; list columns decoded without casting."""

    def __init__(self, path: Path | None, data: bytes | None, mapped: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        src = pa.BufferReader(data) if data is not None else str(path)
        size = len(data) if data is not None else os.path.getsize(path)
        limit = min(max(size, 1 << 27), 2**31 - 1)  # any footer the file can hold
        self.file = pq.ParquetFile(  # mapped: the file's pages are page cache, not ours
            src,
            memory_map=data is None,
            thrift_string_size_limit=limit,
            thrift_container_size_limit=limit,
        )
        raw = (self.file.schema_arrow.metadata or {}).get(b"packviz")
        if raw is None:
            raise _Refused("missing packviz metadata")
        self.meta = _parse_meta(raw)
        names = self.file.schema_arrow.names
        self.fields = _declared_fields(self.meta, names)
        for need in ("row_index", "seq_lengths"):
            if need not in names:
                raise _Refused(f"missing the {need} column")
        width = self.meta.get("max_len")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise _Refused(f"metadata max_len must be a positive integer, got {width!r}")
        self.width, self.n_rows = width, self.file.metadata.num_rows
        counts = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.unit = max(counts, default=1)

    def window(self, start: int, stop: int) -> dict:
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, max(stop - 1, start), side="right")) - 1
        groups = list(range(max(first, 0), min(last, self.file.num_row_groups - 1) + 1))
        columns = [*self.fields, "row_index", "seq_lengths"]
        if stop <= start or not groups:
            table = self.file.schema_arrow.empty_table().select(columns)
        else:
            table = self.file.read_row_groups(groups, columns=columns, use_threads=False)
            table = table.slice(start - int(self.starts[groups[0]]), stop - start)
        got = {f: _fixed_rows(table.column(f), f, self.width) for f in self.fields}
        got["row_index"] = _flat_ints(table.column("row_index"), "row_index")
        got["seq_lengths"] = _list_values(table.column("seq_lengths"), "seq_lengths")
        return got

    def unit_of(self, i: int) -> tuple[int, int]:
        g = int(np.searchsorted(self.starts, i, side="right")) - 1
        return int(self.starts[g]), int(self.starts[g + 1])

    def whole_cu(self) -> tuple[np.ndarray, int]:
        lengths = _list_values(self.file.read(columns=["seq_lengths"]).column(0), "seq_lengths")
        max_seqlen = self.meta.get("max_seqlen")
        if isinstance(max_seqlen, bool) or not isinstance(max_seqlen, int):
            raise _Refused("metadata max_seqlen must be an integer")
        if lengths.size and lengths.min() < 1:
            raise _Refused("seq_lengths must be positive piece lengths")
        return cu_seqlens_from_lengths(lengths), max_seqlen


def _integers(values, name: str) -> np.ndarray:
    import pyarrow as pa

    if not pa.types.is_integer(values.type):
        raise _Refused(f"{name} holds {values.type} values; packed columns hold integers")
    if values.null_count:
        raise _Refused(f"{name} holds nulls")
    return values.to_numpy(zero_copy_only=False)


def _flat_ints(col, name: str) -> np.ndarray:
    return _integers(col.combine_chunks(), name)


def _list_values(col, name: str) -> np.ndarray:
    import pyarrow as pa

    arr = col.combine_chunks()
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise _Refused(f"{name} must be a list column, got {arr.type}")
    if arr.null_count:
        raise _Refused(f"{name} holds null rows")
    return _integers(arr.flatten(), name)


def _fixed_rows(col, name: str, width: int) -> np.ndarray:
    """A list column as ``[rows, width]`` numpy in its stored integer type; rows of
    another width are refused, never re-cut."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks()
    t = arr.type
    if pa.types.is_fixed_size_list(t):
        if t.list_size != width:
            raise _Refused(f"{name} rows have {t.list_size} slots but max_len is {width}")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            i = int(bad[0])
            raise _Refused(
                f"{name} row {i} has {lengths[i]} slots but max_len is {width}; rows of "
                "unequal width are refused (never re-cut into other rows)"
            )
    else:
        raise _Refused(f"{name} must be a list column, got {t}")
    if arr.null_count:
        raise _Refused(f"{name} holds null rows")
    return _integers(arr.flatten(), name).reshape(len(arr), width)
