"""GPU masks: dense document masks on CUDA vs the CPU, and the BlockMask built directly
vs ``create_block_mask``, for B × L up to 8 × 32768.

The CPU side builds bool masks only (an fp32 8 × 32768² mask is 32 GiB). CUDA timings
synchronize before reading the clock; every method is checked equal to the CPU result.
Prints a table; exits 0 with a note when no CUDA device is present.

    python benchmarks/bench_gpu.py [--shapes 1x8192 8x8192 2x32768 8x32768] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import fmt_time, machine, print_table


def _doc_ids(batch: int, L: int):
    import numpy as np

    import packviz as pv

    lengths = pv.synthetic_lengths(20 * batch * max(L // 300, 1) + 50, seed=0)
    plan = pv.pack(lengths, L, strategy="next_fit", sort="none")
    rows = np.linspace(0, plan.n_rows - 1, batch + 2).astype(int)[1:-1]
    return pv.materialize(plan, None, pad_id=0, rows=rows).doc_ids


def _time(fn, device, repeats):
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    out = fn()  # warm-up (kernels, allocator)
    sync()
    times = []
    for _ in range(repeats):
        del out
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    import torch

    import packviz as pv

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", nargs="+", default=["1x8192", "8x8192", "2x32768", "8x32768"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--cpu-limit-gib", type=float, default=4.0, help="skip CPU dense masks larger than this"
    )
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (run this on a GPU machine)")
        return
    print(f"device: {torch.cuda.get_device_name(0)}\n", flush=True)
    from torch.nn.attention.flex_attention import create_block_mask

    rows = []
    for shape in args.shapes:
        B, L = (int(x) for x in shape.split("x"))
        d = _doc_ids(B, L)
        gib = B * L * L / 2**30
        t_gpu, m_gpu = _time(lambda d=d: pv.document_mask(d, device="cuda"), "cuda", args.repeats)
        t_fill, _ = _time(
            lambda B=B, L=L: torch.ones(B, L, L, dtype=torch.bool, device="cuda"),
            "cuda",
            args.repeats,
        )
        row = {
            "shape": f"{B}×{L}",
            "gib": f"{gib:.2f}",
            "gpu": fmt_time(t_gpu),
            "fill": fmt_time(t_fill),
            "gpu_vs_fill": f"{t_gpu / t_fill:.1f}×",
        }
        if gib <= args.cpu_limit_gib:
            t_cpu, m_cpu = _time(
                lambda d=d: pv.document_mask(d, device="cpu"), "cpu", max(1, args.repeats // 2)
            )
            row["cpu"] = fmt_time(t_cpu)
            row["speedup"] = f"{t_cpu / t_gpu:.0f}×"
            row["equal"] = "yes" if torch.equal(m_gpu.cpu(), m_cpu) else "NO"
            del m_cpu
        del m_gpu
        torch.cuda.empty_cache()
        # BlockMask: direct from doc_ids vs create_block_mask with a document mask_mod
        t_bd, bm = _time(lambda d=d: pv.flex_block_mask(d, device="cuda"), "cuda", args.repeats)
        starts = pv.piece_starts(d, device="cuda")

        def mask_mod(b, h, q, k, starts=starts):
            return (starts[b, q] == starts[b, k]) & (k <= q)

        t_bc, ref = _time(
            lambda B=B, L=L, mm=mask_mod: create_block_mask(mm, B, None, L, L, device="cuda"),
            "cuda",
            max(1, args.repeats // 2),
        )
        row["block_direct"] = fmt_time(t_bd)
        row["block_create"] = fmt_time(t_bc)
        row["block_speedup"] = f"{t_bc / t_bd:.0f}×"
        row["block_equal"] = "yes" if torch.equal(bm.to_dense(), ref.to_dense()) else "NO"
        rows.append(row)
        print(row, flush=True)
    print()
    print_table(
        rows,
        [
            ("shape", "B × L"),
            ("gib", "dense GiB"),
            ("gpu", "document_mask CUDA"),
            ("fill", "CUDA fill (bound)"),
            ("gpu_vs_fill", "CUDA / fill"),
            ("cpu", "CPU"),
            ("speedup", "CPU / CUDA"),
            ("equal", "CPU == CUDA"),
            ("block_direct", "BlockMask direct"),
            ("block_create", "create_block_mask"),
            ("block_speedup", "speedup"),
            ("block_equal", "identical"),
        ],
    )


if __name__ == "__main__":
    main()
