"""Save packed arrays for trainers, and load them back exactly.

Formats, chosen by suffix:

- ``.npz``: one ``.npy`` member per field, plus ``cu_seqlens``, ``row_index``,
  ``max_seqlen`` and the metadata as a JSON string. Uncompressed, each array 64-byte
  aligned in the file, so `packviz.open` memory-maps it where it lies. Loaded with
  ``allow_pickle``-free parsing: object arrays are refused.
- ``.pt``: a plain dict of tensors (and the metadata as a JSON string), loaded with
  ``torch.load(weights_only=True)``: nothing executable is unpickled.
- ``.parquet``: one row per packed row, fixed-size list columns ``input_ids``,
  ``labels``, ``position_ids``, ``doc_ids``, plus ``seq_lengths`` (piece lengths) and
  ``row_index``; row groups of about 4 MiB (`packviz.open` reads one at a time); the
  metadata sits in the schema. Readable with pyarrow, pandas and HF ``datasets``.

Exact both ways: dtypes are kept as they are (int32 from `materialize`; int64 doc ids
past 2**31 documents stay int64), never cast. What `save` writes satisfies
`packviz.validate.check_arrays` (it refuses arrays that do not), and `load` refuses a
file that does not, naming the first violation — so a file cannot smuggle
cross-document targets into training. Metadata must be JSON (it is refused, not
stringified, when it is not) and at most `MAX_METADATA_BYTES`. The metadata also holds a
content checksum (SHA-256 of the metadata and the arrays, `packviz._formats`), which
`load` and `from_bytes` verify: a changed token id that still obeys every rule is
refused too. The same arrays give the same bytes: zip entries carry a fixed timestamp.
Files are written under a temporary name and renamed, so a partial file never carries
the final name. `load` and `from_bytes` return writable arrays of their own, whatever
the format.

Example:
    >>> import tempfile, os
    >>> from packviz import materialize, pack
    >>> a = materialize(pack([3, 2], 4), [[1, 2, 3], [4, 5]], pad_id=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npz")
    >>> save(a, path, metadata={"note": "demo"})
    >>> b = load(path)
    >>> b.input_ids.tolist(), b.metadata["note"]
    ([[1, 2, 3, 0], [4, 5, 0, 0]], 'demo')
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from packviz._args import as_choice_list, check_instance
from packviz._formats import CHECKSUM_KEY, content_checksum, seq_lengths_column
from packviz.choices import FIELDS, FORMATS, Field, Format, check_choice
from packviz.layout import PackedArrays, cu_seqlens_from_doc_ids
from packviz.limits import check_int, check_max_len
from packviz.reader import PackedFile, format_of
from packviz.validate import check_arrays

#: Largest metadata (as JSON) `save` writes: every format reads it back within its limits.
MAX_METADATA_BYTES = 16 << 20
#: Bytes of packed fields per parquet row group (what `packviz.open` holds decoded).
_PARQUET_GROUP_BYTES = 4 << 20
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_ALIGN = 64
_ALIGN_TAG = 0xD935  # the zip extra-field id zipalign uses for padding


def _version() -> str:
    from packviz import __version__

    return __version__


def _check_fields(arrays: PackedArrays, fields) -> tuple[str, ...]:
    if fields is None:
        return tuple(f for f in FIELDS if getattr(arrays, f) is not None)
    fields = tuple(as_choice_list("fields", fields, FIELDS))
    if not fields:
        raise ValueError(f"fields is empty; name at least one of {', '.join(FIELDS)}")
    missing = [f for f in fields if getattr(arrays, f) is None]
    if missing:
        raise ValueError(f"these arrays have no {', '.join(missing)} (a lengths-only plan?)")
    return fields


def _jsonable(obj, where: str, depth: int = 0):
    """``obj`` as JSON values (numpy scalars and arrays, and objects with ``as_dict``,
    converted); anything else is refused with where it sits."""
    if depth > 64:
        raise ValueError(f"metadata {where} nests deeper than 64 levels")
    if obj is None or isinstance(obj, (bool, str, np.bool_)):
        return bool(obj) if isinstance(obj, np.bool_) else obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(obj):
            raise ValueError(f"metadata {where} is {obj}; JSON has no NaN or infinity")
        return float(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"metadata {where} has the key {k!r}; JSON keys are strings")
            out[k] = _jsonable(v, f"{where}.{k}", depth + 1)
        return out
    if isinstance(obj, (list, tuple, np.ndarray)):
        items = obj.tolist() if isinstance(obj, np.ndarray) else obj
        return [_jsonable(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(items)]
    if hasattr(obj, "as_dict"):
        return _jsonable(obj.as_dict(), where, depth)
    raise TypeError(
        f"metadata {where} is a {type(obj).__name__}, which JSON cannot hold; convert it "
        "to str, int, float, bool, None, a list or a dict yourself"
    )


def _metadata(arrays: PackedArrays, fields, metadata) -> dict:
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = {"packviz_version": _version(), **arrays.metadata, **(metadata or {})}
    meta["fields"] = list(fields)
    meta["max_len"] = arrays.max_len
    meta["n_rows"] = arrays.n_rows
    meta = _jsonable(meta, "metadata")
    size = len(json.dumps(meta, sort_keys=True).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {size:,} bytes as JSON, over the {MAX_METADATA_BYTES:,}-byte limit; "
            "keep large data (vocabularies, per-row values) in a file of its own"
        )
    return meta


def shuffle_rows(arrays: PackedArrays, seed: int) -> PackedArrays:
    """The same rows in a seeded random order (``row_index`` follows the rows)."""
    perm = np.random.default_rng(seed).permutation(arrays.n_rows)
    doc_ids = arrays.doc_ids[perm]
    cu, max_seqlen = cu_seqlens_from_doc_ids(doc_ids)
    pick = lambda a: None if a is None else a[perm]  # noqa: E731
    return PackedArrays(
        input_ids=pick(arrays.input_ids),
        doc_ids=doc_ids,
        position_ids=pick(arrays.position_ids),
        labels=pick(arrays.labels),
        cu_seqlens=cu,
        max_seqlen=max_seqlen,
        row_index=arrays.row_index[perm],
        metadata={**arrays.metadata, "shuffle_seed": int(seed)},
    )


def save(
    arrays: PackedArrays,
    path: str | os.PathLike,
    *,
    fields: Iterable[Field] | None = None,
    metadata: dict | None = None,
    shuffle_seed: int | None = None,
) -> None:
    """Write ``arrays`` to ``path`` (``.npz``, ``.pt`` or ``.parquet``).

    Args:
        fields: which of `FIELDS` to write (default: all present; at least one).
            ``cu_seqlens`` and ``row_index`` always travel with them.
        metadata: extra JSON values (settings, statistics, tokenizer fingerprint); the
            packviz version and the plan settings are added.
        shuffle_seed: write the rows in a seeded random order (recorded in the metadata).
    """
    fmt = format_of(path)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    try:
        with open(tmp, "xb") as fh:  # a new file, with the usual permissions
            _write(arrays, fmt, fh, fields, metadata, shuffle_seed)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def to_bytes(
    arrays: PackedArrays,
    fmt: Format,
    *,
    fields: Iterable[Field] | None = None,
    metadata: dict | None = None,
    shuffle_seed: int | None = None,
) -> bytes:
    """The file contents `save` would write, for a download button."""
    buf = io.BytesIO()
    _write(arrays, check_choice("format", fmt, FORMATS), buf, fields, metadata, shuffle_seed)
    return buf.getvalue()


def _write(arrays, fmt, fh, fields, metadata, shuffle_seed) -> None:
    if shuffle_seed is not None:
        shuffle_seed = check_int("shuffle_seed", shuffle_seed, least=0)
    check_instance(arrays, PackedArrays, "save", "PackedArrays (from pv.materialize or pv.load)")
    fields = _check_fields(arrays, fields)
    check_arrays(arrays, source="the arrays to save")
    if arrays.doc_ids is None and (fmt == "parquet" or shuffle_seed is not None):
        what = "a .parquet file stores" if fmt == "parquet" else "shuffle_seed rebuilds"
        raise ValueError(
            f"these arrays have no doc_ids, and {what} each row's piece lengths from them; "
            "save arrays that have doc_ids (pv.materialize output, or a file saved with "
            "doc_ids), or write them unshuffled as .npz or .pt"
        )
    if shuffle_seed is not None:
        arrays = shuffle_rows(arrays, shuffle_seed)
    meta = _metadata(arrays, fields, metadata)
    {"npz": _write_npz, "pt": _write_pt, "parquet": _write_parquet}[fmt](arrays, fields, meta, fh)


def _payload(arrays: PackedArrays, fields) -> dict[str, np.ndarray]:
    out = {f: np.ascontiguousarray(getattr(arrays, f)) for f in fields}
    out["cu_seqlens"] = np.ascontiguousarray(arrays.cu_seqlens)
    out["row_index"] = arrays.row_index.astype(np.int64)
    out["max_seqlen"] = np.array(arrays.max_seqlen, dtype=np.int64)
    return out


def _with_checksum(payload: dict, meta: dict) -> dict:
    """``meta`` with the content checksum of ``payload`` (what a reader will return)."""
    cu, max_seqlen = payload["cu_seqlens"], payload["max_seqlen"]
    return {**meta, CHECKSUM_KEY: content_checksum(payload, cu, max_seqlen, meta)}


def _write_npz(arrays, fields, meta, fh) -> None:
    payload = _payload(arrays, fields)
    payload["metadata"] = np.array(json.dumps(_with_checksum(payload, meta), sort_keys=True))
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in payload.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_TIME)
            # local header: 30 bytes + name + extra (ours, then 20 bytes of zip64 sizes);
            # the .npy header is padded to 64 bytes, so padding ours aligns the data
            base = fh.tell() + 30 + len(info.filename.encode()) + 20 + 4
            pad = -base % _ALIGN
            info.extra = struct.pack("<HH", _ALIGN_TAG, pad) + bytes(pad)
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def _write_pt(arrays, fields, meta, fh) -> None:
    import torch

    payload = _payload(arrays, fields)
    obj = {k: torch.from_numpy(np.array(v)) for k, v in payload.items()}
    obj["max_seqlen"] = int(arrays.max_seqlen)
    obj["metadata"] = json.dumps(_with_checksum(payload, meta), sort_keys=True)
    torch.save(obj, fh)


def _write_parquet(arrays, fields, meta, fh) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = arrays.max_len
    columns = {  # rows are fixed width: fixed-size lists in the arrays' own dtype
        f: pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(getattr(arrays, f)).reshape(-1)), width
        )
        for f in fields
    }
    columns["seq_lengths"] = seq_lengths_column(arrays.doc_ids)
    columns["row_index"] = pa.array(arrays.row_index.astype(np.int64))
    table = pa.table(columns)
    meta = _with_checksum(_payload(arrays, fields), {**meta, "max_seqlen": arrays.max_seqlen})
    table = table.replace_schema_metadata({b"packviz": json.dumps(meta, sort_keys=True)})
    row_bytes = sum(getattr(arrays, f).itemsize for f in fields) * width
    pq.write_table(table, fh, row_group_size=max(1, _PARQUET_GROUP_BYTES // row_bytes))


def load(path: str | os.PathLike) -> PackedArrays:
    """Read a file written by `save`, whole, checked (`packviz.validate`, and its content
    checksum), dtypes as stored, into writable arrays. Never unpickles: a pickled payload
    is refused. Fields that were not saved come back as None. For files larger than
    memory, `packviz.open` reads lazily."""
    fmt = format_of(path)
    return PackedFile(Path(path), fmt, mapped=False).read()


def from_bytes(data: bytes, fmt: Format) -> PackedArrays:
    """Parse the contents of a `save`d file of format ``fmt`` (checked like `load`; the
    arrays are writable copies, never views of ``data``)."""
    check_choice("format", fmt, FORMATS)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be the file's bytes, got {type(data).__name__}")
    return PackedFile(None, fmt, bytes(data)).read()


def estimate_bytes(n_rows: int, max_len: int, fmt: Format, fields: Iterable[Field] = FIELDS) -> int:
    """Approximate file size before building it (parquet: an upper bound, uncompressed)."""
    check_choice("format", fmt, FORMATS)
    n_rows = check_int("n_rows", n_rows, least=0)
    max_len = check_max_len(max_len)
    body = 4 * n_rows * max_len * len(as_choice_list("fields", fields, FIELDS))
    overhead = {"npz": 2048, "pt": 4096, "parquet": 8192}[fmt]
    return body + 8 * n_rows + overhead
