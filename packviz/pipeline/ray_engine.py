"""The Ray engine: the same tasks as Ray Data stages, on one machine or a cluster.

Each stage of the job — hash the inputs, tokenize the parts, write the shards — is a Ray
Data dataset of task indices mapped by ``map_batches`` (one index per batch, one Ray task
each) through the very functions the local engine runs (`packviz.pipeline.tasks`).
The driver keeps what it keeps with the local engine, the lengths and the plan; the
workers read their inputs, write the token store and the shards themselves, and hand
back only small records (counts, checksums), collected as they stream in.

What this asks of a cluster: ``--out`` must be a folder every node sees at the same path
(NFS, Lustre, a shared disk), since the token store and the plan travel through it, not
through the object store — which is also what lets a killed driver resume like a local
job. Workers must import the same packviz as the driver: when the driver runs from a
source checkout (not an installed package), its folder is put on the workers'
``PYTHONPATH``.

Fault tolerance is Ray Data's: a task whose worker process dies is run again (Ray Data
retries tasks without limit on system failures), and since every task writes its
output atomically to a fixed name and returns its checksum, a retried task changes
nothing in the output.

Example (not run here: it starts Ray)::

    engine = RayEngine(4)  # a local Ray instance with 4 CPUs, or RayEngine(4, address=...)
    engine.run(tasks.tokenize_part, work, range(n_parts), limit=4, on_result=print)
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

#: Environment of the tasks: one tokenizer thread per task (Ray gives each one CPU).
TASK_ENV = {"TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1"}


def _run_batch(task: Callable[[str, int], dict], work: str, batch: dict) -> dict:
    """One Ray Data batch = a few task indices; their records travel back as JSON text.

    A bad input or a failed write (ValueError, OSError) is not worth retrying: it comes
    back as a record too, so the driver raises it with its own message and class (Ray
    would wrap it in an exception that has lost both)."""
    import ray

    records = []
    for i in batch["index"].tolist():
        try:
            record = task(work, int(i))
        except (ValueError, OSError) as exc:
            kind = type(exc)
            record = {"error": [kind.__module__, kind.__qualname__, str(exc), exc.errno]
                      if isinstance(exc, OSError) else [kind.__module__, kind.__qualname__,
                                                         str(exc), None]}  # fmt: skip
        record.setdefault("memory", {})["node"] = ray.get_runtime_context().get_node_id()
        records.append(json.dumps(record))
    return {"record": np.array(records, dtype=object)}


def _rebuilt(module: str, name: str, message: str, errno: int | None) -> Exception:
    """The task's exception again: its own class when it is packviz's or built in."""
    import builtins
    import importlib

    kind = None
    if module == "builtins":
        kind = getattr(builtins, name, None)
    elif module.split(".")[0] == "packviz":
        kind = getattr(importlib.import_module(module), name, None)
    if not (isinstance(kind, type) and issubclass(kind, (ValueError, OSError))):
        kind = OSError if errno is not None else ValueError
    error = kind(message)
    if errno is not None:
        error.errno = errno
    return error


def _source_checkout() -> str | None:
    """The folder holding the imported packviz when it is not an installed package."""
    root = Path(__file__).resolve().parents[2]
    return None if root.name in ("site-packages", "dist-packages") else str(root)


class RayEngine:
    """Run tasks as Ray Data ``map_batches`` stages on a Ray cluster.

    Args:
        workers: CPUs of the local Ray instance started when no cluster is connected.
        address: a running cluster (``ray://...`` or ``host:port``); None starts a local
            instance (or uses the one this process is already connected to).
        stage_args: extra Ray options per task name, e.g. ``{"write_shard": {"resources":
            {"node_b": 0.01}}}`` to place a stage on chosen nodes.
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        stage_args: dict | None = None,
    ) -> None:
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise ValueError("--engine ray needs Ray: pip install 'packviz[ray]'") from None
        import logging

        self.stage_args = stage_args or {}
        self._owned = False
        if not ray.is_initialized():
            quiet = {"log_to_driver": False, "logging_level": "ERROR"}
            if address is None:
                ray.init(num_cpus=workers, include_dashboard=False, **quiet)
            else:
                try:
                    ray.init(address=address, **quiet)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise ValueError(
                        f"cannot connect to the Ray cluster at {address}: {exc}"
                    ) from None
            self._owned = True
        self.workers = int(workers or self.cpus())
        self.cpus_per_task = 1.0  # raised by the memory plan so a node runs what its budget fits
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        env = dict(TASK_ENV)
        source = _source_checkout()
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (source, os.environ.get("PYTHONPATH")) if p
            )
        self._runtime_env = {"env_vars": env}

    @staticmethod
    def cpus() -> int:
        """CPUs of the connected cluster."""
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    @staticmethod
    def node_cpus() -> list[int]:
        """CPUs of each live node (the memory budget applies per node)."""
        import ray

        found = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
        return [c for c in found if c > 0] or [1]

    def warm_up(self) -> None:
        """Nothing to do: Ray starts its workers itself."""

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(
        self,
        task: Callable[[str, int], dict],
        work: str,
        indices: Iterable[int],
        *,
        limit: int,
        on_result: Callable[[dict], None],
    ) -> None:
        """Run ``task(work, i)`` for every index as one Ray Data stage (at most ``limit``
        tasks at once); hand each record to ``on_result`` as it arrives."""
        import ray.data

        indices = list(indices)
        if not indices:
            return
        # a few indices per Ray task when there are many: each task costs Ray Data some
        # scheduling (~0.1 s here), and ~8 tasks per concurrent slot still balance the load
        limit = max(1, min(limit, len(indices)))
        per_task = max(1, len(indices) // (8 * limit))
        ds = ray.data.from_items(
            [{"index": i} for i in indices], override_num_blocks=-(-len(indices) // per_task)
        )
        ds = ds.map_batches(
            functools.partial(_run_batch, task, work),
            batch_size=per_task,
            batch_format="numpy",
            compute=ray.data.TaskPoolStrategy(size=limit),
            num_cpus=self.cpus_per_task,
            runtime_env=self._runtime_env,
            **self.stage_args.get(task.__name__, {}),
        )
        try:
            for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
                for text in batch["record"].tolist():
                    record = json.loads(text)
                    if "error" in record:
                        raise _rebuilt(*record["error"])
                    on_result(record)
        except (ValueError, OSError):
            raise
        except Exception as exc:  # Ray's own failures (a lost node, retries exhausted)
            first = (str(exc).splitlines() or [repr(exc)])[0]
            raise RuntimeError(f"the Ray job failed: {first}") from exc

    def close(self) -> None:
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False
