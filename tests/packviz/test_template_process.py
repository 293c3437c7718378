"""packviz._template_process: templates other than the built-in ChatML render in a child
process that stops them (time, memory) with an error naming the record, from threads,
forked and forkserver workers and scripts run as ``__main__`` alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from chat_tokenizers import CHAT

import packviz as pv
from packviz import _template_process as tp

ROOT = Path(__file__).resolve().parents[2]
PLAIN = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
#: Loops 10¹² times for a message "spin", renders at once otherwise.
SPIN = (
    "{% for m in messages %}{% if m.content == 'spin' %}{% set s = 'x' * 10**6 %}"
    "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{% endif %}"
    "{{ m.content }}\n{% endfor %}"
)


def chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def test_a_slow_conversation_is_stopped_and_named(monkeypatch):
    monkeypatch.setattr(tp, "RENDER_SECONDS", 1.0)
    recs = [chat("a"), chat("b"), chat("spin"), chat("c")]
    with pytest.raises(
        pv.CorpusError, match="^record 2: the chat template took more than 1 s of CPU time"
    ):
        pv.render_records(recs, train_on="all", chat_template=SPIN)
    assert not tp._IDLE or all(c.proc.poll() is None for c in tp._IDLE)  # the slow one is gone
    assert [r.text for r in pv.render_records(recs[:2], train_on="all", chat_template=SPIN)] == [
        "a\n",
        "b\n",
    ]


def test_a_child_that_takes_too_long_on_the_clock_is_stopped(monkeypatch):
    """Whatever the reason (a starved or stopped child): the wall-clock limit."""
    monkeypatch.setattr(tp, "RENDER_SECONDS", 100.0)
    monkeypatch.setattr(tp, "RENDER_WALL_SECONDS", 1.0)
    with pytest.raises(
        pv.CorpusError, match="^record 1: the chat template took more than 1 s \\(is the"
    ):
        pv.render_records([chat("a"), chat("spin")], train_on="all", chat_template=SPIN)


def test_a_child_that_ends_mid_render_names_the_record(monkeypatch):
    """Killed from outside (as the kernel's out-of-memory killer would)."""
    monkeypatch.setattr(tp, "RENDER_SECONDS", 60.0)
    monkeypatch.setattr(tp, "_IDLE", [])
    caught = []

    def render():
        try:
            pv.render_records([chat("a"), chat("spin")], train_on="all", chat_template=SPIN)
        except pv.CorpusError as exc:
            caught.append(str(exc))

    before = set(tp._ALL)
    thread = threading.Thread(target=render)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [c for c in list(tp._ALL) if c not in before]  # the thread's own child
        if busy and busy[0].progress()[0] == 1:
            break
        time.sleep(0.05)
    os.kill(busy[0].proc.pid, signal.SIGKILL)
    thread.join(60)
    assert caught == [
        "record 1: the chat template ended the process rendering it (killed by SIGKILL); "
        "it may need more than 1,024 MiB"
    ]


def test_a_child_that_died_while_idle_is_replaced(monkeypatch):
    """Between the pool's check and the request (the request finds the pipe closed)."""
    monkeypatch.setattr(tp, "_IDLE", [])
    assert pv.render_chat(CHAT, PLAIN, find_spans=False).text.startswith("system: Be brief.")
    (child,) = tp._IDLE
    os.kill(child.proc.pid, signal.SIGKILL)
    child.proc.wait()
    child.usable = lambda: True  # it died after the check
    assert pv.render_chat(CHAT, PLAIN, find_spans=False).text.startswith("system: Be brief.")
    (fresh,) = tp._IDLE
    assert fresh is not child and fresh.proc.poll() is None


def test_values_a_template_cannot_be_given_are_named():
    messages = [{"role": "user", "content": "hi", "when": object()}]
    with pytest.raises(pv.CorpusError, match="^chats.jsonl line 2: .*value of type object"):
        pv.render_chat(messages, PLAIN, where="chats.jsonl line 2")


def test_threads_render_at_once():
    """A Streamlit server renders each session in its own thread."""
    texts = [f"question {i}" for i in range(24)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda t: pv.render_chat([chat(t)["messages"][0]], PLAIN).text, texts))
    assert got == [f"user: {t}\n" for t in texts]
    assert len([c for c in tp._IDLE if c.owner == os.getpid()]) <= tp.MAX_IDLE


def test_a_streamlit_page_renders_a_template():
    from streamlit.testing.v1 import AppTest

    script = f"""
import streamlit as st
import packviz as pv
st.write(pv.render_chat([{{"role": "user", "content": "hi"}}], {PLAIN!r}).text)
"""
    at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception and at.markdown[0].value == "user: hi"


def test_the_callers_main_module_is_never_run_again(tmp_path):
    """Streamlit runs page scripts as ``__main__``: a multiprocessing spawn would run
    the script again in the child; a ``python -m`` child does not."""
    script = tmp_path / "page.py"
    script.write_text(
        textwrap.dedent(f"""
        print("page ran")
        import packviz as pv
        print(pv.render_chat([{{"role": "user", "content": "hi"}}], {PLAIN!r}).text, end="")
        """)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "page ran\nuser: hi\n"


def test_worker_processes_render_forkserver_and_fork(monkeypatch):
    """``packviz pack`` workers come from a fork server; a fork of a process that has a
    child of its own starts its own (the parent's keeps working)."""
    import multiprocessing

    messages = [{"role": "user", "content": "hi"}]
    assert pv.render_chat(messages, PLAIN).text == "user: hi\n"  # a child here first
    for method in ("forkserver", "fork"):
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            futures = [pool.submit(pv.render_chat, messages, PLAIN) for _ in range(4)]
            assert [f.result().text for f in futures] == ["user: hi\n"] * 4
    assert pv.render_chat(messages, PLAIN).text == "user: hi\n"


def test_an_idle_child_is_retired_and_exits_on_its_own(monkeypatch):
    monkeypatch.setattr(tp, "_IDLE", [])
    pv.render_chat(CHAT, PLAIN, find_spans=False)
    (old,) = tp._IDLE
    old.used -= tp.IDLE_SECONDS  # idle for too long: not used again
    pv.render_chat(CHAT, PLAIN, find_spans=False)
    (new,) = tp._IDLE
    assert new is not old and old.proc.poll() is not None
