"""The results and background jobs all sessions share: a store of results (least recently
used out first), jobs that each run one worker process, and which session asks for which
job — so that nothing the dashboard starts outlives the need for it.

Why a module without Streamlit. `dashboard.jobs` draws the Run / progress / Stop boxes;
this module only keeps state, so its rules are tested directly:

- A job's arguments (plans, token ids) are dropped once they are sent to its worker; a
  job that is done is forgotten at once (its result is in the store); failed and stopped
  ones are kept only so a page coming back can say so, at most `FINISHED_JOBS`.
- Any exception in a job's reader thread (a worker that cannot start, a message that
  cannot be read, a worker that dies) ends the job as failed, with the reason: a page
  watching it shows an error box instead of a progress bar that never ends.
- Sessions *claim* the jobs their pages ask for, one per *slot* (a page's plan, its
  sweep, its file …). When a session asks a slot for something else — a setting changed
  while the job ran — or the session ends, its claims are released, and a job nobody
  claims any more is stopped. Changing page asks no slot for anything else, so work goes
  on and its result is there when the user comes back.
- A session may have at most `SESSION_JOBS` jobs waiting or running (`MAX_RUNNING`
  worker processes serve all sessions): one session cannot queue work ahead of all the
  others.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import packviz as pv
from dashboard import worker

#: Bytes of results kept for all sessions together.
STORE_BYTES = 1536 * 2**20
#: Worker processes at once (others wait for a slot).
MAX_RUNNING = 2
#: Jobs one session may have waiting or running at once.
SESSION_JOBS = 2
#: Failed or stopped jobs remembered (to say so to a page that comes back).
FINISHED_JOBS = 32
#: Returned by `Store.get` for a key with no result.
MISSING = object()
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_UNFINISHED = ("waiting", "running")


@dataclass(frozen=True)
class Work:
    """One unit of work: ``fn(*args, report=...)``, a function of `dashboard.work`.

    ``key`` names the result (data digest + settings); ``label`` says what it does;
    ``seconds`` is the predicted time on this machine.
    """

    key: str
    label: str
    seconds: float
    fn: Callable
    args: tuple


def worker_command() -> list[str]:
    """The command line of a worker process (a fresh interpreter, see `dashboard.worker`)."""
    return [sys.executable, "-m", "dashboard.worker"]


def nbytes(value) -> int:
    """About how many bytes a result holds (for the store's budget)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, pv.PackPlan):
        return sum(int(getattr(value, f).nbytes) for f in (*_PLAN_ARRAYS, "doc_lengths"))
    if isinstance(value, pv.TokenIds):
        return sum(nbytes(a) for a in (value.values, value.offsets, value.trained) if a is not None)
    if isinstance(value, pv.SFTStats):
        return sum(nbytes(a) for a in (value.prompt_lengths, value.completion_lengths)) * 2
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value) + 64
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values()) + 64
    return 512


_PLAN_ARRAYS = ("row", "doc", "start", "length", "offset")


def _refreeze(value):
    """Plans that come back from a child are made read-only again (pickling drops the
    flag); the store shares them between sessions."""
    if isinstance(value, pv.PackPlan):
        return dataclasses.replace(value)
    if isinstance(value, tuple):
        return tuple(_refreeze(v) for v in value)
    if isinstance(value, list):
        return [_refreeze(v) for v in value]
    return value


def _reason(exc: BaseException, proc) -> str:
    """Why a job ended without a result, for its error box."""
    if isinstance(exc, (EOFError, BrokenPipeError)) and proc is not None:
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            code = "none: it closed its output and kept running"
        return f"the worker process ended without a result (exit code {code}; out of memory?)"
    if isinstance(exc, OSError) and proc is None:
        return f"no worker process could be started ({exc})"
    return f"{type(exc).__name__} while talking to the worker process: {exc}"


class Job:
    """A unit of work in a child process; a reader thread collects its messages."""

    def __init__(self, work: Work, store: Store):
        self.work = work
        self.state = "waiting"  # waiting, running, done, failed, stopped
        self.done_steps, self.total_steps, self.text = 0, 1, "waiting for a free worker"
        self.error = ""
        self.started = time.monotonic()
        self._store = store
        self._proc = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"job {work.label}")
        self.thread.start()

    @property
    def unfinished(self) -> bool:
        return self.state in _UNFINISHED

    def fraction(self) -> float:
        if self.total_steps > 1:
            return min(1.0, self.done_steps / self.total_steps)
        elapsed = time.monotonic() - self.started
        return min(0.95, elapsed / max(self.work.seconds, 0.1))

    def stop(self) -> None:
        """Terminate the worker (the reader thread reaps it: two threads waiting on one
        child would race for its exit status, and one would block forever)."""
        with self._lock:
            if self.state in _UNFINISHED:
                self.state = "stopped"
            proc = self._proc
        if proc is not None:
            proc.terminate()

    def end(self, state: str, error: str = "") -> None:
        """End the job as ``state`` with ``error``, unless it has ended already (a Stop)."""
        with self._lock:
            if self.state in _UNFINISHED:  # not over a Stop
                self.state, self.error = state, error

    def _run(self) -> None:
        try:
            with self._store.slots:
                self._talk()
        except BaseException as exc:  # noqa: BLE001 - every way out ends the job, with a reason
            self.end("failed", _reason(exc, self._proc))
        finally:
            self.work = dataclasses.replace(self.work, args=())  # plans, ids: not kept
            proc = self._proc
            if proc is not None:
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None and not pipe.closed:
                        try:
                            pipe.close()
                        except OSError:
                            pass
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:  # ignored SIGTERM
                    proc.kill()
                    proc.wait()
            self._store.finished(self)

    def _talk(self) -> None:
        """Start the worker, send the work, read its messages until a result."""
        with self._lock:
            if self.state == "stopped":
                return
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
            proc = subprocess.Popen(
                worker_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=_ROOT,
                env=env,
            )
            self._proc, self.state = proc, "running"
            self.started, self.text = time.monotonic(), "started"
        try:
            worker.send(proc.stdin, (self.work.fn.__name__, self.work.args))
            proc.stdin.close()
        finally:
            self.work = dataclasses.replace(self.work, args=())  # sent: the worker has them
        while True:
            try:
                msg = worker.receive(proc.stdout)
            except (EOFError, BrokenPipeError):
                if self.state == "stopped":  # terminated by Stop
                    return
                raise
            if msg[0] == "progress":
                self.done_steps, self.total_steps, self.text = msg[1], msg[2], msg[3]
            elif msg[0] == "done":
                self._store.put(self.work.key, _refreeze(msg[1]))
                self.end("done")
                return
            else:
                self.end("failed", msg[1])
                return


class Store:
    """Results (LRU by bytes), jobs, and the sessions' claims on them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self.total = 0
        self.jobs: dict[str, Job] = {}
        self.slots = threading.Semaphore(MAX_RUNNING)
        self._ended: OrderedDict[str, None] = OrderedDict()  # failed/stopped, oldest first
        self._claims: dict[str, set[int]] = {}  # job key -> sessions asking for it
        self._asked: dict[int, dict[str, str]] = {}  # session -> slot -> key

    # ------------------------------------------------------------------ results

    def get(self, key: str):
        with self.lock:
            hit = self.results.get(key)
            if hit is None:
                return MISSING
            self.results.move_to_end(key)
            return hit[0]

    def put(self, key: str, value) -> None:
        n = nbytes(value)
        with self.lock:
            old = self.results.pop(key, None)
            if old is not None:
                self.total -= old[1]
            self.results[key] = (value, n)
            self.total += n
            while self.total > STORE_BYTES and len(self.results) > 1:
                _, (_, m) = self.results.popitem(last=False)
                self.total -= m

    def discard(self, key: str) -> None:
        """Drop a stored result (one that no longer answers what is asked)."""
        with self.lock:
            old = self.results.pop(key, None)
            if old is not None:
                self.total -= old[1]

    # ------------------------------------------------------------------ jobs

    def job(self, key: str) -> Job | None:
        with self.lock:
            return self.jobs.get(key)

    def start(self, work: Work, session: int | None = None) -> Job:
        """The job for ``work`` (a new one unless one is waiting or running), claimed by
        ``session`` when given."""
        with self.lock:
            job = self.jobs.get(work.key)
            if job is None or not job.unfinished:
                self._ended.pop(work.key, None)
                job = self.jobs[work.key] = Job(work, self)
            if session is not None:
                self._claims.setdefault(work.key, set()).add(session)
            return job

    def forget(self, job: Job) -> None:
        with self.lock:
            if self.jobs.get(job.work.key) is job:
                del self.jobs[job.work.key]
                self._ended.pop(job.work.key, None)
                self._claims.pop(job.work.key, None)

    def finished(self, job: Job) -> None:
        """Called by a job's thread as it ends: a done job is forgotten (its result is
        stored), a failed or stopped one kept among the last `FINISHED_JOBS`."""
        with self.lock:
            key = job.work.key
            if self.jobs.get(key) is not job:
                return  # forgotten already, or replaced by a new job
            self._claims.pop(key, None)
            if job.state == "done":
                del self.jobs[key]
                return
            self._ended[key] = None
            while len(self._ended) > FINISHED_JOBS:
                old, _ = self._ended.popitem(last=False)
                self.jobs.pop(old, None)

    # ------------------------------------------------------------------ claims

    def ask(self, session: int, slot: str, key: str) -> None:
        """``session`` now asks ``slot`` for ``key``: it claims the job for ``key`` if one
        runs, and releases what it asked that slot for before (stopped if no one else
        asks for it)."""
        with self.lock:
            asked = self._asked.setdefault(session, {})
            before = asked.get(slot)
            asked[slot] = key
            job = self.jobs.get(key)
            if job is not None and job.unfinished:
                self._claims.setdefault(key, set()).add(session)
            stop = None
            if before is not None and before != key and before not in asked.values():
                stop = self._release(session, before)
        if stop is not None:
            stop.stop()

    def busy(self, session: int) -> list[Job]:
        """The jobs ``session`` claims that are waiting or running."""
        with self.lock:
            return [
                j
                for k, who in self._claims.items()
                if session in who and (j := self.jobs.get(k)) is not None and j.unfinished
            ]

    def end_session(self, session: int) -> None:
        """The session is gone: release all its claims (its finalizer calls this)."""
        with self.lock:
            keys = set(self._asked.pop(session, {}).values())
            keys |= {k for k, who in self._claims.items() if session in who}
            stops = [j for k in keys if (j := self._release(session, k)) is not None]
        for job in stops:
            job.stop()

    def _release(self, session: int, key: str) -> Job | None:
        """Drop the claim (under the lock); the job to stop when no claim is left."""
        who = self._claims.get(key)
        if who is None or session not in who:
            return None
        who.discard(session)
        job = self.jobs.get(key)
        if who or job is None or not job.unfinished:
            return None
        del self._claims[key]
        del self.jobs[key]
        return job
