"""`packviz pack` end to end on a generated corpus, side by side with its floors.

Workload: ``--docs`` documents (default 1M) of real English words from the Python docs,
log-normal word counts (median 12, sigma 1), in 16 JSONL files; a byte-level BPE of 8,192
tokens trained on the first 20k documents; and the same number of pre-tokenized documents
(random ids, log-normal lengths, median 25 tokens) in 16 parquet files. Each measurement
runs in its own process; memory is sampled over the whole process tree.

Comparisons (issue 12):

1. ``packviz pack`` on the text, end to end (a fresh process: hash, tokenize, plan,
   write shards, manifest) vs tokenizing the same documents alone with the same tokenizer
   (`packviz.encode`) on the same number of worker processes, the documents already in
   memory: the floor.
2. ``packviz pack`` on the pre-tokenized parquet vs a job that reads that input once and
   writes the output once: a fresh ``python`` process started the same way and timed the
   same way (launch to exit, CPU of every process), on the same number of worker processes
   started like the packer's (a fork server that imports pyarrow, pandas and packviz once),
   each reading its share of the input files (``input_ids`` to numpy) and encoding
   (`packviz.to_bytes`: the same format, compression and bytes as the shards) and writing
   (fsync) its share of the same shards from arrays already on disk, memory-mapped — the
   floor of a job with nothing to tokenize. The work alone (imports done, processes
   started) is reported next to it.
3. Planning at L = 2048 (``packviz.pack``, best fit, descending) vs ``np.sort`` of the same
   lengths, interleaved in one process, and planning's memory beyond the plan per piece.

    python benchmarks/bench_cli.py [--docs 1000000] [--workers 2] [--planning-docs 10000000]
    python benchmarks/bench_cli.py --docs 5000000 --pre-only   # comparison 2 alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import (
    OUT,
    ROOT,
    machine,
    print_table,
    run_worker,
    save_results,
    worker_main,
)
from benchmarks._proc_memory import TreeMemory

FILES = 16
MB = 2**20


# ----------------------------------------------------------------------------- corpus


def _words():
    import packviz as pv

    words = sorted({w for w in " ".join(pv.load_builtin("python-docs")).split() if w.isalpha()})
    return words


def make_corpus(folder: Path, n_docs: int, *, text: bool = True) -> dict:
    """Text JSONL (unless ``text=False``), pre-tokenized parquet and a tokenizer under
    ``folder`` (cached). Text and ids come from separate random streams, so the
    pre-tokenized files are the same with or without the text."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import packviz as pv

    done = folder / "corpus.json"
    if done.is_file():
        info = json.loads(done.read_text())
        if info.get("text", True) or not text:
            return info
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tokens").mkdir(parents=True)
    rng, id_rng = np.random.default_rng(0), np.random.default_rng(1)
    for f in range(FILES):
        n = n_docs // FILES + (f < n_docs % FILES)
        lengths = np.clip(id_rng.lognormal(np.log(25), 1.0, n).astype(np.int64), 1, 8000)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        values = id_rng.integers(0, 8192, int(offsets[-1]), dtype=np.int32)
        table = pa.table({"input_ids": pa.ListArray.from_arrays(offsets, values)})
        pq.write_table(table, folder / "tokens" / f"part-{f:02d}.parquet", row_group_size=1 << 16)
    info = {"docs": n_docs, "tokens_bytes": _size(folder / "tokens"), "text": text}
    if text:
        (folder / "text").mkdir()
        words = np.array(_words())
        sample = []
        for f in range(FILES):
            n = n_docs // FILES + (f < n_docs % FILES)
            counts = np.clip(rng.lognormal(np.log(12), 1.0, n).astype(np.int64), 1, 2000)
            picks = words[rng.integers(0, words.size, int(counts.sum()))]
            docs = [" ".join(x) for x in np.split(picks, np.cumsum(counts)[:-1])]
            if len(sample) < 20_000:
                sample += docs[: 20_000 - len(sample)]
            with open(folder / "text" / f"part-{f:02d}.jsonl", "w") as fh:
                fh.writelines(f'{{"text": "{d}"}}\n' for d in docs)
        tok = pv.train_tokenizer(sample, vocab_size=8192, cache_dir=False)
        tok.save(str(folder / "tokenizer.json"))
        info["text_bytes"] = _size(folder / "text")
    done.write_text(json.dumps(info))
    return info


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- handlers


def _encode_files(args) -> dict:
    """One worker of the tokenizing floor: for each of its files, load the documents
    (not timed), then encode them (timed)."""
    files, tokenizer = args
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import packviz as pv

    tok = pv.load_tokenizer(tokenizer)
    t, cpu, tokens, n = 0.0, 0.0, 0, 0
    for f in files:
        with open(f) as fh:
            docs = [json.loads(line)["text"] for line in fh]
        t0, c0 = time.perf_counter(), time.process_time()
        ids = pv.encode(tok, docs, batch_size=1024)
        t += time.perf_counter() - t0
        cpu += time.process_time() - c0
        tokens, n = tokens + ids.n_tokens, n + len(docs)
        del docs, ids
    return {"time": t, "cpu": cpu, "tokens": tokens, "docs": n}


def _tokenize_alone(spec) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    files = sorted(Path(spec["corpus"], "text").glob("*.jsonl"))
    w = spec["workers"]
    shares = [([str(f) for f in files[i::w]], spec["tokenizer"]) for i in range(w)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(w, mp_context=ctx) as pool:
        results = list(pool.map(_encode_files, shares))
    return {
        "time": max(r["time"] for r in results),  # they run side by side
        "cpu": sum(r["cpu"] for r in results),
        "tokens": sum(r["tokens"] for r in results),
        "docs": sum(r["docs"] for r in results),
    }


#: What the floor's fork server imports before forking its workers (as the packer's does).
_FLOOR_PRELOAD = ["numpy", "pyarrow.parquet", "pandas", "packviz"]


def prepare_floor_arrays(out: Path, target: Path) -> None:
    """The packer's shards as one folder of ``.npy`` arrays each (untimed): what the
    floor encodes and writes again, memory-mapped."""
    import numpy as np

    import packviz as pv

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for shard in sorted(out.glob("shard-*")):
        a = pv.load(shard)
        d = target / shard.stem
        d.mkdir()
        for name in ("input_ids", "labels", "position_ids", "doc_ids", "cu_seqlens", "row_index"):
            np.save(d / f"{name}.npy", getattr(a, name))
        meta = {k: v for k, v in a.metadata.items() if k != "plan"}
        meta = {"format": shard.suffix[1:], "max_seqlen": a.max_seqlen, "metadata": meta}
        (d / "meta.json").write_text(json.dumps(meta))


def _read_write_share(args) -> dict:
    """One worker of the pre-tokenized floor: read its input files once, then encode and
    write its shards once (from memory-mapped arrays); times the work alone too."""
    inputs, arrays, target = args
    import numpy as np
    import pyarrow.parquet as pq

    import packviz as pv

    t0, c0 = time.perf_counter(), time.process_time()
    tokens = 0
    for f in inputs:
        column = pq.read_table(f, columns=["input_ids"]).column("input_ids")
        tokens += sum(chunk.values.to_numpy().size for chunk in column.chunks)
    t_read = time.perf_counter() - t0
    written = 0
    for d in map(Path, arrays):
        meta = json.loads((d / "meta.json").read_text())
        load = lambda name, d=d: np.load(d / f"{name}.npy", mmap_mode="r")  # noqa: E731
        a = pv.PackedArrays(
            **{k: load(k) for k in ("input_ids", "labels", "position_ids", "doc_ids")},
            cu_seqlens=load("cu_seqlens"),
            max_seqlen=meta["max_seqlen"],
            row_index=load("row_index"),
        )
        data = pv.to_bytes(a, meta["format"], metadata=meta["metadata"])
        with open(Path(target) / f"{d.name}.bin", "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        written += len(data)
    return {"time": time.perf_counter() - t0, "cpu": time.process_time() - c0, "read": t_read,
            "tokens": tokens, "bytes": written}  # fmt: skip


def _floor_job(spec: dict) -> None:
    """``bench_cli.py --floor-job SPEC``: the pre-tokenized floor as a command of its own,
    shares spread over ``workers`` processes (in this one when there is one, as the
    packer does); prints the work-alone figures as JSON."""
    files = sorted(str(p) for p in Path(spec["corpus"], "tokens").glob("*.parquet"))
    arrays = sorted(str(p) for p in Path(spec["arrays"]).iterdir())
    target = Path(spec["target"])
    target.mkdir(parents=True, exist_ok=True)
    w = spec["workers"]
    shares = [(files[i::w], arrays[i::w], str(target)) for i in range(w)]
    if w == 1:
        results = [_read_write_share(shares[0])]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_FLOOR_PRELOAD)
        with ProcessPoolExecutor(w, mp_context=context) as pool:
            results = list(pool.map(_read_write_share, shares))
    print(json.dumps({
        "work_time": max(r["time"] for r in results),  # side by side
        "work_cpu": sum(r["cpu"] for r in results),
        "read": max(r["read"] for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "tokens": sum(r["tokens"] for r in results),
    }))  # fmt: skip


def _read_write_once(corpus: Path, arrays: Path, workers: int) -> dict:
    """The floor job, timed from launch to exit with every process's CPU (as the packer)."""
    target = corpus / "write-once"
    spec = {"corpus": str(corpus), "arrays": str(arrays), "target": str(target),
            "workers": workers}  # fmt: skip
    r = _launch([str(Path(__file__).resolve()), "--floor-job", json.dumps(spec)])
    shutil.rmtree(target, ignore_errors=True)
    if "error" in r:
        return r
    work = json.loads(r.pop("stdout").strip().splitlines()[-1])
    return {**r, **work}


def _planning(spec) -> dict:
    """pack vs np.sort on the same lengths, interleaved; memory beyond the plan."""
    import gc
    import statistics

    import numpy as np

    import packviz as pv
    from benchmarks._harness import _status_kb

    # the design's workload, as pv.synthetic_lengths draws it (which stops at 50M documents)
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(np.log(300), 1.0, spec["n"]), 1, 32768).astype(np.int64)
    L = spec["L"]
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kb("VmRSS")
    plan = pv.pack(lengths, L)
    peak = _status_kb("VmHWM") - base
    n_pieces = plan.n_pieces
    plan_bytes = sum(getattr(plan, k).nbytes for k in ("row", "doc", "start", "length", "offset"))
    del plan
    t_pack, t_sort = [], []
    for _ in range(spec["repeats"]):
        gc.collect()
        t0 = time.perf_counter()
        np.sort(lengths)
        t_sort.append(time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        pv.pack(lengths, L)
        t_pack.append(time.perf_counter() - t0)
    return {
        "pack": statistics.median(t_pack),
        "sort": statistics.median(t_sort),
        "pieces": n_pieces,
        "extra_per_piece": (peak * 1024 - plan_bytes) / n_pieces,
        "plan_per_piece": plan_bytes / n_pieces,
    }


HANDLERS = {"tokenize": _tokenize_alone, "planning": _planning}


def _pack_cli(args: list[str]) -> dict:
    """``packviz pack ...`` in a fresh process, memory sampled over its process tree (with
    ``--engine ray`` that includes the local Ray instance the command starts)."""
    r = _launch(["-m", "packviz", "pack", *args])
    if "error" not in r:
        r["summary"] = r.pop("stdout").strip()
        r["stages"] = _stage_seconds(r["summary"])
    return r


def _launch(argv: list[str]) -> dict:
    """``python ARGV`` in a fresh process, timed from launch to its exit (when a shell
    would return: a fork server and resource tracker it leaves behind end on their own a
    moment later); CPU seconds and memory of its whole process tree, those included."""
    import threading

    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    exited = []

    def wait() -> None:
        proc.wait()
        exited.append(time.perf_counter())

    waiter = threading.Thread(target=wait)
    waiter.start()
    with TreeMemory(proc.pid, every=0.01) as mem:
        stdout, stderr = proc.communicate()  # until every process holding the pipes ends
    waiter.join()
    t = exited[0] - t0
    cpu = mem.cpu_total  # every process of the tree, Ray's workers included
    if proc.returncode != 0:
        return {"error": (stderr.strip().splitlines() or ["?"])[-1][:200]}
    return {
        "time": t,
        "cpu": cpu,
        "stdout": stdout,
        "hwm_total": mem.hwm_total,
        "anon_peak": mem.anon_sum_peak,
        "driver_hwm": mem.hwm.get(proc.pid, 0),
        "processes": len(mem.hwm),
    }


def _stage_seconds(summary: str) -> dict:
    """``{"tokenize": 12.5, ...}`` from the summary's ``time:`` line."""
    line = next((x for x in summary.splitlines() if x.startswith("time: ")), "")
    out = {}
    for item in line[6:].split(", "):
        name, _, value = item.rpartition(" ")[0].rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--max-len", type=int, default=2048)
    ap.add_argument("--memory-budget", default="2GB")
    ap.add_argument("--planning-docs", type=int, nargs="*", default=[10_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus")
    ap.add_argument("--no-ray", action="store_true", help="skip the --engine ray run")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of run and floor")
    ap.add_argument(
        "--pre-only",
        action="store_true",
        help="only the pre-tokenized comparison (no text, Ray or planning)",
    )
    args = ap.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    folder = OUT / f"cli-corpus-{args.docs}"
    t0 = time.perf_counter()
    info = make_corpus(folder, args.docs, text=not args.pre_only)
    text_size = f"{info['text_bytes'] / MB:,.0f} MiB of JSONL, " if "text_bytes" in info else ""
    print(f"corpus: {args.docs:,} documents, {text_size}"
          f"{info['tokens_bytes'] / MB:,.0f} MiB pre-tokenized parquet "
          f"(made in {time.perf_counter() - t0:.0f} s)\n", flush=True)  # fmt: skip
    w, tok = args.workers, str(folder / "tokenizer.json")
    common = ["--max-len", str(args.max_len), "--workers", str(w),
              "--memory-budget", args.memory_budget]  # fmt: skip
    rows = []

    # each run and its floor alternate, ``--rounds`` times; the best of each is compared
    # (other work on a shared machine only ever slows a run down)
    out_text, out_tok = folder / "out-text", folder / "out-tokens"
    arrays = folder / "floor-arrays"
    runs: dict[str, list[dict]] = {"e2e": [], "floor": [], "pre": [], "bar": []}
    prepared = False
    for _ in range(args.rounds):
        if not args.pre_only:
            runs["floor"].append(run_worker(__file__, {"method": "tokenize",
                                                       "corpus": str(folder), "tokenizer": tok,
                                                       "workers": w}, timeout=3600))  # fmt: skip
            shutil.rmtree(out_text, ignore_errors=True)
            runs["e2e"].append(_pack_cli([str(folder / "text"), "--out", str(out_text),
                                          "--tokenizer", tok, *common]))  # fmt: skip
        shutil.rmtree(out_tok, ignore_errors=True)
        runs["pre"].append(_pack_cli([str(folder / "tokens"), "--out", str(out_tok), *common]))
        if "time" in runs["pre"][-1] and not prepared:  # the same shards every round
            prepare_floor_arrays(out_tok, arrays)
            prepared = True
        runs["bar"].append(_read_write_once(folder, arrays, w))
    e2e, floor, pre, bar = (_best(runs[k]) for k in ("e2e", "floor", "pre", "bar"))
    if not args.pre_only:
        rows.append(_row("packviz pack, text (end to end)", e2e, floor, "tokenizing alone",
                         runs["e2e"]))  # fmt: skip
        rows.append(_row(f"tokenize alone (pv.encode, {w} processes)", floor, floor, "",
                         runs["floor"]))  # fmt: skip
    if not (args.no_ray or args.pre_only):
        out_ray = folder / "out-ray"
        shutil.rmtree(out_ray, ignore_errors=True)
        ray = _pack_cli([str(folder / "text"), "--out", str(out_ray), "--tokenizer", tok,
                         "--engine", "ray", *common])  # fmt: skip
        same = "time" in ray and _same_files(out_ray, out_text)
        rows.append(_row(f"packviz pack --engine ray, text (local Ray, {w} CPUs)"
                         + ("" if same else " — OUTPUT DIFFERS"), ray, floor,
                         "tokenizing alone"))  # fmt: skip
        shutil.rmtree(out_ray, ignore_errors=True)
    work = {"time": bar["work_time"], "cpu": bar["work_cpu"]} if "work_time" in bar else bar
    pre_row = _row("packviz pack, pre-tokenized (end to end)", pre, bar, "read + write once",
                   runs["pre"])  # fmt: skip
    if "time" in pre and "time" in work:
        pre_row["ratio_work"] = (f"{pre['time'] / work['time']:.2f}× / "
                                 f"{pre['cpu'] / work['cpu']:.2f}×")  # fmt: skip
    rows.append(pre_row)
    rows.append(_row(f"read the input + encode and write the output once: a job, launch to "
                     f"exit ({w} worker processes)", bar, bar, "", runs["bar"]))  # fmt: skip
    rows.append(_row("  the same work alone (processes started, imports done)", work, work, "",
                     [{"time": r["work_time"], "cpu": r["work_cpu"]} for r in runs["bar"]
                      if "work_time" in r]))  # fmt: skip
    table = print_table(
        rows,
        [("label", "run"), ("t", "time (best)"), ("ratio", "÷ floor"), ("floor", "floor"),
         ("all", "each round: time / CPU (s)"), ("cpu_s", "CPU, all processes"),
         ("cpu_ratio", "CPU ÷ floor"), ("ratio_work", "÷ the floor's work alone (time / CPU)"),
         ("mem", "peak memory, all processes (anon / VmHWM)"), ("rate", "throughput"),
         ("stages", "stages (s)")],
    )  # fmt: skip
    for name, r in (("text", e2e), ("pre-tokenized", pre)):
        if "summary" in r:
            print(f"\n{name}:\n{r['summary']}")

    plan_rows = []
    for n in [] if args.pre_only else args.planning_docs:
        p = run_worker(__file__, {"method": "planning", "n": n, "L": 2048,
                                  "repeats": args.repeats}, timeout=3600)  # fmt: skip
        if "error" in p:
            plan_rows.append({"N": f"{n:,}", "pack": p["error"]})
            continue
        plan_rows.append({
            "N": f"{n:,}",
            "pack": f"{p['pack']:.2f} s",
            "sort": f"{p['sort']:.2f} s",
            "ratio": f"{p['pack'] / p['sort']:.1f}×",
            "extra": f"{p['extra_per_piece']:.1f} B",
            "plan": f"{p['plan_per_piece']:.0f} B",
        })  # fmt: skip
    print()
    plan_table = print_table(
        plan_rows,
        [("N", "documents (L = 2048)"), ("pack", "pv.pack best_fit desc"), ("sort", "np.sort"),
         ("ratio", "pack ÷ np.sort"), ("extra", "planning memory per piece"),
         ("plan", "the plan per piece")],
    )  # fmt: skip
    save_results("cli", [*rows, *plan_rows], table + "\n\n" + plan_table)
    for d in (out_text, out_tok, arrays):
        shutil.rmtree(d, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def _best(results: list[dict]) -> dict:
    ok = [r for r in results if "time" in r]
    return min(ok, key=lambda r: r["time"]) if ok else (results[-1] if results else {})


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def _row(label: str, r: dict, floor: dict, floor_name: str, rounds=()) -> dict:
    row = {"label": label, **{k: v for k, v in r.items() if k not in ("summary", "stdout")}}
    row["all"] = " · ".join(f"{x['time']:.1f} / {x['cpu']:.1f}" for x in rounds if "time" in x)
    if "error" in r:
        row["t"] = r["error"]
        return row
    row["t"] = f"{r['time']:.1f} s"
    if "cpu" in r:
        row["cpu_s"] = f"{r['cpu']:.1f} s"
    if floor_name and "time" in floor:
        row["ratio"] = f"{r['time'] / floor['time']:.2f}×"
        row["floor"] = floor_name
    if floor_name and "cpu" in floor and "cpu" in r:
        row["cpu_ratio"] = f"{r['cpu'] / floor['cpu']:.2f}×"
    if "anon_peak" in r:
        row["mem"] = f"{r['anon_peak'] / MB:,.0f} / {r['hwm_total'] / MB:,.0f} MiB"
    if "tokens" in r:
        row["rate"] = f"{r['tokens'] / r['time'] / 1e6:.2f} M tokens/s"
    if "stages" in r:
        row["stages"] = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
    return row


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--floor-job":
        _floor_job(json.loads(sys.argv[2]))
    elif not worker_main(HANDLERS):
        main()
