"""Long work on a page (dashboard.jobs): a job that ends without a result is an error
box, and a session that runs as many jobs as it may is told so instead of queueing more."""

from __future__ import annotations

import sys

from apptest import errors, synthetic

from dashboard import jobs, jobstore


def _run_button(at, action="Pack"):
    return [b for b in at.button if b.label.startswith(f"{action} (about ")]


def test_a_job_that_fails_is_an_error_box_not_an_endless_bar(monkeypatch):
    """A worker whose answer cannot be read: the page used to watch a job that stayed
    "running" forever."""
    monkeypatch.setattr(jobs, "AUTO_SECONDS", 0.0)  # every computation runs in a worker
    code = (
        "import struct, sys; sys.stdin.buffer.read(); "
        "sys.stdout.buffer.write(struct.pack('<Q', 5) + b'xxxxx')"
    )
    monkeypatch.setattr(jobstore, "worker_command", lambda: [sys.executable, "-c", code])
    at = synthetic(max_len=1024)
    at.default_timeout = 30
    at.run()
    at.switch_page("pages/packing.py").run()
    _run_button(at)[0].click().run()
    assert not at.exception
    (error,) = errors(at)
    assert error.startswith(
        "Packing 3,000 documents (best_fit, sort desc) failed: UnpicklingError while "
        "talking to the worker process"
    )
    at.run()  # said once; then offered again
    assert not errors(at) and _run_button(at)


def test_a_session_at_its_job_limit_cannot_start_another(monkeypatch):
    monkeypatch.setattr(jobs, "AUTO_SECONDS", 0.0)
    monkeypatch.setattr(jobstore, "SESSION_JOBS", 0)
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/packing.py").run()
    assert not at.exception
    (button,) = _run_button(at)
    assert button.disabled
    assert [i.value for i in at.info if i.value.startswith("This session already runs 0 jobs")]
