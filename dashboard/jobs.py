"""Work that may take long: predicted first, then run at once when it is cheap, or offered
as an explicit action that runs in a child process, with a progress bar and a Stop button.

Why. A page must never sit for seconds with nothing to show and nothing to press. Each
piece of work comes with a predicted time (`packviz.plan_cost` and friends): under
`AUTO_SECONDS` it runs inline; above, the page shows what it would cost and a **Run**
button. Running work shows a progress bar and a **Stop** button, and Stop really stops
it: numpy and the fit engines cannot be interrupted from another thread, so the work
runs in a worker process (`dashboard.worker`, a fresh interpreter: never a fork of the
server's threads) which Stop terminates. A worker that runs out of memory dies alone;
the server and every other session carry on.

Results live in one process-wide store (`st.cache_resource`) under plain string keys
that name the data (content digests) and the settings, so a result is shared by the
sessions that ask for exactly the same thing and by no one else; the store evicts the
least recently used results past `STORE_BYTES`. Work keeps running if the user changes
page, and its result is there when they come back.
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
import streamlit as st

import packviz as pv
from dashboard import worker
from dashboard.errors import stop_with

#: Work predicted to take longer than this (seconds) waits for a click on Run (the
#: re-render budget is 1.5 s; nothing may block for ~2 s without a progress bar).
AUTO_SECONDS = 1.5
#: Bytes of results kept for all sessions together.
STORE_BYTES = 1536 * 2**20
#: Worker processes at once (others wait for a slot).
MAX_RUNNING = 2
_MISSING = object()
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def seconds_text(s: float) -> str:
    """'0.4 s', '12 s', '3 min'."""
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min"


def _nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, pv.PackPlan):
        return sum(int(getattr(value, f).nbytes) for f in (*_PLAN_ARRAYS, "doc_lengths"))
    if isinstance(value, pv.TokenIds):
        return sum(
            _nbytes(a) for a in (value.values, value.offsets, value.trained) if a is not None
        )
    if isinstance(value, pv.SFTStats):
        return sum(_nbytes(a) for a in (value.prompt_lengths, value.completion_lengths)) * 2
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value) + 64
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values()) + 64
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


class _Job:
    """A unit of work in a child process; a reader thread collects its messages."""

    def __init__(self, work: Work, store: _Store):
        self.work = work
        self.state = "waiting"  # waiting, running, done, failed, stopped
        self.done_steps, self.total_steps, self.text = 0, 1, "waiting for a free worker"
        self.error = ""
        self.started = time.monotonic()
        self._store = store
        self._proc = None
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name=f"job {work.label}").start()

    def fraction(self) -> float:
        if self.total_steps > 1:
            return min(1.0, self.done_steps / self.total_steps)
        elapsed = time.monotonic() - self.started
        return min(0.95, elapsed / max(self.work.seconds, 0.1))

    def stop(self) -> None:
        """Terminate the worker (the reader thread reaps it: two threads waiting on one
        forkserver child would race for its exit status, and one would block forever)."""
        with self._lock:
            if self.state in ("waiting", "running"):
                self.state = "stopped"
            proc = self._proc
        if proc is not None:
            proc.terminate()

    def _run(self) -> None:
        store = self._store
        with store.slots:
            with self._lock:
                if self.state == "stopped":
                    return
                env = dict(os.environ)
                env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "dashboard.worker"],
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
                while True:
                    msg = worker.receive(proc.stdout)
                    if msg[0] == "progress":
                        self.done_steps, self.total_steps, self.text = msg[1], msg[2], msg[3]
                    elif msg[0] == "done":
                        store.put(self.work.key, _refreeze(msg[1]))
                        self.state = "done"
                        break
                    else:
                        self.error, self.state = msg[1], "failed"
                        break
            except (EOFError, BrokenPipeError):  # terminated by Stop, or killed
                if self.state != "stopped":
                    code = proc.wait()
                    self.error = (
                        f"the worker process ended without a result (exit code {code}; "
                        "out of memory?)"
                    )
                    self.state = "failed"
            finally:
                proc.stdout.close()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:  # ignored SIGTERM
                    proc.kill()
                    proc.wait()


class _Store:
    """Results (LRU by bytes) and running jobs, shared by all sessions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self.total = 0
        self.jobs: dict[str, _Job] = {}
        self.slots = threading.Semaphore(MAX_RUNNING)

    def get(self, key: str):
        with self.lock:
            hit = self.results.get(key)
            if hit is None:
                return _MISSING
            self.results.move_to_end(key)
            return hit[0]

    def put(self, key: str, value) -> None:
        n = _nbytes(value)
        with self.lock:
            old = self.results.pop(key, None)
            if old is not None:
                self.total -= old[1]
            self.results[key] = (value, n)
            self.total += n
            while self.total > STORE_BYTES and len(self.results) > 1:
                _, (_, m) = self.results.popitem(last=False)
                self.total -= m

    def job(self, key: str) -> _Job | None:
        with self.lock:
            return self.jobs.get(key)

    def start(self, work: Work) -> _Job:
        with self.lock:
            job = self.jobs.get(work.key)
            if job is None or job.state in ("failed", "stopped"):
                job = self.jobs[work.key] = _Job(work, self)
            return job

    def forget(self, job: _Job) -> None:
        with self.lock:
            if self.jobs.get(job.work.key) is job:
                del self.jobs[job.work.key]


@st.cache_resource(show_spinner=False)
def _store() -> _Store:
    return _Store()


def cached(key: str):
    """The stored result under ``key``, or None."""
    hit = _store().get(key)
    return None if hit is _MISSING else hit


def put(key: str, value) -> None:
    """Store a result computed elsewhere (cheap work done by a page)."""
    _store().put(key, value)


def run_inline(work: Work):
    """Run now, in this script run (with a spinner); stop the page with an error box on
    bad input or when memory runs out."""
    store = _store()
    hit = store.get(work.key)
    if hit is not _MISSING:
        return hit
    try:
        with st.spinner(f"{work.label}…"):
            value = work.fn(*work.args, report=None)
    except ValueError as exc:
        stop_with(f"{work.label} failed: {exc}")
    except MemoryError:
        stop_with(f"{work.label} ran out of memory. Use a larger max length or fewer documents.")
    store.put(work.key, value)
    return value


def run(work: Work, *, action: str = "Run", auto_seconds: float | None = None):
    """The result of ``work``: stored, computed now (predicted under `AUTO_SECONDS`), or
    from a child process. Returns None while the work is only offered (a Run button) or
    was stopped; the caller then skips what needs it."""
    store = _store()
    hit = store.get(work.key)
    if hit is not _MISSING:
        return hit
    limit = AUTO_SECONDS if auto_seconds is None else auto_seconds
    job = store.job(work.key)
    if job is None and work.seconds <= limit:
        return run_inline(work)
    slot = st.empty()
    box = slot.container(border=True)
    if job is not None and job.state in ("waiting", "running"):
        out = _watch(job, store, slot, box)
        if out is not _STOPPED:
            return out
    elif job is not None:  # finished badly since the last run: say so once
        store.forget(job)
        if job.state == "failed":
            box.error(f"{work.label} failed: {job.error}.")
        hit = store.get(work.key)
        if hit is not _MISSING:
            return hit
    box.markdown(
        f"**{work.label}** takes about **{seconds_text(work.seconds)}** here, so it runs "
        "when you ask, with a progress bar and a Stop button."
    )
    if not box.button(
        f"{action} (about {seconds_text(work.seconds)})",
        key=f"run|{work.key}",
        type="primary",
        icon=":material/play_arrow:",
    ):
        return None
    box = slot.container(border=True)  # replaces the offer (an st.empty holds one element)
    out = _watch(store.start(work), store, slot, box)
    return None if out is _STOPPED else out


_STOPPED = object()


def _watch(job: _Job, store: _Store, slot, box):
    """Progress bar and Stop button until the job ends (each bar update is a point where
    Streamlit can interrupt this run for the Stop click's rerun). Returns the result,
    None when it failed, or `_STOPPED`."""
    work = job.work
    bar = box.progress(0.0, text=f"{work.label}: starting…")
    stop_slot = box.empty()
    if stop_slot.button("Stop", key=f"stop|{work.key}", icon=":material/stop_circle:"):
        ran = time.monotonic() - job.started
        job.stop()
        store.forget(job)
        bar.empty()
        stop_slot.empty()
        box.warning(
            f"Stopped {work.label[0].lower()}{work.label[1:]} after {seconds_text(ran)}. "
            "Change the settings (a larger max length or a sorted order is faster), or run "
            "it again."
        )
        return _STOPPED
    while job.state in ("waiting", "running"):
        elapsed = time.monotonic() - job.started
        text = job.text if job.state == "running" else "waiting for a free worker"
        bar.progress(
            job.fraction(),
            text=f"{work.label}: {text} · {elapsed:.0f} s of about {seconds_text(work.seconds)}",
        )
        time.sleep(0.2)
    bar.empty()
    stop_slot.empty()
    store.forget(job)
    if job.state == "failed":
        box.error(f"{work.label} failed: {job.error}.")
        return None
    hit = store.get(work.key)
    if hit is _MISSING:  # stopped from another session
        return _STOPPED
    slot.empty()
    return hit
