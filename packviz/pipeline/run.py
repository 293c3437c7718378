"""`pack_corpus`: pack a whole corpus into row shards — two passes, one global plan.

    inputs ──hash──► identity (resume, or refuse a changed job)
       │
       ├─ pass 1: parts ──tokenize (workers)──► token store (ids + offsets, on disk)
       │                                            │ lengths (8 bytes per document)
       ├─ plan: `packviz.pack` once, on every length (global, not windowed)
       │                                            │ plan/*.npy (memory-mapped by workers)
       └─ pass 2: row ranges ──materialize + to_bytes (workers)──► shard files
                                                                    manifest.json (last)

The driver holds only the lengths and the plan; workers hold one batch or one shard.
Every file appears under its final name only when complete, each task's output is
checked against its sha256 before it is reused, and the result is the same bytes for any
``workers`` and either engine.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "c.jsonl").write_text("\\n".join('{"text": "%s"}' % ("ab " * i) for i in range(1, 40)))
    >>> report = pack_corpus(d / "c.jsonl", d / "out", max_len=64, train_vocab=300,
    ...                      workers=1, progress=False, log=lambda line: None)
    >>> report.stats.n_docs, sorted(p.name for p in (d / "out").iterdir())[:2]
    (39, ['manifest.json', 'shard-000000.parquet'])
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from packviz.choices import FORMATS, OVERFLOWS, SORTS, SPLITS, STRATEGIES, check_choice
from packviz.corpus import CorpusError
from packviz.limits import check_max_len
from packviz.pipeline import tasks
from packviz.pipeline.budget import parse_bytes, plan_memory
from packviz.pipeline.engines import make_engine
from packviz.pipeline.files import remove_temporaries, sha256_file, write_atomic, write_json
from packviz.pipeline.inputs import find_inputs, make_parts
from packviz.pipeline.manifest import (
    MANIFEST,
    TOKENIZER_FILE,
    WORK,
    build_manifest,
    check_identity,
    prepare_out_dir,
)
from packviz.pipeline.progress import Progress, log_to_stderr
from packviz.pipeline.readers import read_segment
from packviz.pipeline.report import PackReport
from packviz.plan import PIECE_FIELDS

#: Characters of text (the first documents, in order) a ``train_vocab`` tokenizer learns from.
TRAIN_SAMPLE_CHARS = 32 << 20
#: Token slots per shard when ``rows_per_shard`` is not given (4 MiB slots = 64 MiB of
#: int32 arrays: 2,048 rows at max_len 2048).
DEFAULT_SHARD_SLOTS = 1 << 22


def default_rows_per_shard(max_len: int) -> int:
    return max(1, DEFAULT_SHARD_SLOTS // max_len)


def pack_corpus(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    max_len: int = 2048,
    strategy: str = "best_fit",
    sort: str = "desc",
    overflow: str = "split",
    seed: int = 0,
    tokenizer: str | os.PathLike | None = None,
    train_vocab: int | None = None,
    text_field: str = "text",
    split: str = "paragraph",
    add_eos: bool = True,
    pad_id: int | None = None,
    format: str = "parquet",  # noqa: A002 - the command line's name
    rows_per_shard: int | None = None,
    workers: int | None = None,
    memory_budget: int | str = "2GB",
    engine: str = "local",
    ray_address: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = log_to_stderr,
) -> PackReport:
    """Pack the documents of ``inputs`` (files, folders, globs) into shards under ``out``.

    Settings are those of `packviz.pack` and `packviz.materialize`, plus: ``tokenizer``
    (a ``tokenizer.json``) or ``train_vocab`` (train a byte-level BPE of that size on the
    first `TRAIN_SAMPLE_CHARS` characters; not needed for pre-tokenized parquet),
    ``text_field`` (JSONL/parquet/CSV), ``split`` (``.txt``/``.md``), ``add_eos``,
    ``pad_id`` (default: the tokenizer's), ``format`` of the shards, ``rows_per_shard``,
    ``workers`` (default: all CPUs), ``memory_budget`` (bytes or ``"2GB"``), ``engine``
    (``local`` or ``ray``), ``overwrite`` (replace another job's output), ``progress``
    (bars; None = when stderr is a terminal) and ``log`` (one line at a time).

    Running it again with the same arguments resumes an interrupted job (or reports the
    finished one); changed inputs or settings raise unless ``overwrite``.
    """
    started = time.monotonic()
    seconds: dict[str, float] = {}
    settings = _settings(locals())
    budget = parse_bytes(memory_budget)
    workers = int(workers or os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out).resolve()
    files = find_inputs(inputs, text_field=text_field)
    pretokenized = files[0].kind == "tokens"
    if not pretokenized and (tokenizer is None) == (train_vocab is None):
        raise ValueError(
            "give a tokenizer (--tokenizer tokenizer.json) or a vocabulary size to train one "
            "on the corpus (--train-vocab N), not both"
            if tokenizer is not None
            else "these inputs hold text: give --tokenizer tokenizer.json or --train-vocab N"
        )
    if tokenizer is not None:
        tokenizer = str(Path(tokenizer).resolve())
        settings["tokenizer_sha256"] = _tokenizer_digest(tokenizer)
    parts = make_parts(files)
    prepare_out_dir(out)
    work = out / WORK
    remove_temporaries(out)
    for sub in ("tokens", "shards", "plan"):
        (work / sub).mkdir(exist_ok=True)
    base = _base_memory()
    rows = settings["rows_per_shard"]
    mem = plan_memory(budget, workers=workers, base=base, shard_slots=rows * max_len)
    if mem.workers < workers:
        log(f"memory budget {budget / 2**20:,.0f} MiB fits {mem.workers} of {workers} workers")
    spec = {
        "files": [f.__dict__ for f in files],
        "parts": [p.segments for p in parts],
        "text_field": text_field,
        "split": split,
        "add_eos": add_eos,
        "batch_bytes": mem.batch_bytes,
        "tokenizer_file": tokenizer,
    }
    write_json(work / "spec.json", spec)
    memory: dict[int, int] = {}
    with make_engine(engine, mem.workers, ray_address=ray_address) as runner:

        def run(task, indices, stage, unit, limit, on_result=None, counter=None):
            bar = Progress(stage, len(indices), unit, bar=progress, log=log)
            t0 = time.monotonic()

            def take(result):
                m = result.pop("memory", None)
                if m:
                    memory[m["pid"]] = max(memory.get(m["pid"], 0), m["hwm"])
                if on_result:
                    on_result(result)
                bar.update(1, **({counter: result[counter]} if counter else {}))

            runner.run(task, str(work), indices, limit=limit, on_result=take)
            bar.close()
            seconds[stage] = seconds.get(stage, 0.0) + time.monotonic() - t0

        # pass 0: what the job is; resume, finish early, or refuse
        hashes: dict[int, dict] = {}
        run(tasks.hash_input, range(len(files)), "hash inputs", "files", mem.workers,
            lambda r: hashes.__setitem__(r["index"], r))  # fmt: skip
        identity = {
            "settings": settings,
            "inputs": [
                {
                    "path": f.path,
                    "kind": f.kind,
                    "size": hashes[i]["size"],
                    "sha256": hashes[i]["sha256"],
                }  # fmt: skip
                for i, f in enumerate(files)
            ],
        }
        done = check_identity(out, identity, overwrite=overwrite)
        if done is not None:
            shutil.rmtree(work, ignore_errors=True)
            log(f"{out} already holds this job's complete output (manifest.json verified)")
            return PackReport.from_manifest(out, done, time.monotonic() - started)
        for sub in ("tokens", "shards", "plan"):  # (again: overwrite clears the folder)
            (work / sub).mkdir(exist_ok=True)
        write_json(work / "spec.json", spec)
        write_json(work / "job.json", identity)

        # the tokenizer
        t0 = time.monotonic()
        tok = None
        if train_vocab is not None:
            tokenizer = str(_trained_tokenizer(work, files, parts, spec, train_vocab, log))
            spec["tokenizer_file"] = tokenizer
            write_json(work / "spec.json", spec)
        if tokenizer is not None:
            import packviz as pv

            tok = pv.load_tokenizer(tokenizer)
        pad = _pad_id(pad_id, tok)
        seconds["tokenizer"] = time.monotonic() - t0

        # pass 1: the token store
        records: dict[int, dict] = {}
        run(tasks.tokenize_part, range(len(parts)), "tokenize", "parts", mem.workers,
            lambda r: records.__setitem__(r["part"], r), counter="n_tokens")  # fmt: skip
        records_list = [records[i] for i in range(len(parts))]

        # the plan, from every length at once
        t0 = time.monotonic()
        plan = _plan(work, records_list, settings, files)
        seconds["plan"] = time.monotonic() - t0
        n_shards = -(-plan.n_rows // rows)
        log(f"plan: {plan.n_rows:,} rows of {max_len:,} from {plan.n_pieces:,} pieces; "
            f"{n_shards:,} shards")  # fmt: skip
        fingerprint = None if tok is None else _fingerprint(tok)
        write_json(
            work / "pass2.json",
            {
                "out": str(out),
                "format": format,
                "rows_per_shard": rows,
                "n_rows": plan.n_rows,
                "n_docs": plan.n_docs,
                "pad_id": pad,
                "plan": plan.settings(),
                "parts": records_list,
                "shard_metadata": {
                    "tokenizer_fingerprint": fingerprint,
                    "pad_id": pad,
                    "n_shards": n_shards,
                },  # fmt: skip
            },
        )

        # pass 2: the shards
        shards: dict[int, dict] = {}
        run(tasks.write_shard, range(n_shards), "write shards", "shards", mem.shards_at_once,
            lambda r: shards.__setitem__(int(r["file"].split("-")[1].split(".")[0]), r))  # fmt: skip

    # the manifest, last
    stats = plan.stats()
    tokenizer_info = _tokenizer_info(out, work, tokenizer, train_vocab, fingerprint)
    per_file = np.zeros(len(files), dtype=np.int64)
    for r in records_list:
        for i, _, _, n in r["segments"]:
            per_file[i] += n
    for entry, n in zip(identity["inputs"], per_file.tolist(), strict=True):
        entry["documents"] = n
    manifest = build_manifest(
        identity,
        tokenizer=tokenizer_info,
        pad_id=pad,
        corpus={
            "documents": plan.n_docs,
            "tokens": int(stats.input_tokens),
            "trained_flags": any("trained" in r["sha256"] for r in records_list),
        },  # fmt: skip
        stats=stats.as_dict(),
        shards=[shards[i] for i in range(n_shards)],
    )
    write_json(out / MANIFEST, manifest)
    shutil.rmtree(work, ignore_errors=True)
    seconds["total"] = time.monotonic() - started
    return PackReport(out, manifest, stats, seconds, _memory_summary(memory, budget, mem))


def _settings(args: dict) -> dict:
    """The settings that change output bytes, checked."""
    fmt = check_choice("format", args["format"], FORMATS)
    max_len = check_max_len(args["max_len"])
    rows = args["rows_per_shard"]
    rows = default_rows_per_shard(max_len) if rows is None else rows
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows per shard must be a positive integer, got {rows!r}")
    seed = args["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    vocab = args["train_vocab"]
    if vocab is not None and (isinstance(vocab, bool) or not isinstance(vocab, int)):
        raise ValueError(f"the vocabulary size must be an integer, got {vocab!r}")
    pad = args["pad_id"]
    if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int) or pad < 0):
        raise ValueError(f"pad id must be a non-negative integer, got {pad!r}")
    return {
        "max_len": max_len,
        "strategy": check_choice("strategy", args["strategy"], STRATEGIES),
        "sort": check_choice("sort", args["sort"], SORTS),
        "overflow": check_choice("overflow", args["overflow"], OVERFLOWS),
        "seed": seed,
        "format": fmt,
        "rows_per_shard": rows,
        "text_field": str(args["text_field"]),
        "split": check_choice("split", args["split"], SPLITS),
        "add_eos": bool(args["add_eos"]),
        "pad_id": pad,
        "train_vocab": vocab,
        "train_sample_chars": TRAIN_SAMPLE_CHARS if vocab is not None else None,
        "tokenizer_sha256": None,
    }


def _tokenizer_digest(path: str) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        from packviz.tokenize import TokenizerError

        raise TokenizerError(f"no tokenizer file at {path} ({exc.strerror or exc})") from None


def _base_memory() -> int:
    """Resident memory of a process that has loaded what workers load (this one)."""
    import pyarrow.json  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import tokenizers  # noqa: F401

    return max(tasks.memory()["hwm"], 64 << 20)


def _trained_tokenizer(work: Path, files, parts, spec, vocab: int, log) -> Path:
    """Train (once; a resumed run reuses the saved file) on the first documents."""
    import packviz as pv

    path = work / TOKENIZER_FILE
    if path.is_file():
        try:
            pv.load_tokenizer(path)
            return path
        except ValueError:
            path.unlink()
    docs, chars = [], 0
    for part in parts:
        for i, lo, hi in part.segments:
            for batch in read_segment(files[i], lo, hi, text_field=spec["text_field"],
                                      split=spec["split"], batch_bytes=1 << 20):  # fmt: skip
                for d in batch:
                    if d and chars < TRAIN_SAMPLE_CHARS:
                        docs.append(d)
                        chars += len(d)
                if chars >= TRAIN_SAMPLE_CHARS:
                    break
    if not docs:
        raise CorpusError("no text to train a tokenizer on: every document is empty")
    log(f"training a {vocab:,}-token byte-level BPE on {len(docs):,} documents ({chars:,} chars)")
    tok = pv.train_tokenizer(docs, vocab_size=vocab, cache_dir=False)
    write_atomic(path, [tok.to_str().encode()])
    return path


def _pad_id(pad_id: int | None, tok) -> int:
    if pad_id is not None:
        return int(pad_id)
    if tok is None:
        return 0
    import packviz as pv

    return int(pv.pad_token_id(tok))


def _fingerprint(tok) -> str:
    import packviz as pv

    return pv.tokenizer_fingerprint(tok)


def _plan(work: Path, records: list[dict], settings: dict, files):
    import packviz as pv
    from packviz.pipeline.store import TokenStore

    store = TokenStore(work / "tokens", records)
    if store.n_docs == 0:
        raise CorpusError(f"empty corpus: no documents in the {len(files):,} input files")
    lengths = store.lengths()
    if not lengths.any():
        raise CorpusError(f"empty corpus: all {lengths.size:,} documents are empty")
    plan = pv.pack(
        lengths,
        settings["max_len"],
        strategy=settings["strategy"],
        sort=settings["sort"],
        overflow=settings["overflow"],
        seed=settings["seed"],
    )
    del lengths  # the plan keeps its own copy
    for name in PIECE_FIELDS:
        _save_npy(work / "plan" / f"{name}.npy", getattr(plan, name))
    _save_npy(work / "plan" / "row_starts.npy", plan.row_starts)  # last: marks a new plan
    return plan


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(array))
    write_atomic(path, [head.getvalue(), np.ascontiguousarray(array)])


def _tokenizer_info(out: Path, work: Path, tokenizer, vocab, fingerprint) -> dict:
    if tokenizer is None:
        return {"source": "pre-tokenized", "fingerprint": None}
    if vocab is None:
        return {"source": tokenizer, "fingerprint": fingerprint}
    data = (work / TOKENIZER_FILE).read_bytes()
    digest = write_atomic(out / TOKENIZER_FILE, [data])
    return {"source": f"trained: {vocab} tokens", "fingerprint": fingerprint,
            "file": TOKENIZER_FILE, "sha256": digest}  # fmt: skip


def _memory_summary(memory: dict[int, int], budget: int, mem) -> dict:
    driver = tasks.memory()["hwm"]
    workers = {pid: hwm for pid, hwm in memory.items() if pid != os.getpid()}
    return {
        "budget": budget,
        "workers": mem.workers,
        "driver_peak": driver,
        "worker_peaks": sorted(workers.values()),
        "total_peak": driver + sum(workers.values()),
    }
