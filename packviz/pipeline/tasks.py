"""The three kinds of work an engine runs: hash an input, tokenize a part, write a shard.

Each task is a plain function of ``(work folder, index)`` that returns a small JSON-able
record, so any engine can run it — the local process pool, Ray Data on a cluster — and
its result never depends on which process ran it, how many ran, or in what order.
Everything else a task needs (input files, settings, the plan) is read from the work
folder, written there by the driver beforehand: ``spec.json`` for pass 1, ``pass2.json``
and ``plan/*.npy`` (memory-mapped) for pass 2. A task writes its output atomically and
its record last, so a task killed half way leaves nothing that looks finished.

A shard's arrays are built by `packviz.pipeline.shards` straight from the memory-mapped
store — the same arrays as ``materialize(plan, all_ids, rows=...)`` — and encoded by the
library's own `packviz.to_bytes`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from packviz.corpus import CorpusError
from packviz.layout import IGNORE_INDEX
from packviz.pipeline import records as fine_tuning
from packviz.pipeline import shards
from packviz.pipeline.files import read_json, sha256_file, write_atomic, write_json
from packviz.pipeline.inputs import InputFile
from packviz.pipeline.readers import TokenBatch, name_lines, read_segment
from packviz.pipeline.store import PartWriter, TokenStore, finished_part

#: What tasks made from work files, per process: (work, file, tag) -> (stamp, value).
#: Only for the job named by ``job-id``; `forget` empties it when a job ends.
_CACHE: dict[tuple[str, str, str], tuple[tuple, object]] = {}
_JOB: list[str | None] = [None]
JOB_ID = "job-id"


def forget() -> None:
    """Drop every cached value (the memory maps of a finished job's files with them)."""
    _CACHE.clear()
    _JOB[0] = None


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _cached(work: str, name: str, load, tag: str = ""):
    """Per-process cache of what a task makes from a file of the work folder: made again
    when the file was replaced (another inode, size or time) and dropped whole when the
    work folder names another job (``job-id``, new for every run), so a later job never
    reads a map of a file deleted or rewritten since."""
    job = (Path(work) / JOB_ID).read_text()
    if job != _JOB[0]:
        forget()
        _JOB[0] = job
    path = Path(work) / name
    stamp = _stamp(path)
    hit = _CACHE.get((work, name, tag))
    if hit is None or hit[0] != stamp:
        hit = (stamp, load(path))
        _CACHE[(work, name, tag)] = hit
    return hit[1]


def _spec(work: str) -> dict:
    def load(path):
        spec = read_json(path)
        spec["files"] = [
            InputFile(
                **{
                    **f,
                    "row_groups": tuple(map(tuple, f["row_groups"])),
                    "record_columns": tuple(f["record_columns"]),
                }
            )
            for f in spec["files"]
        ]
        return spec

    return _cached(work, "spec.json", load)


def memory() -> dict:
    """This process's id, peak resident memory (VmHWM) and anonymous memory now, bytes."""
    out = {"pid": os.getpid(), "hwm": 0, "anon": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["hwm"] = int(line.split()[1]) * 1024
            elif line.startswith("RssAnon:"):
                out["anon"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


# ----------------------------------------------------------------------------- pass 0


def hash_input(work: str, index: int) -> dict:
    """sha256 and size of input file ``index``."""
    f = _spec(work)["files"][index]
    try:
        size, digest = os.path.getsize(f.path), sha256_file(f.path)
        return {"index": index, "size": size, "sha256": digest, "memory": memory()}
    except OSError as exc:
        raise CorpusError(f"{f.path}: cannot read ({exc.strerror or exc})") from None


# ----------------------------------------------------------------------------- pass 1


def _tokenizer(work: str):
    import packviz as pv

    spec = _spec(work)
    return _cached(work, spec["tokenizer_file"], pv.load_tokenizer)


def _encode(work: str, docs: list[str], path: str) -> tuple[np.ndarray, np.ndarray]:
    import packviz as pv

    spec = _spec(work)
    if spec["tokenizer_file"] is None:
        raise CorpusError(f"{path} holds text but no tokenizer was given")
    keep = [i for i, d in enumerate(docs) if d]
    lengths = np.zeros(len(docs), dtype=np.int64)
    try:
        ids = pv.encode(
            _tokenizer(work),
            [docs[i] for i in keep],
            add_eos=spec["add_eos"],
            batch_size=1024,
        )
    except ValueError as exc:  # TokenizerError
        raise pv.TokenizerError(f"{path}: {exc}") from None
    lengths[keep] = ids.lengths
    return ids.values, lengths


def tokenize_part(work: str, index: int) -> dict:
    """Read part ``index``, tokenize it (or take its ids), write its store files."""
    spec = _spec(work)
    folder = Path(work) / "tokens"
    done = finished_part(folder, index)
    if done is not None and [s[:3] for s in done["segments"]] == spec["parts"][index]:
        return {**done, "index": index, "memory": memory()}  # finished by an earlier attempt
    writer = PartWriter(folder, index)
    segments = []
    try:
        for i, lo, hi in spec["parts"][index]:
            f = spec["files"][i]
            try:
                n_docs = _tokenize_segment(work, spec, f, lo, hi, writer)
            except ValueError as exc:  # a record's line, counted only now it is reported
                named = name_lines(exc, f.path)
                if named is exc:
                    raise
                raise named from None
            segments.append([i, lo, hi, n_docs])
        record = writer.commit({"segments": segments})
    except BaseException:
        writer.abort()
        raise
    return {**record, "index": index, "memory": memory()}


def _tokenize_segment(work: str, spec: dict, f: InputFile, lo: int, hi: int, writer) -> int:
    """Add the documents (or records) of one segment to the part; their number."""
    records = spec.get("records")
    n_docs = 0
    for batch in read_segment(
        f,
        lo,
        hi,
        text_field=spec["text_field"],
        split=spec["split"],
        batch_bytes=spec["batch_bytes"],
        records=records is not None,
    ):
        if isinstance(batch, TokenBatch):
            writer.add(batch.values, batch.lengths, batch.trained)
            n_docs += int(batch.lengths.size)
        elif records is not None:
            writer.add(*fine_tuning.encode(_tokenizer(work), records, batch, f.path))
            n_docs += len(batch)
        else:
            values, lengths = _encode(work, batch, f.path)
            writer.add(values, lengths)
            n_docs += len(batch)
    return n_docs


# ----------------------------------------------------------------------------- pass 2


def shard_name(index: int, fmt: str) -> str:
    return f"shard-{index:06d}.{fmt}"


def _plan(work: str) -> dict[str, np.ndarray]:
    folder = Path(work) / "plan"
    return {
        name: np.load(folder / f"{name}.npy", mmap_mode="r")
        for name in (*shards.PIECE_ARRAYS, "row_starts")
    }


def shard_arrays(work: str, index: int):
    """The `PackedArrays` of shard ``index`` (rows ``[index * R, (index + 1) * R)``)."""
    p2 = _cached(work, "pass2.json", read_json)
    plan = _cached(work, "plan/row_starts.npy", lambda _: _plan(work))
    store = _cached(
        work, "pass2.json", lambda path: TokenStore(Path(work) / "tokens", p2["parts"]), "store"
    )
    rows = p2["rows_per_shard"]
    r0, r1 = index * rows, min((index + 1) * rows, p2["n_rows"])
    p0, p1 = int(plan["row_starts"][r0]), int(plan["row_starts"][r1])
    settings = p2["plan"]
    return shards.shard_arrays(
        {k: plan[k][p0:p1] for k in shards.PIECE_ARRAYS},
        store,
        r0,
        r1,
        max_len=settings["max_len"],
        pad_id=p2["pad_id"],
        n_docs=p2["n_docs"],
        settings=settings,
    )


def write_shard(work: str, index: int) -> dict:
    """Materialize shard ``index`` and write it under its final name, atomically."""
    import packviz as pv

    p2 = _cached(work, "pass2.json", read_json)
    name = shard_name(index, p2["format"])
    out = Path(p2["out"]) / name
    record_path = Path(work) / "shards" / f"{name}.json"
    done = finished_shard(work, index, p2)
    if done is not None:
        return {**done, "index": index, "memory": memory()}
    arrays = shard_arrays(work, index)
    r0 = int(arrays.row_index[0]) if arrays.n_rows else index * p2["rows_per_shard"]
    meta = {**p2["shard_metadata"], "shard": index, "rows": [r0, r0 + arrays.n_rows]}
    targets = int(np.count_nonzero(arrays.labels != IGNORE_INDEX))
    data = pv.to_bytes(arrays, p2["format"], metadata=meta)
    del arrays
    digest = write_atomic(out, [data])
    record = {"file": name, "rows": meta["rows"], "bytes": len(data), "sha256": digest,
              "targets": targets}  # fmt: skip
    write_json(record_path, record, durable=False)
    return {**record, "index": index, "memory": memory()}


def finished_shard(work: str, index: int, p2: dict | None = None) -> dict | None:
    """The record of a shard already written whose file still matches it, else None."""
    p2 = p2 or read_json(Path(work) / "pass2.json")
    name = shard_name(index, p2["format"])
    record = read_json(Path(work) / "shards" / f"{name}.json")
    path = Path(p2["out"]) / name
    if not isinstance(record, dict) or not path.is_file():
        return None
    if path.stat().st_size != record.get("bytes") or sha256_file(path) != record.get("sha256"):
        return None
    return record
