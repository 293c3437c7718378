"""Ragged token ids: one flat array of values plus offsets, instead of a list of lists.

A million tokenized documents as Python lists cost tens of bytes per token and make every
pass a Python loop; as ``(values, offsets)`` they are one int32 array and one int64 array,
and materializing a packed row becomes a vectorized gather.

Example:
    >>> ids = TokenIds.from_sequences([[5, 6, 7], [], [8]])
    >>> ids.values.tolist(), ids.offsets.tolist(), ids.lengths.tolist()
    ([5, 6, 7, 8], [0, 3, 3, 4], [3, 0, 1])
    >>> ids[0].tolist()
    [5, 6, 7]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TokenIds:
    """Token ids of many documents: ``values[offsets[i]:offsets[i + 1]]`` is document i."""

    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or self.offsets.size == 0 or self.offsets[0] != 0:
            raise ValueError("offsets must be a 1-D array starting at 0 (n_docs + 1 entries)")
        if self.offsets[-1] != self.values.size:
            raise ValueError(
                f"offsets end at {int(self.offsets[-1])} but there are {self.values.size} values"
            )
        if self.offsets.size > 1 and (np.diff(self.offsets) < 0).any():
            raise ValueError("offsets must be non-decreasing")

    @classmethod
    def from_sequences(cls, sequences: Sequence) -> TokenIds:
        """Build from one integer sequence per document."""
        arrays = [np.asarray(s).reshape(-1) for s in sequences]
        for i, a in enumerate(arrays):
            if a.size and (a.dtype == bool or a.dtype.kind not in "iu"):
                raise ValueError(f"token ids must be integers; document {i} has dtype {a.dtype}")
        lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate([a for a in arrays if a.size] or [np.zeros(0, np.int32)])
        return cls(_as_ids(values), offsets)

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
            return cls(_as_ids(token_ids[0]), np.asarray(token_ids[1], dtype=np.int64))
        return cls.from_sequences(token_ids)  # type: ignore[arg-type]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    @property
    def n_tokens(self) -> int:
        return int(self.values.size)


def _as_ids(values: np.ndarray) -> np.ndarray:
    """Token values as int32 (every real vocabulary fits), checked, not silently wrapped."""
    values = np.asarray(values)
    if values.size == 0:
        return np.zeros(0, dtype=np.int32)
    if values.dtype == bool or values.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got dtype {values.dtype}")
    if values.dtype != np.int32:
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi >= 2**31:
            raise ValueError(
                f"token ids must be non-negative and below 2**31, got range [{lo}, {hi}]"
            )
        values = values.astype(np.int32)
    elif values.min() < 0:
        raise ValueError(f"token ids must be non-negative, got {int(values.min())}")
    return values
