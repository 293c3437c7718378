"""GPU masks: dense document masks on CUDA vs the CPU and vs a CUDA fill of the same
shape, and the BlockMask built directly vs ``create_block_mask``, for B × L up to
8 × 32768.

``document_mask`` on CUDA runs the one-pass Triton kernel (``packviz/_triton.py``) when
Triton is there; both torch fallbacks are timed beside it (one triangle copy per piece,
and the broadcast comparison + ``tril_``), so the choice between them is checked on real
hardware. The CPU side builds bool masks only (an fp32 8 × 32768² mask
is 32 GiB). CUDA timings synchronize before reading the clock; peak CUDA memory is above
the inputs; every method is checked equal to the CPU result or to ``create_block_mask``.
Prints a table and keeps it in ``benchmarks/out/gpu.{md,json}``; exits 0 with a note
when no CUDA device is present.

    python benchmarks/bench_gpu.py [--shapes 1x8192 8x8192 2x32768 8x32768] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import fmt_time, machine, print_table, save_results
from benchmarks.bench_masks import _doc_ids


def _time(fn, device: str, repeats: int):
    """(median seconds, peak extra CUDA bytes of the warm-up call, last result)."""
    import torch

    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    out = fn()  # warm-up (kernels, allocator), and the peak memory
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base if cuda else 0
    times = []
    for _ in range(repeats):
        del out
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), peak, out


def _forced(copy_cost: int, device: str):
    """The accelerator's torch builders (no Triton), the switch between them forced."""
    import torch

    import packviz as pv

    def build(d):
        old = pv.masks._COPY_COST_CUDA, pv.masks._USE_TRITON
        pv.masks._COPY_COST_CUDA, pv.masks._USE_TRITON = copy_cost, False
        try:
            return pv.masks._dense_torch(torch.as_tensor(d, device=device))
        finally:
            pv.masks._COPY_COST_CUDA, pv.masks._USE_TRITON = old

    return build


def main() -> None:
    import torch

    import packviz as pv

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--shapes",
        nargs="+",
        default=["1x2048", "8x2048", "1x8192", "8x8192", "2x32768", "8x32768"],
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--device", default="cuda", help="the accelerator (cpu: a dry run of the script)"
    )
    ap.add_argument(
        "--cpu-limit-gib", type=float, default=4.0, help="skip CPU dense masks larger than this"
    )
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (run this on a GPU machine)")
        return
    name = torch.cuda.get_device_name(0) if dev == "cuda" else dev
    triton = dev == "cuda" and pv._triton.kernel() is not None
    print(f"device: {name}; Triton kernel: {'yes' if triton else 'no'}\n", flush=True)
    from torch.nn.attention.flex_attention import create_block_mask

    rows = []
    for shape in args.shapes:
        B, L = (int(x) for x in shape.split("x"))
        d = _doc_ids(B, L)
        gib = B * L * L / 2**30
        row = {
            "shape": f"{B}×{L}",
            "gib": round(gib, 3),
            "pieces": int(pv.pieces.piece_lengths(d)[0].size),
        }
        t_fill, _, _ = _time(
            lambda B=B, L=L: torch.ones(B, L, L, dtype=torch.bool, device=dev),
            dev,
            args.repeats,
        )
        t_gpu, peak, m_gpu = _time(lambda d=d: pv.document_mask(d, device=dev), dev, args.repeats)
        t_tri, _, m_tri = _time(lambda d=d: _forced(0, dev)(d), dev, args.repeats)
        same = torch.equal(m_tri, m_gpu)
        del m_tri
        t_bc, _, m_bc = _time(lambda d=d: _forced(1 << 62, dev)(d), dev, args.repeats)
        same &= torch.equal(m_bc, m_gpu)
        del m_bc
        row.update(
            fill=t_fill, gpu=t_gpu, gpu_triangles=t_tri, gpu_broadcast=t_bc,
            gpu_peak_gib=round(peak / 2**30, 3), builders_equal=bool(same),
        )  # fmt: skip
        if gib <= args.cpu_limit_gib:
            t_cpu, _, m_cpu = _time(
                lambda d=d: pv.document_mask(d, device="cpu"), "cpu", max(1, args.repeats // 2)
            )
            row.update(cpu=t_cpu, cpu_equal=bool(torch.equal(m_gpu.cpu(), m_cpu)))
            del m_cpu
        del m_gpu
        if dev == "cuda":
            torch.cuda.empty_cache()
        # BlockMask: direct from doc_ids (CUDA and CPU) vs create_block_mask on CUDA
        t_bd, _, bm = _time(lambda d=d: pv.flex_block_mask(d, device=dev), dev, args.repeats)
        host_tiles = pv.blockmask._HOST_TILES
        pv.blockmask._HOST_TILES = 0  # the tables built on the device, whatever the size
        try:
            t_bd_dev, _, _ = _time(lambda d=d: pv.flex_block_mask(d, device=dev), dev, args.repeats)
        finally:
            pv.blockmask._HOST_TILES = host_tiles
        t_bd_cpu, _, _ = _time(lambda d=d: pv.flex_block_mask(d, device="cpu"), "cpu", 3)
        starts = pv.piece_starts(d, device=dev)

        def mask_mod(b, h, q, k, starts=starts):
            return (starts[b, q] == starts[b, k]) & (k <= q)

        for key, compiled in (("block_create", False), ("block_compiled", True)):
            # eager: the mask_mod evaluated on every (q, k), materialized; compiled: the
            # same fused by torch.compile (the warm-up call compiles, untimed)
            try:
                t_create, create_peak, ref = _time(
                    lambda B=B, L=L, mm=mask_mod, c=compiled: create_block_mask(
                        mm, B, None, L, L, device=dev, _compile=c
                    ),
                    dev,
                    max(1, args.repeats // 2),
                )
            except torch.cuda.OutOfMemoryError:
                row[key + "_error"] = "out of memory"
                torch.cuda.empty_cache()
                continue
            except Exception as exc:  # a peer's failure is a result, not a crash
                row[key + "_error"] = f"{type(exc).__name__}: {exc}"[:80]
                continue
            same = all(
                torch.equal(getattr(bm, n), getattr(ref, n))
                for n in pv.blockmask._TABLES  # all eight tables, key and query side
            )
            row[key] = t_create
            row[key + "_peak_gib"] = round(create_peak / 2**30, 2)
            row[key + "_equal"] = bool(same)
            del ref
        row.update(block_direct=t_bd, block_direct_device=t_bd_dev, block_direct_cpu=t_bd_cpu)
        del bm, starts
        if dev == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
        print(row, flush=True)

    def cells(r):
        c = dict(r)
        for k in ("fill", "gpu", "gpu_triangles", "gpu_broadcast", "cpu", "block_direct"):
            c[k] = fmt_time(r.get(k))
        c["block_direct_cpu"] = fmt_time(r.get("block_direct_cpu"))
        c["block_direct_device"] = fmt_time(r.get("block_direct_device"))
        for k in ("block_create", "block_compiled"):
            c[k] = r.get(k + "_error") or fmt_time(r.get(k))
            c[k + "_peak_gib"] = r.get(k + "_peak_gib", "—")
        c["gpu_vs_fill"] = f"{r['gpu'] / r['fill']:.1f}×"
        c["cpu_vs_gpu"] = f"{r['cpu'] / r['gpu']:.0f}×" if "cpu" in r else "—"
        for k, ratio in (("block_create", "block_speedup"), ("block_compiled", "compiled_speedup")):
            c[ratio] = f"{r[k] / r['block_direct']:.0f}×" if k in r else "—"
        c["equal"] = (
            "yes"
            if r["builders_equal"]
            and r.get("cpu_equal", True)
            and r.get("block_create_equal", True)
            and r.get("block_compiled_equal", True)
            else "NO"
        )
        return c

    print()
    table = print_table(
        [cells(r) for r in rows],
        [
            ("shape", "B × L"),
            ("gib", "dense GiB"),
            ("pieces", "pieces"),
            ("gpu", "document_mask CUDA"),
            ("gpu_triangles", "torch triangles"),
            ("gpu_broadcast", "torch broadcast"),
            ("fill", "CUDA fill (bound)"),
            ("gpu_vs_fill", "CUDA / fill"),
            ("gpu_peak_gib", "CUDA peak GiB"),
            ("cpu", "CPU"),
            ("cpu_vs_gpu", "CPU / CUDA"),
            ("block_direct", "BlockMask direct CUDA"),
            ("block_direct_device", "tables built on CUDA"),
            ("block_direct_cpu", "direct CPU"),
            ("block_create", "create_block_mask CUDA"),
            ("block_create_peak_gib", "its peak GiB"),
            ("block_speedup", "speedup"),
            ("block_compiled", "create_block_mask compiled"),
            ("block_compiled_peak_gib", "its peak GiB"),
            ("compiled_speedup", "speedup"),
            ("equal", "all equal"),
        ],
    )
    save_results("gpu", rows, f"machine: {machine()}\ndevice: "
                 f"{name}; Triton kernel: {'yes' if triton else 'no'}\n\n{table}")  # fmt: skip


if __name__ == "__main__":
    main()
