"""Hostile packed files for the reading tests: what `save` would write, minus its checks."""

from __future__ import annotations

import io

import numpy as np

import packviz as pv
from packviz import export
from packviz._formats import CHECKSUM_KEY, content_checksum


def raw_bytes(arrays, fmt, fields=pv.FIELDS, meta=None):
    """The bytes of ``arrays`` in format ``fmt``, written without `save`'s checks."""
    buf = io.BytesIO()
    meta = {"fields": list(fields), "max_len": arrays.max_len, **(meta or {})}
    writer = {"npz": export._write_npz, "pt": export._write_pt, "parquet": export._write_parquet}
    writer[fmt](arrays, fields, meta, buf)
    return buf.getvalue()


def sealed(meta, arrays, cu_seqlens, max_seqlen):
    """``meta`` with the content checksum of a hand-built file's ``arrays`` (fields and
    ``row_index``, as a reader returns them), as `save` would add it."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    return {**meta, CHECKSUM_KEY: content_checksum(arrays, cu_seqlens, max_seqlen, meta)}
