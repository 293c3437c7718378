"""Progress of a corpus job: tqdm bars on a terminal, plain log lines everywhere else.

A job runs for minutes to days, often under ``nohup`` or a scheduler that captures
output into a file, where carriage-return bars turn into megabytes of noise. So a bar is
drawn only when stderr is a terminal; otherwise one line is logged when a stage starts,
at most every `LOG_EVERY` seconds while it runs, and when it ends — each with counts,
throughput and an estimate of the time left.

Example:
    >>> lines = []
    >>> p = Progress("tokenize", 4, "parts", bar=False, log=lines.append)
    >>> p.update(4, tokens=1000)
    >>> p.close()
    >>> lines[0], lines[-1].split(",")[0]
    ('tokenize: 4 parts', 'tokenize: done 4/4 parts')
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

#: Seconds between two plain progress lines.
LOG_EVERY = 10.0


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def seconds_text(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class Progress:
    """Counts finished units of one stage (parts, shards, files) and extra counters
    (``tokens``, ``rows`` ...), shown as a bar or as log lines."""

    def __init__(
        self,
        stage: str,
        total: int,
        unit: str,
        *,
        bar: bool | None = None,
        log: Callable[[str], None] = log_to_stderr,
    ) -> None:
        self.stage, self.total, self.unit, self.log = stage, total, unit, log
        self.done = 0
        self.counters: dict[str, float] = {}
        self.t0 = self._last = time.monotonic()
        self._bar = None
        if bar is None:
            bar = sys.stderr.isatty()
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=stage, unit=f" {unit}", file=sys.stderr)
        else:
            self.log(f"{stage}: {total:,} {unit}")

    def update(self, n: int = 1, **counters: float) -> None:
        self.done += n
        for k, v in counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        if self._bar is not None:
            self._bar.update(n)
            if self.counters:
                self._bar.set_postfix_str(self._rates(), refresh=False)
        elif time.monotonic() - self._last >= LOG_EVERY and self.done < self.total:
            self._last = time.monotonic()
            left = (self._last - self.t0) * (self.total - self.done) / max(self.done, 1)
            self.log(
                f"{self.stage}: {self.done:,}/{self.total:,} {self.unit} "
                f"({100 * self.done / max(self.total, 1):.0f} %), {self._rates()}, "
                f"ETA {seconds_text(left)}"
            )

    def _rates(self) -> str:
        dt = max(time.monotonic() - self.t0, 1e-9)
        return ", ".join(f"{_si(v)} {k} ({_si(v / dt)}/s)" for k, v in self.counters.items())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            return
        took = seconds_text(time.monotonic() - self.t0)
        rates = f", {self._rates()}" if self.counters else ""
        self.log(f"{self.stage}: done {self.done:,}/{self.total:,} {self.unit}{rates}, {took}")
