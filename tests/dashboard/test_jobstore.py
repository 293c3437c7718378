"""dashboard.jobstore: work in a child process reports progress, returns read-only plans,
fails with a message whatever goes wrong, stops for real; finished jobs and their
arguments are not kept; a job nobody asks for any more stops; the store evicts by bytes."""

from __future__ import annotations

import gc
import sys
import time

import numpy as np

import packviz as pv
from dashboard import jobs, jobstore, work


def _wait(job, timeout=60):
    t0 = time.monotonic()
    while job.unfinished:
        assert time.monotonic() - t0 < timeout, f"still {job.state} after {timeout} s"
        time.sleep(0.05)
    job.thread.join(10)  # the reader thread has reaped the worker and told the store
    return job.state


def _worker(monkeypatch, code: str) -> None:
    """Replace the worker process by a Python program (``code``)."""
    monkeypatch.setattr(jobstore, "worker_command", lambda: [sys.executable, "-c", code])


def _sleeper(monkeypatch) -> None:
    """A worker that takes the work and never answers (until it is terminated)."""
    _worker(monkeypatch, "import time; time.sleep(120)")


def _running(job, timeout=30):
    t0 = time.monotonic()
    while job.state != "running":
        assert time.monotonic() - t0 < timeout
        time.sleep(0.02)
    return job


def _work(key="k", n=5000):
    lengths = pv.synthetic_lengths(n, seed=0)
    return jobstore.Work(
        key, "Packing", 1.0, work.plan, (lengths, 512, "best_fit", "none", "split", 0)
    )


def test_a_plan_comes_back_equal_and_read_only():
    store = jobstore.Store()
    w = _work()
    job = store.start(w)
    assert _wait(job) == "done"
    plan, stats, trade = store.get("k")
    expected = pv.pack(w.args[0], 512, sort="none")
    assert stats == expected.stats() and trade == pv.tradeoffs(expected)
    assert np.array_equal(plan.row, expected.row) and not plan.row.flags.writeable
    assert store.job("k") is None  # a done job is forgotten: its result is in the store
    assert job.work.args == ()  # and it holds no arguments


def test_progress_is_reported_by_steps():
    store = jobstore.Store()
    points = [(m, "best_fit", "desc") for m in (64, 128, 256)]
    w = jobstore.Work(
        "p", "Sweep", 1.0, work.evaluations, (np.array([100, 300]), points, "split", 0)
    )
    job = store.start(w)
    assert _wait(job) == "done"
    assert (job.done_steps, job.total_steps) == (3, 3) and job.fraction() == 1.0
    out = store.get("p")
    assert [p for p, _ in out] == points  # each result names its point
    assert [t.max_len for _, (_, t) in out] == [64, 128, 256]


def test_bad_input_fails_with_the_librarys_message():
    store = jobstore.Store()
    w = jobstore.Work(
        "e", "Packing", 1.0, work.plan, (np.array([3]), 0, "best_fit", "desc", "split", 0)
    )
    job = store.start(w)
    assert _wait(job) == "failed"
    assert job.error == "max_len must be between 1 and 1,048,576, got 0"
    assert store.get("e") is jobstore.MISSING
    assert store.job("e") is job  # kept, so a page coming back can say it failed


def test_a_function_that_raises_fails_the_job():
    def not_in_work(report=None):  # the worker looks it up in dashboard.work by name
        return 1

    store = jobstore.Store()
    job = store.start(jobstore.Work("x", "Nothing", 1.0, not_in_work, ()))
    assert _wait(job) == "failed"
    assert job.error.startswith("AttributeError: module 'dashboard.work' has no attribute")


def test_a_worker_that_dies_fails_the_job(monkeypatch):
    _worker(monkeypatch, "import sys; sys.exit(3)")
    store = jobstore.Store()
    job = store.start(_work())
    assert _wait(job) == "failed"
    assert job.error == ("the worker process ended without a result (exit code 3; out of memory?)")


def test_a_message_that_cannot_be_read_fails_the_job(monkeypatch):
    """A well-framed message that is not a pickle: the reader thread used to die with
    the job left "running", and a page watching it waited forever."""
    _worker(
        monkeypatch,
        "import struct, sys; sys.stdin.buffer.read(); "
        "sys.stdout.buffer.write(struct.pack('<Q', 5) + b'xxxxx'); sys.stdout.flush()",
    )
    store = jobstore.Store()
    job = store.start(_work())
    assert _wait(job, timeout=30) == "failed"
    assert job.error.startswith("UnpicklingError while talking to the worker process")
    assert job._proc.returncode == 0  # reaped


def test_a_worker_that_cannot_start_fails_the_job(monkeypatch):
    monkeypatch.setattr(jobstore, "worker_command", lambda: ["/nonexistent/python3"])
    store = jobstore.Store()
    job = store.start(_work())
    assert _wait(job, timeout=30) == "failed"
    assert job.error.startswith("no worker process could be started (")
    assert "/nonexistent/python3" in job.error
    assert store.slots.acquire(blocking=False) and store.slots.acquire(blocking=False)


def test_stop_terminates_the_worker():
    store = jobstore.Store()
    lengths = pv.synthetic_lengths(3_000_000, seed=0)
    w = jobstore.Work(
        "s", "Packing", 30.0, work.plan, (lengths, 2048, "first_fit", "random", "split", 0)
    )
    job = _running(store.start(w))
    job.stop()
    assert job.state == "stopped"
    assert _wait(job) == "stopped" and job._proc.returncode == -15
    assert store.get("s") is jobstore.MISSING
    assert job.work.args == ()  # sent, then dropped: the job no longer holds the lengths


def test_finished_jobs_are_bounded(monkeypatch):
    """Jobs that end with no page watching do not pile up: done ones are forgotten at
    once, failed ones past FINISHED_JOBS."""
    monkeypatch.setattr(jobstore, "FINISHED_JOBS", 2)
    store = jobstore.Store()
    bad = [
        store.start(
            jobstore.Work(
                f"e{i}",
                "Packing",
                1.0,
                work.plan,
                (np.array([3]), 0, "best_fit", "desc", "split", 0),
            )
        )
        for i in range(4)
    ]
    good = [store.start(_work(f"g{i}", n=100)) for i in range(3)]
    assert {_wait(j) for j in bad} == {"failed"} and {_wait(j) for j in good} == {"done"}
    assert len(store.jobs) == 2 and set(store.jobs) <= {f"e{i}" for i in range(4)}


def test_asking_a_slot_for_something_else_stops_the_job(monkeypatch):
    """A setting changed while the job ran: its session asks the slot for another key,
    and the job is stopped once no session asks for it."""
    _sleeper(monkeypatch)
    store = jobstore.Store()
    store.ask(1, "plan", "k")
    job = _running(store.start(_work(), session=1))
    store.ask(2, "plan", "k")  # another session watches the same job
    store.ask(1, "plan", "k2")
    assert job.state == "running"
    store.ask(1, "sweep", "k3")  # other slots change nothing
    store.ask(2, "plan", "k2")
    assert _wait(job) == "stopped" and job._proc.returncode == -15
    assert store.job("k") is None


def test_changing_page_keeps_the_job(monkeypatch):
    _sleeper(monkeypatch)
    store = jobstore.Store()
    store.ask(1, "plan", "k")
    job = _running(store.start(_work(), session=1))
    store.ask(1, "points Compare", "p")  # another page asks other slots
    store.ask(1, "plan", "k")  # and coming back asks the same key
    assert job.state == "running" and store.busy(1) == [job]
    job.stop()
    _wait(job)


def test_a_session_that_ends_stops_its_jobs(monkeypatch):
    """The session's handle lives in its state: when Streamlit drops the session, the
    handle's finalizer releases its claims."""
    _sleeper(monkeypatch)
    store = jobstore.Store()
    handle = jobs._Session(store)
    store.ask(handle.id, "plan", "k")
    job = _running(store.start(_work(), session=handle.id))
    other = _running(store.start(_work("k2"), session=999))  # another session's job
    del handle
    gc.collect()
    assert _wait(job) == "stopped"
    assert other.state == "running"
    store.end_session(999)
    assert _wait(other) == "stopped"


def test_busy_lists_a_sessions_unfinished_jobs(monkeypatch):
    _sleeper(monkeypatch)
    store = jobstore.Store()
    a = store.start(_work("a"), session=1)
    b = store.start(_work("b"), session=1)
    c = store.start(_work("c"), session=2)
    assert {j.work.key for j in store.busy(1)} == {"a", "b"} and store.busy(2) == [c]
    for j in (a, b, c):
        j.stop()
        _wait(j)
    assert store.busy(1) == []


def test_store_evicts_least_recently_used_past_its_budget(monkeypatch):
    monkeypatch.setattr(jobstore, "STORE_BYTES", 3000)
    store = jobstore.Store()
    for k in "abc":
        store.put(k, b"x" * 1000)
    store.get("a")  # a is now the most recent
    store.put("d", b"x" * 1000)
    assert store.get("b") is jobstore.MISSING
    assert all(store.get(k) is not jobstore.MISSING for k in "acd")
    store.discard("a")
    assert store.get("a") is jobstore.MISSING and store.total == 2000


def test_stopping_a_waiting_job_never_starts_its_worker(monkeypatch):
    _sleeper(monkeypatch)
    monkeypatch.setattr(jobstore, "MAX_RUNNING", 1)
    store = jobstore.Store()
    first = _running(store.start(_work("a")))
    second = store.start(_work("b"))
    assert second.state == "waiting"
    second.stop()
    first.stop()
    assert _wait(second) == "stopped" and _wait(first) == "stopped"
    assert second._proc is None and second.work.args == ()
