"""The on-disk token store: ragged token ids, written part by part, memory-mapped back.

Pass 1 writes one store part per corpus part: ``part-NNNNNN.ids`` (int32 token ids,
back to back), ``part-NNNNNN.offsets`` (int64, one more than its documents, from 0) and,
for fine-tuning data, ``part-NNNNNN.trained`` (one byte per token, 1 = a training
target). Each file is written atomically with its sha256, and a small JSON *record* is
written last: a part is finished exactly when its record exists and its files still
match their checksums — the test a resumed run applies before reusing it.

Pass 2 reads pieces back through ``np.memmap``: the pages are file cache, shared by every
worker and never counted as a worker's own memory, so a shard costs memory in
proportion to its own tokens only.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> w = PartWriter(folder, 0)
    >>> w.add(np.array([5, 6, 7, 8], np.int32), np.array([3, 1]))
    >>> record = w.commit({"segments": []})
    >>> store = TokenStore(folder, [record])
    >>> store.lengths().tolist()
    [3, 1]
    >>> ids = store.pieces(np.array([0, 1, 0]), np.array([1, 0, 0]), np.array([2, 1, 1]))
    >>> ids.values.tolist(), ids.offsets.tolist()
    ([6, 7, 8, 5], [0, 2, 3, 4])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from packviz._ranges import expand_ranges
from packviz.pipeline.files import AtomicWriter, read_json, sha256_file, write_json
from packviz.ragged import TokenIds

_SUFFIXES = ("ids", "offsets", "trained")
#: Tokens copied per block by `TokenStore.copy_pieces` (2 MiB of int64 indices each).
_COPY_BLOCK = 1 << 18


def part_name(index: int) -> str:
    return f"part-{index:06d}"


class PartWriter:
    """Stream token ids of one part to its store files; `commit` writes the record."""

    def __init__(self, folder: str | os.PathLike, index: int) -> None:
        self.folder = Path(folder)
        self.index = index
        self.name = part_name(index)
        self._ids = AtomicWriter(self.folder / f"{self.name}.ids", durable=False)
        self._trained: AtomicWriter | None = None
        self._lengths: list[np.ndarray] = []
        self._n_tokens = 0

    def add(self, values: np.ndarray, lengths: np.ndarray, trained=None) -> None:
        """Append documents: their ids back to back, one length each (and flags)."""
        if trained is not None and self._trained is None:
            self._trained = AtomicWriter(self.folder / f"{self.name}.trained", durable=False)
            self._trained.write(np.ones(self._n_tokens, np.uint8))  # earlier: all trained
        if self._trained is not None:
            flags = np.ones(values.size, np.uint8) if trained is None else trained
            self._trained.write(np.ascontiguousarray(flags, dtype=np.uint8))
        self._ids.write(np.ascontiguousarray(values, dtype=np.int32))
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self._n_tokens += int(values.size)

    def commit(self, extra: dict) -> dict:
        """Make the files final, then the record (which marks the part finished)."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        files = {"ids": self._ids.commit()}
        with AtomicWriter(self.folder / f"{self.name}.offsets", durable=False) as w:
            w.write(offsets)
            files["offsets"] = w.commit()
        if self._trained is not None:
            files["trained"] = self._trained.commit()
        record = {
            "part": self.index,
            "n_docs": int(lengths.size),
            "n_tokens": self._n_tokens,
            "sha256": files,
            **extra,
        }
        write_json(self.folder / f"{self.name}.json", record, durable=False)
        return record

    def abort(self) -> None:
        self._ids.abort()
        if self._trained is not None:
            self._trained.abort()


def finished_part(folder: str | os.PathLike, index: int) -> dict | None:
    """The record of a finished part whose files still match their checksums, else None."""
    folder = Path(folder)
    record = read_json(folder / f"{part_name(index)}.json")
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), dict):
        return None
    for suffix, digest in record["sha256"].items():
        path = folder / f"{part_name(index)}.{suffix}"
        if suffix not in _SUFFIXES or not path.is_file() or sha256_file(path) != digest:
            return None
    return record


class TokenStore:
    """The finished parts of a store, read through memory maps.

    Documents are numbered across parts in part order; ``doc_starts[p]`` is the number of
    part ``p``'s first document.
    """

    def __init__(self, folder: str | os.PathLike, records: list[dict]) -> None:
        self.folder = Path(folder)
        self.records = records
        counts = np.array([r["n_docs"] for r in records], dtype=np.int64)
        self.doc_starts = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=self.doc_starts[1:])
        self.has_trained = any("trained" in r["sha256"] for r in records)
        self._maps: dict[tuple[int, str], np.ndarray] = {}

    @property
    def n_docs(self) -> int:
        return int(self.doc_starts[-1])

    def _map(self, part: int, suffix: str) -> np.ndarray:
        key = (part, suffix)
        if key not in self._maps:
            dtype = {"ids": np.int32, "offsets": np.int64, "trained": np.uint8}[suffix]
            path = self.folder / f"{part_name(part)}.{suffix}"
            if path.stat().st_size == 0:
                self._maps[key] = np.zeros(0, dtype)
            else:
                # a plain array over the map: no memmap subclass on every slice taken
                self._maps[key] = np.memmap(path, dtype=dtype, mode="r").view(np.ndarray)
        return self._maps[key]

    def lengths(self) -> np.ndarray:
        """Tokens per document, all parts in order (int64; 8 bytes per document)."""
        out = np.empty(self.n_docs, dtype=np.int64)
        for p in range(len(self.records)):
            o = self._map(p, "offsets")
            np.subtract(o[1:], o[:-1], out=out[self.doc_starts[p] : self.doc_starts[p + 1]])
        return out

    def pieces(self, doc: np.ndarray, start: np.ndarray, length: np.ndarray) -> TokenIds:
        """The tokens of each piece (document ``doc``, from ``start``, ``length`` tokens)
        as one `TokenIds` with a document per piece, in the order given."""
        length = np.asarray(length, dtype=np.int64)
        offsets = np.zeros(length.size + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        values = np.empty(int(offsets[-1]), dtype=np.int32)
        trained = np.ones(values.size, dtype=bool) if self.has_trained else None
        self.copy_pieces(doc, start, length, offsets[:-1], values, trained)
        return TokenIds(values, offsets, trained)

    def copy_pieces(
        self,
        doc: np.ndarray,
        start: np.ndarray,
        length: np.ndarray,
        to: np.ndarray,
        out: np.ndarray,
        trained: np.ndarray | None = None,
    ) -> None:
        """Copy each piece's tokens (document ``doc``, from ``start``, ``length`` tokens)
        to ``out[to : to + length]`` — straight from the part it is stored in, one part
        at a time — and, when given, its trained flags to ``trained`` likewise (True
        for parts stored without flags)."""
        doc, start, length, to = (np.asarray(a, dtype=np.int64) for a in (doc, start, length, to))
        part = np.searchsorted(self.doc_starts, doc, side="right") - 1
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(len(self.records) + 1))
        for p in np.flatnonzero(np.diff(bounds)):
            which = order[bounds[p] : bounds[p + 1]]  # the pieces stored in part p
            # a block of pieces at a time: the index arrays stay small and in cache
            ends = np.cumsum(length[which])
            cuts = np.searchsorted(ends, np.arange(_COPY_BLOCK, int(ends[-1]), _COPY_BLOCK))
            for block in np.split(which, cuts):
                local = doc[block] - self.doc_starts[p]
                src = expand_ranges(self._map(p, "offsets")[local] + start[block], length[block])
                dst = expand_ranges(to[block], length[block])
                out[dst] = self._map(p, "ids")[src]
                if trained is not None and "trained" in self.records[p]["sha256"]:
                    trained[dst] = self._map(p, "trained")[src].view(bool)
