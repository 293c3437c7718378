"""Ragged token ids: one flat array of values plus offsets, instead of a list of lists.

A million tokenized documents as Python lists cost tens of bytes per token and make every
pass a Python loop; as ``(values, offsets)`` they are one int32 array and one int64 array,
and materializing a packed row becomes a vectorized gather.

An optional ``trained`` flag per token (bool, aligned with ``values``) says which tokens
are training targets: fine-tuning trains only completions or assistant turns, and
`packviz.layout.materialize` writes -100 into ``labels`` wherever it is False. ``None``
means every token is trained.

Whatever way a `TokenIds` is built, the same checks hold: ids are integers in
``[0, 2**31)`` (never wrapped, truncated or negative — -100 included), offsets are
integers that start at 0, never decrease and end at the number of values.

Example:
    >>> ids = TokenIds.from_sequences([[5, 6, 7], [], [8]])
    >>> ids.values.tolist(), ids.offsets.tolist(), ids.lengths.tolist()
    ([5, 6, 7, 8], [0, 3, 3, 4], [3, 0, 1])
    >>> ids[0].tolist()
    [5, 6, 7]
    >>> TokenIds(np.array([1, -100]), np.array([0, 2]))
    Traceback (most recent call last):
    ...
    ValueError: token ids must be non-negative and below 2**31; found -100 at position 1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

import numpy as np

from packviz._args import as_array


@dataclass(frozen=True, eq=False)
class TokenIds:
    """Token ids of many documents: ``values[offsets[i]:offsets[i + 1]]`` is document i.

    Attributes:
        values: int32 token ids, all documents back to back.
        offsets: int64, ``n_docs + 1`` entries from 0 to ``values.size``.
        trained: bool per value (True = a training target), or None (all trained).
    """

    values: np.ndarray
    offsets: np.ndarray
    trained: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._set(self.values, self.offsets, self.trained, copy=True)

    def _set(self, values, offsets, trained, *, copy: bool) -> None:
        """Checked arrays; with ``copy``, private copies of any the caller passed in (the
        caller changing its array later must not change these ids, as with `PackPlan`)."""

        def own(out, given):
            shared = isinstance(given, np.ndarray) and np.may_share_memory(out, given)
            return out.copy() if copy and shared else out

        ids = own(_as_ids(values), values)
        object.__setattr__(self, "values", ids)
        object.__setattr__(self, "offsets", own(_as_offsets(offsets, ids.size), offsets))
        if trained is not None:
            object.__setattr__(self, "trained", own(_as_trained(trained, ids.size), trained))

    @classmethod
    def _adopt(cls, values, offsets, trained=None) -> TokenIds:
        """Checked like the constructor, but arrays just built for these ids (no one else
        holds them) are kept, not copied: the library's own encoders use this."""
        out = object.__new__(cls)
        object.__setattr__(out, "trained", None)
        out._set(values, offsets, trained, copy=False)
        return out

    @classmethod
    def from_sequences(cls, sequences: Sequence, trained: Sequence | None = None) -> TokenIds:
        """Build from one 1-D integer sequence per document (and, optionally, one bool
        sequence per document of the same lengths for ``trained``)."""
        arrays = _per_document(sequences, "token ids")
        for i, a in enumerate(arrays):
            if a.size and (a.dtype == bool or a.dtype.kind not in "iu"):
                raise ValueError(f"token ids must be integers; document {i} has dtype {a.dtype}")
        lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate([a for a in arrays if a.size] or [np.zeros(0, np.int32)])
        flags = None
        if trained is not None:
            masks = _per_document(trained, "trained flags")
            if len(masks) != len(arrays) or any(
                m.size != a.size for m, a in zip(masks, arrays, strict=False)
            ):
                raise ValueError("trained must give one flag per token of every document")
            flags = np.concatenate([m for m in masks if m.size] or [np.zeros(0, bool)])
        return cls._adopt(values, offsets, flags)  # new arrays: no copy

    @classmethod
    def coerce(cls, token_ids: object) -> TokenIds:
        """Accept a TokenIds, a ``(values, offsets)`` pair, or a sequence of sequences."""
        if isinstance(token_ids, TokenIds):
            return token_ids
        if (
            isinstance(token_ids, tuple)
            and len(token_ids) == 2
            and isinstance(token_ids[0], np.ndarray)
            and isinstance(token_ids[1], np.ndarray)
            and token_ids[0].ndim == 1
        ):
            return cls(token_ids[0], token_ids[1])
        return cls.from_sequences(token_ids)  # type: ignore[arg-type]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, i: int) -> np.ndarray:
        """Document ``i``'s ids (a view); negative ``i`` counts from the end, like a list.

        >>> TokenIds.from_sequences([[5, 6], [7]])[-1].tolist()
        [7]
        """
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"a document index must be an integer, got {i!r}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"document {i} out of range for {n} documents")
        i = int(i) % n
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    @property
    def n_tokens(self) -> int:
        return int(self.values.size)

    @property
    def n_trained(self) -> int:
        """Tokens that are training targets (all of them when ``trained`` is None)."""
        return self.n_tokens if self.trained is None else int(np.count_nonzero(self.trained))


def _per_document(sequences: object, what: str) -> list[np.ndarray]:
    """One 1-D array per document; a string, a mapping, a set (no order) or a 2-D
    document is refused."""
    if isinstance(sequences, (str, bytes, Mapping, Set)) or not isinstance(sequences, Iterable):
        kind = type(sequences).__name__
        raise ValueError(f"{what} must be a sequence with one entry per document, got {kind}")
    out = []
    for i, s in enumerate(sequences):
        if isinstance(s, (str, bytes, Mapping)):
            raise ValueError(f"{what} of document {i} is a {type(s).__name__}, not a sequence")
        a = as_array(f"{what} of document {i}", s, "a 1-D sequence of integers")
        if a.ndim != 1:
            raise ValueError(f"{what} of document {i} must be 1-D, got shape {a.shape}")
        out.append(a)
    return out


def _as_ids(values: object) -> np.ndarray:
    """Token values as int32 (every real vocabulary fits), checked, never wrapped."""
    values = as_array("token ids", values, "a 1-D array of integers")
    if values.ndim != 1:
        raise ValueError(f"token ids must be a 1-D array, got shape {values.shape}")
    if values.size == 0:
        return np.zeros(0, dtype=np.int32)
    if values.dtype == bool or values.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got dtype {values.dtype}")
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= 2**31:
        bad = int(np.flatnonzero((values < 0) | (values >= 2**31))[0])
        raise ValueError(
            "token ids must be non-negative and below 2**31; found "
            f"{values[bad].item()} at position {bad}"
        )
    return values if values.dtype == np.int32 else values.astype(np.int32)


def _as_offsets(offsets: object, n_values: int) -> np.ndarray:
    a = as_array("offsets", offsets, "a 1-D array of integers starting at 0")
    if a.dtype == bool or a.dtype.kind not in "iu":
        raise ValueError(f"offsets must be integers, got dtype {a.dtype}")
    if a.ndim != 1 or a.size == 0 or a[0] != 0:
        raise ValueError("offsets must be a 1-D array starting at 0 (n_docs + 1 entries)")
    if a[-1] != n_values:
        raise ValueError(f"offsets end at {int(a[-1])} but there are {n_values} values")
    if a.size > 1 and (np.diff(a) < 0).any():
        raise ValueError("offsets must be non-decreasing")
    return a.astype(np.int64, copy=False)


def _as_trained(trained: object, n_values: int) -> np.ndarray:
    a = as_array("trained", trained, "a bool array, one flag per token")
    if a.dtype != bool:
        raise ValueError(f"trained must be a bool array, got dtype {a.dtype}")
    if a.shape != (n_values,):
        raise ValueError(f"trained must have one flag per token ({n_values}), got {a.shape}")
    return a
