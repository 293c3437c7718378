"""Shared benchmark plumbing: one subprocess per measurement, median time, peak memory.

Every (workload, method) runs in a fresh Python process, so its peak memory is its own
and a heavy peer cannot push the machine over. Inside the worker: build the inputs, reset
the kernel's high-water mark (``/proc/self/clear_refs``), run once to read the peak RSS
above the inputs, then time ``repeats`` runs and report the median.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where runs are kept (``$PACKVIZ_BENCH_OUT`` overrides, e.g. for the smoke test).
OUT = Path(os.environ.get("PACKVIZ_BENCH_OUT") or Path(__file__).resolve().parent / "out")


def _status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(fn, repeats: int = 3) -> dict:
    """Peak RSS above the current RSS during a first (warm-up) call, then the median of
    ``repeats`` timed calls (``repeats=1``: the first call is the timed one).

    Calls under 10 ms are timed like ``timeit``: each of the ``repeats`` samples is a
    batch of back-to-back calls (about 50 ms worth) divided by its size, without a
    ``gc.collect()`` in between — a full collection before a microsecond call leaves the
    caches cold and would time that instead (10× for a 512² mask)."""
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    del result
    times = [first] if repeats <= 1 else []
    batch = max(1, int(0.05 / max(first, 1e-6))) if first < 0.01 else 1
    for _ in range(repeats if repeats > 1 else 0):
        if batch == 1:
            gc.collect()
        t0 = time.perf_counter()
        for _ in range(batch):
            result = fn()
            del result
        times.append((time.perf_counter() - t0) / batch)
    return {"time": statistics.median(times), "times": times, "peak_mb": (peak - base) / 1024}


def run_worker(script: str, spec: dict, timeout: float = 900) -> dict:
    """Run ``script --worker SPEC`` in a fresh process; return its JSON (or an error)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, script, "--worker", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {**spec, "error": tail[:160]}
    return {**spec, **json.loads(lines[-1])}


def worker_main(handlers: dict) -> bool:
    """If invoked as a worker, run the handler named in the spec and print JSON."""
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        spec = json.loads(sys.argv[2])
        out = handlers[spec["method"]](spec)
        print(json.dumps(out))
        return True
    return False


def peer_available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def machine() -> str:
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, torch {torch.__version__}"
    )


def fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def time_and_memory_cells(r: dict) -> None:
    """Fill the table cells every benchmark shows: ``t`` (median time, or the error) and
    ``mem`` (peak extra RSS)."""
    r["t"] = fmt_time(r.get("time")) if "error" not in r else r["error"]
    r["mem"] = f"{r['peak_mb']:.0f} MB" if "peak_mb" in r else "—"


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Markdown table of ``rows`` with (key, header) columns; printed and returned."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(str(r.get(k, "")) for k, _ in columns) + " |" for r in rows]
    text = "\n".join([head, sep, *body])
    print(text, flush=True)
    return text


def save_results(name: str, rows: list[dict], table: str) -> None:
    """Keep a run's rows (JSON, for charts) and its table (Markdown) in benchmarks/out/."""
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(rows, indent=1))
    (OUT / f"{name}.md").write_text(table + "\n")
