"""Engines run tasks (`packviz.pipeline.tasks`) somewhere: here in processes, or on Ray.

An engine only decides *where* a task runs. Every task is a function of ``(work folder,
index)`` with a result that does not depend on where or when it ran, so the output is
the same bytes whichever engine and however many workers are used.

The local engine runs tasks in the calling process when ``workers == 1`` and otherwise
in a pool of worker processes forked from a *fork server*: a fresh interpreter that
imports what tasks use (numpy, pyarrow, tokenizers, packviz) once, before any thread
exists, so every worker starts in milliseconds without its own imports, and none is
forked from a process whose threads (the tokenizers library's, say) could deadlock it.
Workers tokenize with one thread each — the parallelism is the processes — and at most
``limit`` tasks are in flight at once, which is how the memory budget bounds a stage.

Example:
    >>> from packviz.pipeline.engines import LocalEngine
    >>> seen = []
    >>> with LocalEngine(1) as engine:
    ...     engine.run(_echo, "w", [2, 0, 1], limit=1, on_result=seen.append)
    >>> seen
    [{'index': 2}, {'index': 0}, {'index': 1}]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Literal

from packviz.choices import check_choice

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")

Task = Callable[[str, int], dict]


def _echo(work: str, index: int) -> dict:
    return {"index": index}


def _init_worker() -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker process
    os.environ["RAYON_NUM_THREADS"] = "1"


#: Imported once by the fork server, before any thread exists; workers are forked from it.
#: pyarrow imports pandas (when installed) the first time it converts a numpy array or a
#: Python value (``pa.array``, ``pyarrow.compute``): ~0.2 CPU-s that each worker would
#: otherwise pay in its first task, so the fork server pays it once.
_PRELOAD = (
    "pyarrow.json",
    "pyarrow.parquet",
    "pyarrow.compute",
    "pandas",
    "tokenizers",
    "packviz.pipeline.tasks",
)


class LocalEngine:
    """Tasks in this process (``workers == 1``) or in spawned worker processes."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, int(workers or self.cpus()))
        self._pool = None
        self._helpers: list = []  # the fork server and resource tracker this engine started

    @staticmethod
    def cpus() -> int:
        return os.cpu_count() or 1

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _executor(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            from multiprocessing import forkserver, resource_tracker

            self._helpers = [
                helper
                for helper, pid in (
                    (forkserver._forkserver, "_forkserver_pid"),
                    (resource_tracker._resource_tracker, "_pid"),
                )
                if getattr(helper, pid, None) is None  # not running yet: ours to stop
            ]
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(_PRELOAD))
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker
            )
        return self._pool

    def warm_up(self) -> None:
        """Start the fork server now, without waiting for it: it imports while the driver
        examines the inputs, and the first stage's tasks fork the workers from it. (A
        task submitted now would wait for those imports: starting a pool process
        blocks until the fork server has forked it.)"""
        if self.workers > 1:
            from multiprocessing import forkserver

            self._executor()  # sets the fork server's preload
            forkserver.ensure_running()

    def run(
        self,
        task: Task,
        work: str,
        indices: Iterable[int],
        *,
        limit: int,
        on_result: Callable[[dict], None],
    ) -> None:
        """Run ``task(work, i)`` for every index, at most ``limit`` at a time; hand each
        result to ``on_result`` as it comes (in any order). The first error is raised
        after the tasks not yet started are cancelled."""
        indices = list(indices)
        if self.workers == 1 or len(indices) <= 1 and self._pool is None:
            for i in indices:
                on_result(task(work, i))
            return
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pool = self._executor()
        pending = iter(indices)
        running = set()
        try:
            while True:
                while len(running) < max(1, limit):
                    i = next(pending, None)
                    if i is None:
                        break
                    running.add(pool.submit(task, work, i))
                if not running:
                    return
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    on_result(f.result())
        except BrokenProcessPool:
            raise OSError(
                "a worker process died (killed, or out of memory: lower --memory-budget or "
                "--workers); run the same command again to resume"
            ) from None
        except BaseException:
            for f in running:
                f.cancel()
            raise

    def close(self) -> None:
        """Stop the workers, and the fork server and resource tracker when this engine
        started them (a library caller is left with no process of ours)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for helper in self._helpers:
            try:
                helper._stop()
            except (OSError, AttributeError, ChildProcessError):
                pass  # already gone, or a Python without the private stop
        self._helpers = []


def make_engine(engine: str, workers: int | None = None, *, ray_address: str | None = None):
    """The engine called ``engine`` (``local`` or ``ray``) with ``workers`` workers."""
    check_choice("engine", engine, ENGINES)
    if engine == "local":
        if ray_address is not None:
            raise ValueError("--ray-address needs --engine ray")
        return LocalEngine(workers)
    from packviz.pipeline.ray_engine import RayEngine

    return RayEngine(workers, address=ray_address)
