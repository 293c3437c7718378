"""Work that may take long: predicted first, then run at once when it is cheap, or offered
as an explicit action that runs in a child process, with a progress bar and a Stop button.

Why. A page must never sit for seconds with nothing to show and nothing to press. Each
piece of work comes with a predicted time (`packviz.plan_cost` and friends): under
`AUTO_SECONDS` it runs inline; above, the page shows what it would cost and a **Run**
button. Running work shows a progress bar and a **Stop** button, and Stop really stops
it: numpy and the fit engines cannot be interrupted from another thread, so the work
runs in a worker process (`dashboard.worker`, a fresh interpreter: never a fork of the
server's threads) which Stop terminates. A worker that runs out of memory dies alone;
the server and every other session carry on; a job that ends without a result for any
reason is an error box, never a progress bar that runs forever.

Results and jobs live in one process-wide store (`dashboard.jobstore`, held by
`st.cache_resource`) under plain string keys that name the data (content digests) and
the settings, so a result is shared by the sessions that ask for exactly the same thing
and by no one else. Each call names the *slot* it fills on its page (the plan, the sweep,
the file …): when a session asks a slot for something else (a setting changed while the
job ran) or the session ends, a job no session asks for any more is stopped. Work keeps
running if the user changes page, and its result is there when they come back. A session
runs at most `dashboard.jobstore.SESSION_JOBS` jobs at once.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Callable

import streamlit as st

from dashboard import jobstore
from dashboard.errors import stop_with
from dashboard.jobstore import MISSING, Job, Store, Work
from packviz.pipeline.progress import seconds_text

__all__ = ["AUTO_SECONDS", "Work", "cached", "deferred", "discard", "put", "run", "run_inline"]

#: Work predicted to take longer than this (seconds) waits for a click on Run (the
#: re-render budget is 1.5 s; nothing may block for ~2 s without a progress bar).
AUTO_SECONDS = 1.5
_SESSION = "jobs.session"


@st.cache_resource(show_spinner=False)
def _store() -> Store:
    return Store()


class _Session:
    """A session's handle on the store. It lives in the session's state, so when
    Streamlit drops the session (a closed tab, after ``server.disconnectedSessionTTL``)
    its finalizer releases the session's claims and jobs nobody else asks for stop."""

    _ids = itertools.count(1)

    def __init__(self, store: Store) -> None:
        self.id = next(self._ids)
        weakref.finalize(self, store.end_session, self.id)


def _session(store: Store) -> int:
    handle = st.session_state.get(_SESSION)
    if handle is None:
        handle = st.session_state[_SESSION] = _Session(store)
    return handle.id


def cached(key: str):
    """The stored result under ``key``, or None."""
    hit = _store().get(key)
    return None if hit is MISSING else hit


def put(key: str, value) -> None:
    """Store a result computed elsewhere (cheap work done by a page)."""
    _store().put(key, value)


def discard(key: str) -> None:
    """Drop the stored result under ``key``."""
    _store().discard(key)


def deferred(work: Work, result=None) -> Callable[[], object]:
    """What a download button calls when clicked: the ``result`` in hand (a file built
    by a job: held here, so that the store evicting it cannot make the click rebuild a
    large file inside the download request), else ``work`` computed then — for work
    predicted under `AUTO_SECONDS` only."""
    if result is not None:
        return lambda: result
    if work.seconds > AUTO_SECONDS:
        raise ValueError(f"{work.label} is predicted to take {work.seconds:.1f} s: run it first")
    return lambda: work.fn(*work.args, report=None)


def run_inline(work: Work):
    """Run now, in this script run (with a spinner); stop the page with an error box on
    bad input or when memory runs out."""
    store = _store()
    hit = store.get(work.key)
    if hit is not MISSING:
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


def run(
    work: Work, *, action: str = "Run", auto_seconds: float | None = None, slot: str | None = None
):
    """The result of ``work``: stored, computed now (predicted under `AUTO_SECONDS`), or
    from a child process. Returns None while the work is only offered (a Run button) or
    was stopped; the caller then skips what needs it. ``slot`` names what the result is
    for on the page (default: the key's first part, such as ``plan``): asking a slot for
    another key releases the job asked for before."""
    store = _store()
    session = _session(store)
    store.ask(session, slot or work.key.split("|", 1)[0], work.key)
    job = store.job(work.key)  # before the result: a job that ends in between is watched
    hit = store.get(work.key)
    if hit is not MISSING:
        return hit
    limit = AUTO_SECONDS if auto_seconds is None else auto_seconds
    if job is None and work.seconds <= limit:
        return run_inline(work)
    place = st.empty()
    box = place.container(border=True)
    if job is not None and job.unfinished:
        out = _watch(job, store, place, box)
        if out is not _STOPPED:
            return out
    elif job is not None:  # finished badly since the last run: say so once
        store.forget(job)
        if job.state == "failed":
            box.error(f"{work.label} failed: {job.error}.")
        hit = store.get(work.key)
        if hit is not MISSING:
            return hit
    box.markdown(
        f"**{work.label}** takes about **{seconds_text(work.seconds)}** here, so it runs "
        "when you ask, with a progress bar and a Stop button."
    )
    busy = [j.work.label for j in store.busy(session) if j.work.key != work.key]
    if len(busy) >= jobstore.SESSION_JOBS:
        box.info(
            f"This session already runs {len(busy)} jobs ({'; '.join(busy)}), as many as "
            "one session may: wait for one to finish, or stop it on its page.",
            icon=":material/hourglass_top:",
        )
    if not box.button(
        f"{action} (about {seconds_text(work.seconds)})",
        key=f"run|{work.key}",
        type="primary",
        icon=":material/play_arrow:",
        disabled=len(busy) >= jobstore.SESSION_JOBS,
    ):
        return None
    box = place.container(border=True)  # replaces the offer (an st.empty holds one element)
    out = _watch(store.start(work, session), store, place, box)
    return None if out is _STOPPED else out


_STOPPED = object()


def _watch(job: Job, store: Store, place, box):
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
    while job.unfinished:
        if not job.thread.is_alive():  # its thread ends every job; never wait forever
            job.end("failed", "the job ended without a result")
            break
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
    if hit is MISSING:  # stopped from another session
        return _STOPPED
    place.empty()
    return hit
