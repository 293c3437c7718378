"""Hostile packed files for the reading tests: what `save` would write, minus its checks."""

from __future__ import annotations

import io

import packviz as pv
from packviz import export


def raw_bytes(arrays, fmt, fields=pv.FIELDS, meta=None):
    """The bytes of ``arrays`` in format ``fmt``, written without `save`'s checks."""
    buf = io.BytesIO()
    meta = {"fields": list(fields), "max_len": arrays.max_len, **(meta or {})}
    writer = {"npz": export._write_npz, "pt": export._write_pt, "parquet": export._write_parquet}
    writer[fmt](arrays, fields, meta, buf)
    return buf.getvalue()
