"""dashboard.jobs: work in a child process reports progress, returns read-only plans,
fails with a message, stops for real; the store evicts by bytes."""

from __future__ import annotations

import time

import numpy as np

import packviz as pv
from dashboard import jobs, work


def _wait(job, timeout=60):
    t0 = time.monotonic()
    while job.state in ("waiting", "running"):
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)
    return job.state


def test_a_plan_comes_back_equal_and_read_only():
    store = jobs._Store()
    lengths = pv.synthetic_lengths(5000, seed=0)
    w = jobs.Work("k", "Packing", 1.0, work.plan, (lengths, 512, "best_fit", "none", "split", 0))
    assert _wait(store.start(w)) == "done"
    plan, stats, trade = store.get("k")
    expected = pv.pack(lengths, 512, sort="none")
    assert stats == expected.stats() and trade == pv.tradeoffs(expected)
    assert np.array_equal(plan.row, expected.row) and not plan.row.flags.writeable
    assert store.job("k") is not None  # forgotten by the page that watched it


def test_progress_is_reported_by_steps():
    store = jobs._Store()
    points = [(m, "best_fit", "desc") for m in (64, 128, 256)]
    w = jobs.Work("p", "Sweep", 1.0, work.evaluations, (np.array([100, 300]), points, "split", 0))
    job = store.start(w)
    assert _wait(job) == "done"
    assert (job.done_steps, job.total_steps) == (3, 3) and job.fraction() == 1.0
    assert [t.max_len for _, t in store.get("p")] == [64, 128, 256]


def test_bad_input_fails_with_the_librarys_message():
    store = jobs._Store()
    w = jobs.Work(
        "e", "Packing", 1.0, work.plan, (np.array([3]), 0, "best_fit", "desc", "split", 0)
    )
    job = store.start(w)
    assert _wait(job) == "failed"
    assert job.error == "max_len must be between 1 and 1,048,576, got 0"
    assert store.get("e") is jobs._MISSING


def test_stop_terminates_the_worker():
    store = jobs._Store()
    lengths = pv.synthetic_lengths(3_000_000, seed=0)
    w = jobs.Work(
        "s", "Packing", 30.0, work.plan, (lengths, 2048, "first_fit", "random", "split", 0)
    )
    job = store.start(w)
    t0 = time.monotonic()
    while job.state != "running":
        assert time.monotonic() - t0 < 30
        time.sleep(0.05)
    job.stop()
    assert job.state == "stopped"
    t0 = time.monotonic()
    while job._proc.returncode is None:  # reaped by the job's reader thread
        assert time.monotonic() - t0 < 10
        time.sleep(0.05)
    assert job._proc.returncode == -15
    assert store.get("s") is jobs._MISSING


def test_store_evicts_least_recently_used_past_its_budget(monkeypatch):
    monkeypatch.setattr(jobs, "STORE_BYTES", 3000)
    store = jobs._Store()
    for k in "abc":
        store.put(k, b"x" * 1000)
    store.get("a")  # a is now the most recent
    store.put("d", b"x" * 1000)
    assert store.get("b") is jobs._MISSING
    assert all(store.get(k) is not jobs._MISSING for k in "acd")
