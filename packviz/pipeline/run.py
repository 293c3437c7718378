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

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from packviz.choices import (
    FORMATS,
    OVERFLOWS,
    SORTS,
    SPLITS,
    STRATEGIES,
    TRAIN_ON,
    Format,
    Overflow,
    Sort,
    Split,
    Strategy,
    TrainOn,
    check_choice,
)
from packviz.corpus import CorpusError
from packviz.limits import check_int, check_max_len
from packviz.pipeline import records as fine_tuning
from packviz.pipeline import tasks
from packviz.pipeline import tokenizer as tokenizers
from packviz.pipeline.budget import PROCESS_BASE, MemoryPlan, parse_bytes, plan_memory
from packviz.pipeline.engines import Engine, make_engine
from packviz.pipeline.files import write_atomic, write_json
from packviz.pipeline.inputs import check_paths, find_inputs, input_specs, make_parts
from packviz.pipeline.lock import JobLock
from packviz.pipeline.manifest import (
    MANIFEST,
    PACK_FORMAT,
    WORK,
    build_manifest,
    check_identity,
    clear_work,
    prepare_out_dir,
    remove_temporaries,
)
from packviz.pipeline.progress import Progress, log_to_stderr
from packviz.pipeline.report import PackReport
from packviz.pipeline.shards import PIECE_ARRAYS

#: Token slots per shard when ``rows_per_shard`` is not given (4 MiB slots = 64 MiB of
#: int32 arrays: 2,048 rows at max_len 2048).
DEFAULT_SHARD_SLOTS = 1 << 22


def pv_version() -> str:
    from packviz import __version__

    return __version__


def default_rows_per_shard(max_len: int) -> int:
    return max(1, DEFAULT_SHARD_SLOTS // max_len)


def pack_corpus(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    max_len: int = 2048,
    strategy: Strategy = "best_fit",
    sort: Sort = "desc",
    overflow: Overflow = "split",
    seed: int = 0,
    tokenizer: str | os.PathLike | None = None,
    train_vocab: int | None = None,
    text_field: str = "text",
    split: Split = "paragraph",
    add_eos: bool = True,
    train_on: TrainOn | None = None,
    chat_template: str | os.PathLike | None = None,
    pad_id: int | None = None,
    format: Format = "parquet",  # noqa: A002 - the command line's name
    rows_per_shard: int | None = None,
    workers: int | None = None,
    memory_budget: int | str = "2GB",
    engine: Engine | object = "local",
    ray_address: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = log_to_stderr,
) -> PackReport:
    """Pack the documents of ``inputs`` (files, folders, globs) into shards under ``out``.

    Settings are those of `packviz.pack` and `packviz.materialize`, plus: ``tokenizer``
    (a ``tokenizer.json``) or ``train_vocab`` (train a byte-level BPE of that size on the
    first characters of the corpus; neither for pre-tokenized parquet), ``text_field``
    (JSONL/parquet/CSV), ``split`` (``.txt``/``.md``), ``add_eos``, ``train_on`` (read
    every record as a fine-tuning record and train only on what it says, as
    `packviz.encode_records`; needs ``tokenizer``) with its ``chat_template`` (a path;
    `packviz.pipeline.records`), ``pad_id`` (default:
    the tokenizer's), ``format`` of the shards, ``rows_per_shard``, ``workers`` (default:
    all CPUs, of the cluster with Ray), ``memory_budget`` (bytes or ``"2GB"``, for all
    processes on this machine at once; on Ray, for each node), ``engine`` (``"local"``, ``"ray"``, or an engine object),
    ``overwrite`` (replace another job's output), ``progress`` (bars; None = when stderr
    is a terminal) and ``log`` (one line at a time).

    Running it again with the same arguments resumes an interrupted job (or reports the
    finished one); changed inputs or settings raise unless ``overwrite``. With
    ``workers > 1`` the local engine spawns processes: a script calling this needs the
    usual ``if __name__ == "__main__":`` guard.
    """
    started = time.monotonic()
    inputs = input_specs(inputs)
    check_paths(out, tokenizer=tokenizer, chat_template=chat_template, text_field=text_field)
    fine_tuning.check_settings(train_on, tokenizer, train_vocab, chat_template)
    settings = _settings(locals())
    budget = parse_bytes(memory_budget)
    if workers is not None:
        workers = check_int("workers", workers, least=1, most=1 << 16)
    out = Path(out).resolve()
    if isinstance(engine, str):
        runner = make_engine(engine, workers, ray_address=ray_address)
    elif all(callable(getattr(engine, m, None)) for m in ("run", "warm_up", "close", "cpus")):
        runner = engine
    else:
        raise TypeError(f"engine must be 'local', 'ray' or an engine object, got {engine!r:.60}")
    lock, records = None, None
    try:
        mem = _memory_plan(runner, workers, budget, settings, log)
        runner.warm_up()  # local workers start (and import) while the inputs are examined
        files = find_inputs(inputs, text_field=text_field, exclude=out,
                            records=train_on is not None)  # fmt: skip
        if train_on is not None:
            fine_tuning.check_inputs(files)
            tokenizer = str(Path(tokenizer).resolve())
            records = fine_tuning.spec_entry(train_on, chat_template, tokenizer, add_eos=add_eos)
            settings["rendering"] = fine_tuning.identity_entry(records)
        else:
            tokenizer = tokenizers.check_choice(files, tokenizer, train_vocab)
        for given in (tokenizer, chat_template):
            if given not in (None, fine_tuning.CHATML) and _under(Path(given), out):
                raise ValueError(
                    f"{given} is inside --out {out}; keep it outside the output folder"
                )
        if tokenizer is not None:
            settings["tokenizer_sha256"] = tokenizers.file_digest(tokenizer)
        parts = make_parts(files)
        prepare_out_dir(out)
        lock = JobLock(out / WORK).acquire()  # before anything is written in the folder
        remove_temporaries(out)
        job = _Job(out, files, parts, settings, mem, budget, progress, log)
        job.overwrite, job.spec["records"] = overwrite, records
        report = job.run(runner, tokenizer, train_vocab, pad_id)
    finally:
        if lock is not None:
            lock.release()
        tasks.forget()  # no memory map of this job's files outlives it in this process
        if train_on is not None:
            fine_tuning.close_children()  # the template's, when tasks ran here
        if isinstance(engine, str):
            runner.close()
    report.seconds["total"] = time.monotonic() - started
    return report


def _under(path: Path, folder: Path) -> bool:
    return folder in path.resolve().parents


def _memory_plan(runner, workers: int | None, budget: int, settings: dict, log):
    """Fit the job into the budget; the engine then runs that many workers. On a Ray
    cluster (`RayEngine.node_cpus`) the budget holds on every node: each task asks for
    enough CPUs that no node runs more tasks than its budget fits."""
    slots = settings["rows_per_shard"] * settings["max_len"]
    helper = PROCESS_BASE if settings["train_on"] is not None else 0  # the template's child

    def fit(n: int):
        return plan_memory(budget, workers=n, base=PROCESS_BASE, shard_slots=slots, helper=helper)

    nodes = getattr(runner, "node_cpus", lambda: None)()
    if nodes:
        fits = [fit(int(c)) for c in nodes]
        per_node = [min(m.workers, m.shards_at_once) for m in fits]
        cpus = max(c / k for c, k in zip(nodes, per_node, strict=True))
        runner.cpus_per_task = cpus
        room = sum(int(c / cpus + 1e-9) for c in nodes)
        n = max(1, min(int(workers or room), room))
        mem = MemoryPlan(n, min(m.batch_bytes for m in fits), n, PROCESS_BASE)
        if room < sum(map(int, nodes)):
            log(f"memory budget {budget / 2**20:,.0f} MiB per node fits {room} tasks at once "
                f"on {len(nodes)} nodes ({cpus:g} CPUs each)")  # fmt: skip
    else:
        wanted = int(workers or runner.cpus())
        mem = fit(wanted)
        if mem.workers < wanted:
            log(f"memory budget {budget / 2**20:,.0f} MiB fits {mem.workers} of {wanted} workers")
    runner.workers = mem.workers
    return mem


class _Job:
    """One run of `pack_corpus`: the stages in order, timed, with their memory."""

    def __init__(self, out: Path, files, parts, settings: dict, mem, budget, progress, log):
        self.out, self.work = out, out / WORK
        self.files, self.parts, self.settings = files, parts, settings
        self.mem, self.budget, self.progress, self.log = mem, budget, progress, log
        self.seconds: dict[str, float] = {}
        self.memory: dict[tuple, int] = {}  # (node, pid) -> peak resident bytes
        self.overwrite = False
        self.job_id = secrets.token_hex(8)  # this run: what tasks may cache is keyed on it
        self.spec = {
            "files": [f.__dict__ for f in files],
            "parts": [p.segments for p in parts],
            "text_field": settings["text_field"],
            "split": settings["split"],
            "add_eos": settings["add_eos"],
            "batch_bytes": mem.batch_bytes,
            "tokenizer_file": None,
        }

    def _write_spec(self) -> None:
        for sub in ("tokens", "shards", "plan"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        write_atomic(self.work / tasks.JOB_ID, [self.job_id.encode()], durable=False)
        write_json(self.work / "spec.json", self.spec, durable=False)

    def stage(self, runner, task, n: int, name: str, unit: str, limit: int, counter=None):
        """Run ``task`` on indices 0..n-1; return the records by index."""
        bar = Progress(name, n, unit, bar=self.progress, log=self.log)
        t0 = time.monotonic()
        records: dict[int, dict] = {}

        def take(record: dict) -> None:
            m = record.pop("memory", {})
            if "pid" in m:
                key = (m.get("node"), m["pid"])
                self.memory[key] = max(self.memory.get(key, 0), m["hwm"])
            records[record["index"]] = record
            bar.update(1, **({"tokens": record[counter]} if counter else {}))

        runner.run(task, str(self.work), range(n), limit=limit, on_result=take)
        bar.close()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - t0
        return [records[i] for i in range(n)]

    def run(self, runner, tokenizer: str | None, vocab: int | None, pad_id: int | None):
        out, work, mem, s = self.out, self.work, self.mem, self.settings
        # pass 0: what the job is; resume, finish early, or refuse
        self.spec["tokenizer_file"] = tokenizer
        self._write_spec()
        hashes = self.stage(runner, tasks.hash_input, len(self.files), "hash inputs", "files",
                            mem.workers)  # fmt: skip
        identity = {
            "pack_format": PACK_FORMAT,
            "packviz_version": pv_version(),
            "settings": s,
            "inputs": [
                {"path": f.path, "kind": f.kind, "size": h["size"], "sha256": h["sha256"]}
                for f, h in zip(self.files, hashes, strict=True)
            ],
        }
        done = check_identity(out, identity, overwrite=self.overwrite)
        if done is not None:
            clear_work(work)
            self.log(f"{out} already holds this job's complete output (manifest.json verified)")
            return PackReport.from_manifest(out, done, 0.0)
        self._write_spec()  # again: overwrite may have cleared the folder
        write_json(work / "job.json", identity, durable=False)

        t0 = time.monotonic()
        if vocab is not None:
            tokenizer = str(tokenizers.trained(work, self.files, self.parts, self.spec, vocab,
                                               self.log))  # fmt: skip
            self.spec["tokenizer_file"] = tokenizer
            self._write_spec()
        tok = None
        if tokenizer is not None:
            import packviz as pv

            tok = pv.load_tokenizer(tokenizer)
        pad = tokenizers.pad_id(pad_id, tok)
        self.seconds["tokenizer"] = time.monotonic() - t0

        # pass 1: the token store
        parts = self.stage(runner, tasks.tokenize_part, len(self.parts), "tokenize", "parts",
                           mem.workers, counter="n_tokens")  # fmt: skip

        # the plan, from every length at once
        t0 = time.monotonic()
        plan = _plan(work, parts, s, self.files)
        self.seconds["plan"] = time.monotonic() - t0
        n_shards = -(-plan.n_rows // s["rows_per_shard"])
        self.log(f"plan: {plan.n_rows:,} rows of {plan.max_len:,} from {plan.n_pieces:,} "
                 f"pieces; {n_shards:,} shards")  # fmt: skip
        entry = tokenizers.manifest_entry(out, work, tokenizer, vocab, tok)
        shard_meta = {"tokenizer_fingerprint": entry["fingerprint"], "pad_id": pad,
                      "n_shards": n_shards}  # fmt: skip
        write_json(
            work / "pass2.json",
            {"out": str(out), "format": s["format"], "rows_per_shard": s["rows_per_shard"],
             "n_rows": plan.n_rows, "n_docs": plan.n_docs, "pad_id": pad,
             "plan": plan.settings(), "parts": parts, "shard_metadata": shard_meta},
            durable=False,
        )  # fmt: skip

        # pass 2: the shards
        shards = self.stage(runner, tasks.write_shard, n_shards, "write shards", "shards",
                            mem.shards_at_once)  # fmt: skip

        # the manifest, last
        stats = plan.stats()
        if any("trained" in r["sha256"] for r in parts):  # the labels the shards hold
            targets = sum(r["targets"] for r in shards)
            stats = dataclasses.replace(stats, trained_targets=targets)
        per_file = np.zeros(len(self.files), dtype=np.int64)
        for r in parts:
            for i, _, _, n in r["segments"]:
                per_file[i] += n
        for item, n in zip(identity["inputs"], per_file.tolist(), strict=True):
            item["documents"] = n
        corpus = {"documents": plan.n_docs, "tokens": int(stats.input_tokens),
                  "trained_flags": any("trained" in r["sha256"] for r in parts)}  # fmt: skip
        for r in shards:
            r.pop("index")
        if self.spec["records"] is not None:
            corpus["rendering_settings"] = fine_tuning.manifest_entry(self.spec["records"], tok)
        manifest = build_manifest(identity, tokenizer=entry, pad_id=pad, corpus=corpus,
                                  stats=stats.as_dict(), shards=shards)  # fmt: skip
        remove_temporaries(out)  # left by a task attempt that was killed and retried
        write_json(out / MANIFEST, manifest)
        clear_work(work)
        return PackReport(out, manifest, stats, self.seconds, self._memory_summary())

    def _memory_summary(self) -> dict:
        driver = tasks.memory()["hwm"]
        here = (None, os.getpid())
        workers = {key: hwm for key, hwm in self.memory.items() if key != here}
        return {
            "budget": self.budget,
            "workers": self.mem.workers,
            "driver_peak": driver,
            "worker_peaks": sorted(workers.values()),
            "total_peak": driver + sum(workers.values()),
            "nodes": sorted({node for node, _ in self.memory if node}),
        }


def _settings(args: dict) -> dict:
    """The settings that change output bytes, checked."""
    fmt = check_choice("format", args["format"], FORMATS)
    max_len = check_max_len(args["max_len"])
    rows = args["rows_per_shard"]
    rows = default_rows_per_shard(max_len) if rows is None else rows
    rows = check_int("rows per shard", rows, least=1)
    seed = check_int("seed", args["seed"], least=0)
    vocab = args["train_vocab"]
    if vocab is not None:
        check_int("the vocabulary size", vocab, least=1)
    train_on = args["train_on"]
    pad = args["pad_id"]
    if pad is not None:
        pad = check_int("pad id", pad, least=0, most=2**31 - 1)
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
        "train_on": None if train_on is None else check_choice("train_on", train_on, TRAIN_ON),
        "rendering": None,
        "pad_id": pad,
        "train_vocab": vocab,
        "train_sample_chars": tokenizers.TRAIN_SAMPLE_CHARS if vocab is not None else None,
        "tokenizer_sha256": None,
    }


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
    for name in PIECE_ARRAYS:
        _save_npy(work / "plan" / f"{name}.npy", getattr(plan, name))
    _save_npy(work / "plan" / "row_starts.npy", plan.row_starts)  # last: marks a new plan
    return plan


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(array))
    # no checksum: a plan is made again by every run that does not find it complete
    write_atomic(path, [head.getvalue(), np.ascontiguousarray(array)], durable=False,
                 checksum=False)  # fmt: skip
