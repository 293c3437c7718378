"""Save packed arrays for trainers, and load them back bit-exactly.

Formats, chosen by suffix:

- ``.npz``: one int32 array per field, plus ``cu_seqlens``, ``row_index``, ``max_seqlen``
  and the metadata as a JSON string. Loaded with ``allow_pickle=False``.
- ``.pt``: a plain dict of tensors (and the metadata as a JSON string), loaded with
  ``torch.load(weights_only=True)``: nothing executable is unpickled.
- ``.parquet``: one row per packed row, list<int32> columns ``input_ids``, ``labels``,
  ``position_ids``, ``doc_ids``, ``seq_lengths`` (piece lengths) and ``row_index``; the
  metadata sits in the schema. Readable with pyarrow, pandas and HF ``datasets``.

Files keep int32 (half the bytes of int64); `packviz.torch_data.collate` widens to long.
The same arrays give the same bytes: zip entries carry a fixed timestamp.

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
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from packviz.choices import FIELDS, FORMATS, Field, Format, check_choice
from packviz.layout import PackedArrays, cu_seqlens_from_doc_ids, cu_seqlens_from_lengths
from packviz.pieces import piece_lengths

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _version() -> str:
    from packviz import __version__

    return __version__


def _format_of(path: str | os.PathLike) -> Format:
    suffix = Path(path).suffix.lower()
    return check_choice("file type", suffix, tuple("." + f for f in FORMATS))[1:]


def _check_fields(arrays: PackedArrays, fields) -> tuple[str, ...]:
    if fields is None:
        return tuple(f for f in FIELDS if getattr(arrays, f) is not None)
    fields = tuple(check_choice("field", f, FIELDS) for f in fields)
    missing = [f for f in fields if getattr(arrays, f) is None]
    if missing:
        raise ValueError(f"these arrays have no {', '.join(missing)} (a lengths-only plan?)")
    return fields


def _metadata(arrays: PackedArrays, fields, metadata) -> dict:
    meta = {"packviz_version": _version(), **arrays.metadata, **(metadata or {})}
    meta["fields"] = list(fields)
    meta["max_len"] = arrays.max_len
    meta["n_rows"] = arrays.n_rows
    return json.loads(json.dumps(meta, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return str(obj)


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
        fields: which of `FIELDS` to write (default: all present). ``cu_seqlens`` and
            ``row_index`` always travel with them.
        metadata: extra JSON-serializable facts (settings, statistics, tokenizer
            fingerprint); the packviz version and the plan settings are added.
        shuffle_seed: write the rows in a seeded random order (recorded in the metadata).
    """
    fmt = _format_of(path)
    data = to_bytes(arrays, fmt, fields=fields, metadata=metadata, shuffle_seed=shuffle_seed)
    Path(path).write_bytes(data)


def to_bytes(
    arrays: PackedArrays,
    fmt: Format,
    *,
    fields: Iterable[Field] | None = None,
    metadata: dict | None = None,
    shuffle_seed: int | None = None,
) -> bytes:
    """The file contents `save` would write, for a download button."""
    check_choice("format", fmt, FORMATS)
    if shuffle_seed is not None:
        arrays = shuffle_rows(arrays, shuffle_seed)
    fields = _check_fields(arrays, fields)
    meta = _metadata(arrays, fields, metadata)
    return {"npz": _npz_bytes, "pt": _pt_bytes, "parquet": _parquet_bytes}[fmt](
        arrays, fields, meta
    )


def _payload(arrays: PackedArrays, fields) -> dict[str, np.ndarray]:
    out = {f: np.ascontiguousarray(getattr(arrays, f)) for f in fields}
    out["cu_seqlens"] = arrays.cu_seqlens.astype(np.int32)
    out["row_index"] = arrays.row_index.astype(np.int64)
    out["max_seqlen"] = np.array(arrays.max_seqlen, dtype=np.int64)
    return out


def _npz_bytes(arrays, fields, meta) -> bytes:
    buf = io.BytesIO()
    payload = _payload(arrays, fields)
    payload["metadata"] = np.array(json.dumps(meta, sort_keys=True))
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in payload.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_TIME)
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return buf.getvalue()


def _pt_bytes(arrays, fields, meta) -> bytes:
    import torch

    obj = {k: torch.from_numpy(np.array(v)) for k, v in _payload(arrays, fields).items()}
    obj["max_seqlen"] = int(arrays.max_seqlen)
    obj["metadata"] = json.dumps(meta, sort_keys=True)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _parquet_bytes(arrays, fields, meta) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = arrays.max_len
    columns = {  # rows are fixed width: fixed-size lists, no offsets to overflow
        f: pa.FixedSizeListArray.from_arrays(pa.array(getattr(arrays, f).reshape(-1)), width)
        for f in fields
    }
    flat, per_row = piece_lengths(arrays.doc_ids)
    seq_off = np.zeros(per_row.size + 1, dtype=np.int64)
    np.cumsum(per_row, out=seq_off[1:])
    columns["seq_lengths"] = pa.LargeListArray.from_arrays(
        pa.array(seq_off), pa.array(flat.astype(np.int32))
    )
    columns["row_index"] = pa.array(arrays.row_index.astype(np.int64))
    table = pa.table(columns)
    table = table.replace_schema_metadata(
        {b"packviz": json.dumps({**meta, "max_seqlen": arrays.max_seqlen}, sort_keys=True)}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def load(path: str | os.PathLike) -> PackedArrays:
    """Read a file written by `save`. Never unpickles: a pickled payload is refused.

    Fields that were not saved come back as None.
    """
    fmt = _format_of(path)
    data = Path(path).read_bytes()
    return from_bytes(data, fmt)


def from_bytes(data: bytes, fmt: Format) -> PackedArrays:
    """Parse the contents of a `save`d file of format ``fmt``."""
    check_choice("format", fmt, FORMATS)
    try:
        return {"npz": _from_npz, "pt": _from_pt, "parquet": _from_parquet}[fmt](data)
    except Exception as exc:  # any parse failure (corrupt zip, pickle refused, ...) is bad input
        raise ValueError(f"not a packviz .{fmt} file (or it holds pickled objects): {exc}") from exc


def _assemble(get, meta: dict, max_seqlen: int | None = None) -> PackedArrays:
    fields = {f: get(f) for f in FIELDS}
    doc_ids = fields["doc_ids"]
    cu = get("cu_seqlens")
    if max_seqlen is None:
        max_seqlen = int(get("max_seqlen"))
    return PackedArrays(
        input_ids=fields["input_ids"],
        doc_ids=doc_ids,
        position_ids=fields["position_ids"],
        labels=fields["labels"],
        cu_seqlens=cu,
        max_seqlen=int(max_seqlen),
        row_index=get("row_index"),
        metadata=meta,
    )


def _from_npz(data: bytes) -> PackedArrays:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("metadata")))
    return _assemble(arrays.get, meta)


def _from_pt(data: bytes) -> PackedArrays:
    import torch

    obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    if not isinstance(obj, dict) or "metadata" not in obj:
        raise ValueError("missing packviz metadata")
    meta = json.loads(obj["metadata"])

    def get(name):
        v = obj.get(name)
        return v.numpy() if isinstance(v, torch.Tensor) else v

    return _assemble(get, meta, max_seqlen=obj["max_seqlen"])


def _from_parquet(data: bytes) -> PackedArrays:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    raw = (table.schema.metadata or {}).get(b"packviz")
    if raw is None:
        raise ValueError("missing packviz metadata")
    meta = json.loads(raw)
    width, n = int(meta["max_len"]), table.num_rows

    def column(name):
        if name not in table.column_names:
            return None
        values = table.column(name).combine_chunks().flatten().to_numpy()
        return values.astype(np.int32).reshape(n, width)

    lengths = table.column("seq_lengths").combine_chunks().flatten().to_numpy()
    cu = cu_seqlens_from_lengths(lengths)
    extra = {
        "cu_seqlens": cu,
        "row_index": table.column("row_index").to_numpy().astype(np.int64),
    }
    max_seqlen = meta.pop("max_seqlen")
    return _assemble(lambda k: extra[k] if k in extra else column(k), meta, max_seqlen)


def estimate_bytes(n_rows: int, max_len: int, fmt: Format, fields: Iterable[Field] = FIELDS) -> int:
    """Approximate file size before building it (parquet: an upper bound, uncompressed)."""
    check_choice("format", fmt, FORMATS)
    body = 4 * n_rows * max_len * len(tuple(fields))
    overhead = {"npz": 2048, "pt": 4096, "parquet": 8192}[fmt]
    return body + 8 * n_rows + overhead
