"""What a corpus job did, as a value (`PackReport`) and as the summary a person reads.

The manifest says what was produced; the report adds what only this run knows: the time
each stage took and the peak memory of the driver and of each worker process.

Example:
    >>> print(seconds_line({"tokenize": 12.5, "plan": 0.4, "total": 14.0}))
    time: tokenize 12.5 s, plan 0.4 s, total 14.0 s
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packviz.pipeline.progress import seconds_text
from packviz.stats import PackStats


def seconds_line(seconds: dict[str, float]) -> str:
    return "time: " + ", ".join(f"{k} {seconds_text(v)}" for k, v in seconds.items())


@dataclass
class PackReport:
    """The outcome of `packviz.pipeline.run.pack_corpus`.

    Attributes:
        out: the output folder.
        manifest: the content of ``manifest.json``.
        stats: the plan's statistics.
        seconds: wall time per stage (``hash inputs``, ``tokenize``, ``plan``, ``write
            shards``, ``total``).
        memory: ``budget``, ``workers``, ``driver_peak``, ``worker_peaks`` (VmHWM per
            worker process, bytes) and ``total_peak`` (their sum).
        already_complete: the folder already held this job's output; nothing was redone.
    """

    out: Path
    manifest: dict
    stats: PackStats
    seconds: dict[str, float]
    memory: dict = field(default_factory=dict)
    already_complete: bool = False

    @classmethod
    def from_manifest(cls, out: Path, manifest: dict, total: float) -> PackReport:
        stats = {k: v for k, v in manifest["stats"].items() if k in PackStats.__slots__}
        return cls(out, manifest, PackStats(**stats), {"total": total}, already_complete=True)

    @property
    def shards(self) -> list[Path]:
        return [self.out / s["file"] for s in self.manifest["shards"]]

    def summary(self) -> str:
        s, m = self.stats, self.manifest
        size = sum(x["bytes"] for x in m["shards"])
        lines = [
            f"packed {s.n_docs:,} documents ({s.n_empty_docs:,} empty), "
            f"{s.input_tokens:,} tokens -> {s.n_rows:,} rows of {s.max_len:,} "
            f"in {len(m['shards']):,} {m['settings']['format']} shards ({size / 2**20:,.1f} MiB)",
            f"efficiency {100 * s.efficiency:.2f} % (lower bound {s.lower_bound_rows:,} rows, "
            f"{s.rows_over_lower_bound:,} over); lost {s.lost_tokens:,} tokens "
            f"({s.truncated_docs:,} truncated, {s.dropped_docs:,} dropped documents); "
            f"{s.split_docs:,} documents split",
            seconds_line(self.seconds),
        ]
        if self.memory:
            mb = 2**20
            peaks = self.memory["worker_peaks"]
            worst = f", each worker <= {max(peaks) / mb:,.0f} MiB" if peaks else ""
            lines.append(
                f"peak memory: {self.memory['total_peak'] / mb:,.0f} MiB in all "
                f"(driver {self.memory['driver_peak'] / mb:,.0f} MiB{worst}; "
                f"{self.memory['workers']} workers; budget "
                f"{self.memory['budget'] / mb:,.0f} MiB besides lengths and plan)"
            )
        if self.already_complete:
            lines.insert(0, "already complete: nothing to do")
        lines.append(f"output: {self.out} (manifest.json)")
        return "\n".join(lines)
