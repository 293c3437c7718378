"""The three file formats, parsed exactly and defensively (used by `packviz.reader`).

Each parser turns a file (a path, or bytes in memory) into plain numpy arrays in their
stored dtypes — never cast — plus the metadata, and refuses what it cannot trust with a
`Refused` message: pickled objects, ``.npy`` headers that declare more data than their
member holds, compressed members inflating past `MAX_INFLATED_BYTES`, float or ragged
parquet columns, nulls. What the arrays *mean* is checked afterwards, window by window
(`packviz.validate`). Every parser offers the same few methods: ``window(start,
stop)``, ``gather(indices)`` (mapped formats), ``unit_of(row)`` and ``whole_cu()``.

    npz      members memory-mapped where they lie (uncompressed, as `save` writes them)
    pt       torch.load(weights_only=True, mmap=True)
    parquet  one row group at a time, decoded on one thread

Every file `packviz.save` writes carries a content checksum in its metadata
(`content_checksum`: SHA-256 over the metadata and every array, as a reader returns
them). Meaning checks cannot see a changed token id or a changed metadata value that
still obeys the rules; the checksum can. It is verified where the whole file is read
(`pv.load`, `pv.from_bytes`); lazy windows (`pv.open`) are checked for meaning only.
The digest is kept per array (then hashed together) so it can also be built window by
window.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from packviz.choices import FIELDS
from packviz.layout import cu_seqlens_from_lengths
from packviz.pieces import piece_lengths

#: Deflated ``.npz`` members (not written by `save`) may inflate to at most this many
#: bytes in all: a small hostile file must not allocate gigabytes.
MAX_INFLATED_BYTES = 1 << 30
_EXTRAS = ("cu_seqlens", "row_index", "max_seqlen", "metadata")


class Refused(ValueError):
    """What a parser found wrong in a file (its message is shown as it is)."""


#: The metadata key holding `content_checksum`.
CHECKSUM_KEY = "checksum"


def content_checksum(got: dict, cu_seqlens: np.ndarray, max_seqlen: int, meta: dict) -> str:
    """``"sha256:<hex>"`` of what a reader returns: the metadata (sorted JSON, less
    `CHECKSUM_KEY`), every field of `FIELDS` in ``got`` (dtype, shape and bytes as
    stored), ``got["row_index"]`` and ``cu_seqlens`` (as int64 values) and ``max_seqlen``.

    >>> got = {"input_ids": np.array([[1, 2]], np.int32), "row_index": np.array([0])}
    >>> content_checksum(got, np.array([0, 2]), 2, {"max_len": 2})[:15]
    'sha256:efa4084f'
    """
    top = hashlib.sha256(json.dumps(_without_checksum(meta), sort_keys=True).encode())
    named = [(f, got[f]) for f in FIELDS if f in got]
    named += [("row_index", got["row_index"]), ("cu_seqlens", cu_seqlens)]
    for name, a in named:
        a = np.asarray(a)
        if name in ("row_index", "cu_seqlens"):
            a = a.astype(np.int64)
        a = np.ascontiguousarray(a)
        top.update(f"{name} {a.dtype.str} {a.shape} ".encode())
        top.update(hashlib.sha256(memoryview(a.reshape(-1)).cast("B")).digest())
    top.update(f"max_seqlen {int(max_seqlen)}".encode())
    return "sha256:" + top.hexdigest()


def _without_checksum(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != CHECKSUM_KEY}


def seq_lengths_column(doc_ids: np.ndarray):
    """Each row's piece lengths (int32) as a pyarrow ``LargeListArray``: the parquet
    ``seq_lengths`` column, and TRL's (`packviz.to_hf_dataset` ``layout="unpadded"``)."""
    flat, per_row = piece_lengths(doc_ids)
    offsets = np.zeros(per_row.size + 1, dtype=np.int64)
    np.cumsum(per_row, out=offsets[1:])
    return large_lists(flat.astype(np.int32), offsets)


def large_lists(values: np.ndarray, offsets: np.ndarray):
    """``values`` cut at ``offsets`` as a pyarrow ``LargeListArray`` (no copy per row)."""
    import pyarrow as pa

    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def _parse_meta(raw: str | bytes) -> dict:
    meta = json.loads(raw)
    if not isinstance(meta, dict):
        raise Refused("packviz metadata is not a JSON object")
    return meta


def _declared_fields(meta: dict, present) -> tuple[str, ...]:
    """The fields present, checked against those the metadata says were saved."""
    fields = tuple(f for f in FIELDS if f in present)
    declared = meta.get("fields")
    if declared is not None:
        missing = [f for f in declared if f not in fields]
        if missing:
            raise Refused(
                f"the metadata lists {', '.join(map(str, missing))} but the file lacks it"
            )
    return fields


class _Npz:
    """Members of an ``.npz``: mapped, read into memory, or viewed in ``data``."""

    starts = None  # every row is a read unit of its own

    def __init__(self, path: Path | None, data: bytes | None, mapped: bool) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        inflated = 0
        fh = io.BytesIO(data) if data is not None else io.open(path, "rb")  # noqa: UP020
        with fh, zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise Refused(f"member {info.filename} is not an .npy array")
                key = info.filename[:-4]
                if info.compress_type == zipfile.ZIP_STORED:
                    self.arrays[key] = self._stored(fh, info, path if mapped else None, data)
                    continue
                if data is None and mapped and key not in _EXTRAS:
                    raise Refused(
                        f"member {info.filename} is compressed; pv.open maps only uncompressed "
                        "members (as pv.save writes them): re-save it, or read it whole "
                        "with pv.load"
                    )
                inflated += info.file_size
                if inflated > MAX_INFLATED_BYTES:
                    raise Refused(
                        f"its compressed members inflate to {inflated:,} bytes, over the "
                        f"{MAX_INFLATED_BYTES:,}-byte limit: save it uncompressed (pv.save, "
                        "np.savez) and read it with pv.open"
                    )
                with zf.open(info) as member:
                    dtype, shape, order, _ = _npy_header(member, info.file_size, info.filename)
                    raw = bytearray(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
                    if member.readinto(raw) != len(raw):
                        raise Refused(f"member {info.filename} is truncated")
                self.arrays[key] = np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)
        if "metadata" not in self.arrays:
            raise Refused("missing packviz metadata")
        self.meta = _parse_meta(str(self.arrays.pop("metadata")))
        self.fields = _declared_fields(self.meta, self.arrays)
        self.n_rows, self.width = _shape(self.arrays, self.fields, "row_index")
        self.unit = 1

    @staticmethod
    def _stored(fh, info: zipfile.ZipInfo, path, data) -> np.ndarray:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise Refused(f"member {info.filename} has no local header")
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
            raise Refused(f"member {info.filename} is truncated")
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
        raise Refused(f"member {name}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise Refused(f"member {name} holds pickled objects (refused)")
    header = fh.tell() - start
    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if declared != member_size - header:
        raise Refused(
            f"member {name} declares {declared:,} bytes of data but holds {member_size - header:,}"
        )
    return dtype, tuple(shape), "F" if fortran else "C", header


def _shape(arrays, fields, index_name) -> tuple[int, int]:
    if index_name not in arrays:
        raise Refused("missing row_index")
    n = int(np.shape(arrays[index_name])[0]) if np.ndim(arrays[index_name]) else 0
    widths = [np.shape(arrays[f])[-1] for f in fields if np.ndim(arrays[f]) == 2]
    return n, int(widths[0]) if widths else 0


def _stored_cu(cu, max_seqlen) -> tuple[np.ndarray, int]:
    if cu is None or max_seqlen is None:
        raise Refused("missing cu_seqlens / max_seqlen")
    ms = np.asarray(max_seqlen)
    if ms.ndim != 0 or ms.dtype.kind not in "iu":
        raise Refused("max_seqlen must be one integer")
    return np.asarray(cu), int(ms)


class _Pt:
    """A dict of tensors from ``torch.load(weights_only=True)``, memory-mapped from a path."""

    starts = None

    def __init__(self, path: Path | None, data: bytes | None, mapped: bool) -> None:
        import torch

        src = io.BytesIO(data) if data is not None else str(path)
        mmap = data is None and mapped
        obj = torch.load(src, weights_only=True, map_location="cpu", mmap=mmap)
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), str):
            raise Refused("missing packviz metadata")
        self.meta = _parse_meta(obj["metadata"])
        self.arrays = {}
        for key, value in obj.items():
            if isinstance(value, torch.Tensor):
                if (
                    value.dtype.is_floating_point
                    or value.dtype.is_complex
                    or value.dtype == torch.bool
                ):
                    raise Refused(f"{key} must hold integers, got {value.dtype}")
                self.arrays[key] = value.numpy()
        self.max_seqlen = obj.get("max_seqlen")
        if isinstance(self.max_seqlen, bool) or not isinstance(self.max_seqlen, int):
            raise Refused("max_seqlen must be one integer")
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
            raise Refused("missing packviz metadata")
        self.meta = _parse_meta(raw)
        names = self.file.schema_arrow.names
        self.fields = _declared_fields(self.meta, names)
        for need in ("row_index", "seq_lengths"):
            if need not in names:
                raise Refused(f"missing the {need} column")
        width = self.meta.get("max_len")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise Refused(f"metadata max_len must be a positive integer, got {width!r}")
        self.width, self.n_rows = width, self.file.metadata.num_rows
        counts = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.unit = max(counts, default=1)

    def window(self, start: int, stop: int) -> dict:
        """Rows ``start`` to ``stop``, decoded one row group at a time into the output
        (peak memory: the output and one group, not the whole table twice)."""
        columns = [*self.fields, "row_index", "seq_lengths"]
        if stop <= start:
            return self._decode(self.file.schema_arrow.empty_table().select(columns))
        g0, g1 = (int(np.searchsorted(self.starts, r, side="right")) - 1 for r in (start, stop - 1))
        out, small = None, {"row_index": [], "seq_lengths": []}
        for g in range(g0, g1 + 1):  # a loop over row groups
            lo, hi = max(start, int(self.starts[g])), min(stop, int(self.starts[g + 1]))
            table = self.file.read_row_group(g, columns=columns, use_threads=False)
            got = self._decode(table.slice(lo - int(self.starts[g]), hi - lo))
            if g0 == g1:
                return got
            if out is None:
                out = {f: np.empty((stop - start, self.width), got[f].dtype) for f in self.fields}
            for f in self.fields:
                out[f][lo - start : hi - start] = got[f]
            for k in small:
                small[k].append(got[k])
        return {**out, **{k: np.concatenate(v) for k, v in small.items()}}

    def _decode(self, table) -> dict:
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
            raise Refused("metadata max_seqlen must be an integer")
        if lengths.size and lengths.min() < 1:
            raise Refused("seq_lengths must be positive piece lengths")
        return cu_seqlens_from_lengths(lengths), max_seqlen


def _integers(values, name: str) -> np.ndarray:
    import pyarrow as pa

    if not pa.types.is_integer(values.type):
        raise Refused(f"{name} holds {values.type} values; packed columns hold integers")
    if values.null_count:
        raise Refused(f"{name} holds nulls")
    return values.to_numpy(zero_copy_only=False)


def _flat_ints(col, name: str) -> np.ndarray:
    return _integers(col.combine_chunks(), name)


def _list_values(col, name: str) -> np.ndarray:
    import pyarrow as pa

    arr = col.combine_chunks()
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise Refused(f"{name} must be a list column, got {arr.type}")
    if arr.null_count:
        raise Refused(f"{name} holds null rows")
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
            raise Refused(f"{name} rows have {t.list_size} slots but max_len is {width}")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            i = int(bad[0])
            raise Refused(
                f"{name} row {i} has {lengths[i]} slots but max_len is {width}; rows of "
                "unequal width are refused (never re-cut into other rows)"
            )
    else:
        raise Refused(f"{name} must be a list column, got {t}")
    if arr.null_count:
        raise Refused(f"{name} holds null rows")
    return _integers(arr.flatten(), name).reshape(len(arr), width)


PARSERS = {"npz": _Npz, "pt": _Pt, "parquet": _Parquet}
