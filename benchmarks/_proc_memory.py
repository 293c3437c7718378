"""Peak memory (and CPU time) of a process and all its descendants, measured from outside.

A background thread walks the process tree under one pid every few milliseconds and
keeps, per process, the largest ``VmHWM`` (the kernel's own high-water mark of resident
memory, so a peak between two samples is not missed as long as the process is seen once
after it) and the largest ``RssAnon`` seen (anonymous memory only: memory-mapped file
pages are cache, which ``VmHWM`` counts too). The sums over processes are upper bounds of
what was resident at any one moment. It also keeps each process's CPU seconds (user +
system, ``/proc/<pid>/stat``), which counts workers that the process itself never reaps
(a fork server's children, Ray's workers) and that ``getrusage`` therefore misses.

    with TreeMemory(proc.pid) as mem:
        proc.wait()
    mem.hwm_total, mem.anon_total  # bytes
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out += [int(x) for x in text]
    except OSError:
        pass
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def _status(pid: int) -> tuple[int, int]:
    hwm = anon = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
    except OSError:
        pass
    return hwm, anon


class TreeMemory:
    """Sample the tree under ``pid`` until the ``with`` block ends."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        self.pid, self.every = pid, every
        self.hwm: dict[int, int] = {}
        self.anon: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.anon_sum_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        seen, todo, now = set(), [self.pid], 0
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            hwm, anon = _status(p)
            if hwm:
                self.hwm[p] = max(self.hwm.get(p, 0), hwm)
                self.anon[p] = max(self.anon.get(p, 0), anon)
                self.cpu[p] = max(self.cpu.get(p, 0.0), _cpu(p))
                now += anon
            todo += _children(p)
        self.anon_sum_peak = max(self.anon_sum_peak, now)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def hwm_total(self) -> int:
        """Sum over processes of their peak resident memory (an upper bound)."""
        return sum(self.hwm.values())

    @property
    def cpu_total(self) -> float:
        """CPU seconds of every process seen (up to one sampling interval short each)."""
        return sum(self.cpu.values())

    @property
    def anon_total(self) -> int:
        """Sum over processes of the largest anonymous memory each was seen with."""
        return sum(self.anon.values())
