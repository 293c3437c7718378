"""Check that packed arrays hold what `materialize` guarantees, before anything trains on them.

A file can say anything: labels that train across documents, positions that never
restart, ``cu_seqlens`` that disagree with the doc ids, floats where ids belong. Every
consumer (`load`, `open`, `PackedDataset`, `to_hf_dataset`) calls `check_arrays`, so a
violation is refused once, at the door, naming the field, the row, the slot and the
rule — instead of surfacing as cross-document attention nobody sees.

The rules, for a row of ``L`` slots (``-1`` in ``doc_ids`` is padding)::

    shapes     every field [n, L] integers, row_index [n], cu_seqlens [pieces + 1]
    doc_ids    >= -1; a row is its pieces, then padding (no real slot after padding)
    positions  slot - first slot of its piece; 0 at padding
    input_ids  >= 0
    labels     -100 or the slot's own input id; -100 at padding and at piece starts
    cu_seqlens 0, then the running sum of the piece lengths; max_seqlen the longest

Fields that were not saved are skipped, and the rules that need them fall back to what
the others can show (without ``doc_ids``, a position of 0 marks a piece start or padding).

Why it is fast. Each rule is one vectorized comparison over a block of rows (about 256k
slots, so temporaries stay small whatever the file size); the first failing slot
is found with one ``argmax``. No Python loop over rows or slots.

Example:
    >>> import numpy as np
    >>> from packviz import materialize, pack
    >>> a = materialize(pack([3, 2], 4), [[1, 2, 3], [4, 5]], pad_id=0)
    >>> check_arrays(a)
    >>> a.labels[1, 0] = 4  # a target at a piece start
    >>> check_arrays(a, source="rows.npz")
    Traceback (most recent call last):
    ...
    ValueError: rows.npz: labels at row 1, slot 0 is 4 where a piece starts or at padding; it must be -100 (no target across documents). Write files with pv.save from pv.materialize output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from packviz._args import check_instance
from packviz.choices import FIELDS
from packviz.pieces import piece_lengths, piece_start_slots

if TYPE_CHECKING:
    from packviz.layout import PackedArrays

IGNORE_INDEX = -100
#: Slots checked per block (bounds the temporaries of the checks).
_BLOCK_SLOTS = 1 << 18
_FIX = "Write files with pv.save from pv.materialize output."


def check_arrays(
    arrays: PackedArrays,
    *,
    source: str = "arrays",
    cu_seqlens: bool = True,
    row_numbers: np.ndarray | None = None,
) -> None:
    """Raise ``ValueError`` naming the first violation of the packed-row invariants.

    Args:
        source: how the message names the input (a file name, say).
        cu_seqlens: also check ``cu_seqlens`` / ``max_seqlen`` against the doc ids (a
            lazily read window has its own, rebuilt; pass False there).
        row_numbers: the number to name each row by (rows read from a file: their row
            in the file); default: their place in ``arrays``.
    """
    from packviz.layout import PackedArrays

    check_instance(arrays, PackedArrays, "check_arrays", "PackedArrays (from pv.materialize)")
    n, width, fields = _check_shapes(arrays, source)
    cu = np.asarray(arrays.cu_seqlens) if cu_seqlens else None
    if cu is not None:
        _check_cu_structure(cu, n * width, source)
    rows_per_block = max(1, _BLOCK_SLOTS // max(width, 1))
    pieces, longest = 0, 0
    for r0 in range(0, n, rows_per_block):
        block = {f: a[r0 : r0 + rows_per_block] for f, a in fields.items()}
        problem = _check_block(block, width)
        if problem is not None:
            what, r, s = problem
            row = r0 + r if row_numbers is None else int(row_numbers[r0 + r])
            raise ValueError(f"{source}: {what[0]} at row {row}, slot {s} {what[1]}. {_FIX}")
        if cu is not None and "doc_ids" in block:
            lengths, _ = piece_lengths(block["doc_ids"])
            _check_cu_block(cu, pieces, lengths, source)
            pieces += lengths.size
            longest = max(longest, int(lengths.max(initial=0)))
    if cu is not None and "doc_ids" in fields:
        if cu.size != pieces + 1:
            raise ValueError(
                f"{source}: cu_seqlens has {cu.size} entries but doc_ids hold {pieces} pieces "
                f"(expected {pieces + 1}). {_FIX}"
            )
        if int(arrays.max_seqlen) != longest:
            raise ValueError(
                f"{source}: max_seqlen is {arrays.max_seqlen} but the longest piece in doc_ids "
                f"has {longest} tokens. {_FIX}"
            )


def _integer_array(a: object, name: str, source: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{source}: {name} must be a numpy array, got {type(a).__name__}")
    if a.dtype == bool or a.dtype.kind not in "iu":
        raise ValueError(f"{source}: {name} must hold integers, got {a.dtype}. {_FIX}")
    if a.dtype.kind == "u" and a.dtype.itemsize == 8:  # would mix with int64 as float64
        raise ValueError(f"{source}: {name} is uint64; use int64. {_FIX}")
    return a


def _check_shapes(arrays: PackedArrays, source: str) -> tuple[int, int, dict]:
    row_index = _integer_array(arrays.row_index, "row_index", source)
    if row_index.ndim != 1:
        raise ValueError(f"{source}: row_index must be 1-D, got shape {row_index.shape}")
    n = row_index.size
    if n and int(row_index.min()) < 0:
        raise ValueError(f"{source}: row_index holds a negative row number. {_FIX}")
    fields = {f: getattr(arrays, f) for f in FIELDS if getattr(arrays, f) is not None}
    if not fields:
        raise ValueError(f"{source}: holds none of the fields {', '.join(FIELDS)}")
    width = None
    for name, a in fields.items():
        _integer_array(a, name, source)
        if a.ndim != 2 or a.shape[0] != n:
            raise ValueError(
                f"{source}: {name} must be [rows, max_len] with {n} rows (one per row_index), "
                f"got shape {a.shape}. {_FIX}"
            )
        if width is None:
            width = a.shape[1]
        elif a.shape[1] != width:
            raise ValueError(
                f"{source}: {name} has {a.shape[1]} slots per row but the other fields have "
                f"{width}. {_FIX}"
            )
    if width < 1:
        raise ValueError(f"{source}: rows have no slots (max_len 0)")
    return n, width, fields


def _check_cu_structure(cu: np.ndarray, slots: int, source: str) -> None:
    cu = _integer_array(cu, "cu_seqlens", source)
    if cu.ndim != 1 or cu.size < 1 or cu[0] != 0:
        raise ValueError(f"{source}: cu_seqlens must be 1-D and start at 0. {_FIX}")
    steps = np.diff(cu.astype(np.int64))
    if steps.size and (steps.min() < 1 or int(cu[-1]) > slots):
        raise ValueError(
            f"{source}: cu_seqlens must increase by at least 1 per piece and end at most "
            f"at the {slots} slots of the rows. {_FIX}"
        )


def _check_cu_block(cu: np.ndarray, first: int, lengths: np.ndarray, source: str) -> None:
    stored = np.diff(cu[first : first + lengths.size + 1].astype(np.int64))
    if stored.size < lengths.size:
        raise ValueError(
            f"{source}: cu_seqlens ends after {cu.size - 1} pieces but doc_ids hold more. {_FIX}"
        )
    bad = np.flatnonzero(stored != lengths)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{source}: cu_seqlens gives piece {first + i} {int(stored[i])} tokens but its run "
            f"of doc_ids has {int(lengths[i])}. {_FIX}"
        )


def _first(bad: np.ndarray) -> tuple[int, int] | None:
    if not bad.any():
        return None
    r, s = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return int(r), int(s)


def _check_block(b: dict[str, np.ndarray], width: int):
    """((field, what is wrong), row, slot) of the first violation in this block, or None."""
    doc, pos, ids, lab = (b.get(f) for f in ("doc_ids", "position_ids", "input_ids", "labels"))
    checks = []  # (bad mask or a thunk giving it, field, values, rule)
    if doc is not None:
        real = doc >= 0
        checks.append((doc < -1, "doc_ids", doc, "; it must be -1 (padding) or a document index"))
        after_pad = np.zeros_like(real)
        after_pad[:, 1:] = real[:, 1:] & ~real[:, :-1]
        checks.append(
            (after_pad, "doc_ids", doc, " after padding; a row is its pieces, then padding")
        )
        start = piece_start_slots(doc)
        head = (start == np.arange(width)) & real
    if pos is not None:
        if doc is not None:
            expected = np.where(real, np.arange(width) - start, 0)

            def rule(r, s, e=expected):
                return f", expected {e[r, s]}: positions restart at 0 in every piece and are 0 at padding"

            checks.append((pos != expected, "position_ids", pos, rule))
        else:
            cont = np.ones_like(pos, dtype=bool)
            cont[:, 1:] = (pos[:, 1:] == 0) | (pos[:, 1:] == pos[:, :-1].astype(np.int64) + 1)
            cont[:, 0] = pos[:, 0] == 0
            rule = "; positions start at 0 and either restart at 0 or go up by 1"
            checks.append((~cont, "position_ids", pos, rule))
    if ids is not None:
        checks.append((ids < 0, "input_ids", ids, "; token ids are >= 0"))
    if lab is not None:
        trained = lab != IGNORE_INDEX
        if ids is not None:
            rule = "; a label is -100 or the slot's own input id (labels are unshifted)"
            checks.append((trained & (lab != ids), "labels", lab, rule))
        else:
            checks.append((trained & (lab < 0), "labels", lab, "; a label is -100 or >= 0"))
        edge = (~real | head) if doc is not None else (pos == 0) if pos is not None else None
        if edge is not None:
            rule = (
                " where a piece starts or at padding; it must be -100 (no target across documents)"
            )
            checks.append((trained & edge, "labels", lab, rule))
    for bad, name, values, rule in checks:
        hit = _first(bad)
        if hit is not None:
            r, s = hit
            text = rule(r, s) if callable(rule) else rule
            return (name, f"is {values[r, s]}{text}"), r, s
    return None
