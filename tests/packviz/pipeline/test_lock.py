"""One run per output folder: a second run fails at once, before it writes anything."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest
from corpus_files import cli_env, documents, tokenizer_file, write_jsonl

import packviz as pv
from packviz.pipeline.lock import JobLock, JobLocked


def test_a_second_run_on_the_same_folder_fails_at_once_naming_it(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", documents(40, 1))
    tok = tokenizer_file(tmp_path)
    out = tmp_path / "out"
    # another process holds the folder (as a running `packviz pack` does)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from packviz.pipeline.lock import JobLock; "
         f"l = JobLock({str(out / '.packviz-work')!r}).acquire(); print('held', flush=True); "
         "sys.stdin.read(); l.release()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(
            JobLocked,
            match=rf"{out} is in use by another packviz pack run \(host .* pid {holder.pid} "
            r"holds .*lock\); wait for it to finish or stop it, then run again",
        ):
            pv.pack_corpus(tmp_path / "a.jsonl", out, tokenizer=tok, max_len=64, progress=False)
        assert [p.name for p in (out / ".packviz-work").iterdir()] == ["lock"]  # nothing written
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    report = pv.pack_corpus(tmp_path / "a.jsonl", out, tokenizer=tok, max_len=64,
                            progress=False, log=lambda line: None)  # fmt: skip
    assert report.stats.n_docs == 40
    assert not (out / ".packviz-work").exists()  # the lock goes with the run


def test_a_lock_on_a_file_removed_meanwhile_is_not_taken_for_the_lock(tmp_path, monkeypatch):
    from packviz.pipeline import lock

    work = tmp_path / ".packviz-work"
    first = JobLock(work).acquire()
    stale = os.open(first.path, os.O_RDWR)  # a late run opened the file just before ...
    first.release()  # ... the first run ended, removing it
    third = JobLock(work).acquire()  # and a third run made and locked a new one
    opened = iter([stale])
    real_open = os.open
    monkeypatch.setattr(lock.os, "open", lambda *a: next(opened, None) or real_open(*a))
    with pytest.raises(JobLocked, match=r"is in use by another packviz pack run"):
        JobLock(work).acquire()  # locks the stale file, sees it is gone, tries the new one
    third.release()
    assert not work.exists()


def test_a_folder_removed_by_a_run_that_ended_meanwhile_is_made_again(tmp_path, monkeypatch):
    """Run A ends (removing the lock and the work folder) while run B sits between opening
    the lock file and locking it: B starts over and takes a new lock, no raw error."""
    work = tmp_path / "out" / ".packviz-work"
    first = JobLock(work).acquire()
    real_flock = fcntl.flock
    calls = []

    def flock(fd, op):
        calls.append(op)
        if len(calls) == 1:  # B's first try: A holds the lock and ends now
            first.release()
            assert not work.exists()  # the work folder went with A's lock
            return real_flock(fd, op)  # B locks the removed file: stale
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    second = JobLock(work).acquire()
    assert len(calls) == 2 and work.is_dir() and (work / "lock").exists()
    second.release()
    assert not work.exists()
