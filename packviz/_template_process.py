"""Chat templates from users render in a child process that they cannot exhaust.

Why a process. A chat template is a program from an upload or a model repository. The
sandbox keeps it away from Python objects, and `packviz._sandbox` refuses the common
blow-ups early, but no check inside Jinja bounds what a template costs: one step can
build hundreds of MB (``indent`` of many lines, ``join`` of long texts) and loops can
spin the CPU for ever. So every template but the built-in ChatML renders in a child
process (`packviz._template_child`) whose address space is limited (``RLIMIT_AS``: what
it needs to start, plus `RENDER_MEMORY`) and which the parent kills when one
conversation takes more than `RENDER_SECONDS` of CPU time (or, whatever the reason,
more than `RENDER_WALL_SECONDS` of wall-clock time). The error names that
conversation's record. What a template can cost the caller is thus at most
`RENDER_MEMORY` per rendering thread and `RENDER_SECONDS` of CPU per conversation: a
template that stays just under the limit on every conversation is slow, not stopped.

Why CPU time first. On a busy machine (a shared server, a pack with every core taken)
a child can wait for a core for seconds; a wall-clock limit tight enough to matter
stops good templates there (a first version with a 10 s wall-clock limit stopped 3 of
8 benchmark runs of 20,000 chats, ~50 µs of work each, on 2 cores at a load of 6).
Answers already waiting are always read before a limit is checked.
CPU time is what a template spends, whatever the load; the wall-clock limit, 6 times
longer, only catches a child that is stopped or starved.

Why ``python -m`` and not ``multiprocessing``. Streamlit runs page scripts as the
``__main__`` module, and multiprocessing's spawn and forkserver children re-import
``__main__`` (they would run the page again); forking a threaded server can deadlock.
A plain subprocess imports only packviz, from the same source tree as its parent.

Cost. A child starts once per process (about 0.3 s, mostly imports) and stays while idle
(up to `IDLE_SECONDS`); threads share a small pool of them, and a forked process starts
its own. Conversations go in requests of up to `REQUEST_CHARS` of JSON; the answers
come back in large writes (no round trip per conversation), and the child notes in a
24-byte shared page which conversation it is on and its CPU and wall-clock times when
it began, so the parent knows which one to name when it has to stop it. Measured on 20,000 chats
(``benchmarks/bench_records.py``): see ``docs/decisions.md``.

Protocol: frames of an 8-byte length and JSON (never pickle: the records are user
data). The parent sends ``{"template", "special_tokens", "name", "end_of_turn", "today",
"limits", "seconds", "chats"}``; the child answers one frame per chat, ``{"text",
"spans", "marked"}`` or ``{"error", "kind"}``, and skips the rest of a request after an
error (after running out of memory it exits). Written for Linux (``RLIMIT_AS``,
``/proc`` for the child's CPU time); elsewhere on POSIX only the wall-clock limit holds.

Example (a template that would loop 10¹² times, stopped after a second of CPU):
    >>> import packviz as pv, packviz._template_process as tp
    >>> loops = "{% set s = 'x' * 10**6 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    >>> old, tp.RENDER_SECONDS = tp.RENDER_SECONDS, 1.0
    >>> try:
    ...     pv.render_chat([{"role": "user", "content": "hi"}], loops, where="chats.jsonl line 3")
    ... except pv.CorpusError as exc:
    ...     print(exc)
    ... finally:
    ...     tp.RENDER_SECONDS = old
    chats.jsonl line 3: the chat template took more than 1 s of CPU time to render it and was stopped (a chat template renders a conversation in milliseconds)
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from packviz.corpus import CorpusError

#: Address space a child may use beyond what it needs to start (bytes).
RENDER_MEMORY = 1 << 30
#: CPU seconds one conversation may take to render (the parent kills the child).
RENDER_SECONDS = 10.0
#: Wall-clock seconds one conversation may take, whatever the load.
RENDER_WALL_SECONDS = 60.0
#: Seconds a child may take to start (imports, on a busy machine).
START_SECONDS = 120.0
#: A child exits after this many idle seconds; the parent retires it a little earlier.
IDLE_SECONDS = 300.0
#: JSON characters of conversations sent in one request (at least one conversation).
REQUEST_CHARS = 1 << 23
#: Idle children kept per process (one per thread that renders at the same time).
MAX_IDLE = 4

_LEN = struct.Struct("<Q")
#: The shared page: the conversation the child is on (its index in the request, -1
#: before the first), the child's CPU seconds and the wall clock when it began on it.
_PROGRESS = struct.Struct("<qdd")
_ROOT = Path(__file__).resolve().parent.parent  # the tree this packviz was imported from


class _Ended(Exception):
    """The child closed its end (it exited or was killed)."""


class _Child:
    """One child process, the pipes to it and the page where it notes its progress."""

    def __init__(self, memory: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"  # no thread pools (each would reserve address space)
        self.memory, self.owner, self.used = memory, os.getpid(), time.monotonic()
        if hasattr(os, "memfd_create"):
            self.page_fd = os.memfd_create("packviz-template-progress")
        else:  # not Linux: an unlinked temporary file
            self.page_fd, name = tempfile.mkstemp(prefix="packviz-template-")
            os.unlink(name)
        os.ftruncate(self.page_fd, _PROGRESS.size)
        self.page = mmap.mmap(self.page_fd, _PROGRESS.size)
        self.buf, self.pos = bytearray(), 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "packviz._template_child", str(memory), str(self.page_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=_ROOT,  # first on sys.path: the same packviz as this process
            env=env,
            pass_fds=(self.page_fd,),
        )
        _ALL.add(self)
        try:
            ready = self.receive(time.monotonic() + START_SECONDS)
        except (_Ended, TimeoutError):
            ready = None
        if not isinstance(ready, dict) or not ready.get("ready"):
            self.kill()
            err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(
                "could not start the process that renders chat templates "
                f"({(err or ['no message'])[-1]})"
            )
        self.proc.stderr.close()  # the child sends it to /dev/null from now on

    def send(self, data: bytes) -> None:
        _PROGRESS.pack_into(self.page, 0, -1, self.cpu(), time.monotonic())
        self.proc.stdin.write(_LEN.pack(len(data)) + data)
        self.proc.stdin.flush()

    def progress(self) -> tuple[int, float, float]:
        """The conversation (index in the request) the child is on, and its CPU
        seconds and the wall clock when it began (-1 before the first)."""
        return _PROGRESS.unpack_from(self.page, 0)

    def cpu(self) -> float:
        """The child's CPU seconds so far (0.0 once it is gone)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()  # utime and stime: fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def receive(self, deadline: float | None = None):
        """The next frame: `_Ended` at end of file; ``TimeoutError`` past ``deadline``,
        or (without one) with "cpu" or "wall" when the conversation in progress is past
        `RENDER_SECONDS` of CPU or `RENDER_WALL_SECONDS`."""
        head = self._take(_LEN.size, deadline)
        return json.loads(self._take(_LEN.unpack(head)[0], deadline))

    def _left(self, deadline: float | None) -> float:
        """Seconds to wait for more before checking the limits again (a child has one
        thread: its CPU time grows no faster than the clock)."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("wall")
            return left
        _, cpu, wall = self.progress()
        cpu_left = RENDER_SECONDS - (self.cpu() - cpu)
        wall_left = RENDER_WALL_SECONDS - (time.monotonic() - wall)
        if cpu_left <= 0 or wall_left <= 0:
            raise TimeoutError("cpu" if cpu_left <= 0 else "wall")
        return min(cpu_left, wall_left)

    def _take(self, n: int, deadline: float | None) -> bytes:
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while len(self.buf) - self.pos < n:
            # what is there is read first: limits only count while nothing comes
            if poller.poll(0) or poller.poll(max(1, int(self._left(deadline) * 1000))):
                chunk = os.read(fd, max(n, 1 << 20))
                if not chunk:
                    raise _Ended
                del self.buf[: self.pos]
                self.buf += chunk
                self.pos = 0
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def usable(self) -> bool:
        fresh = time.monotonic() - self.used < IDLE_SECONDS * 0.8
        return self.owner == os.getpid() and fresh and self.proc.poll() is None

    def close(self) -> None:
        """End it the polite way (end of input), then the hard way."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._forget()

    def _forget(self) -> None:
        """Close this process's ends (pipes, page)."""
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr, self.page):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        try:
            os.close(self.page_fd)
        except OSError:
            pass
        _ALL.discard(self)


_LOCK = threading.Lock()
_IDLE: list[_Child] = []
_ALL: weakref.WeakSet[_Child] = weakref.WeakSet()
_INHERITED: list[_Child] = []  # a forked process's copies of its parent's children


def _acquire(memory: int) -> _Child:
    with _LOCK:
        while _IDLE:
            child = _IDLE.pop()
            if child.memory == memory and child.usable():
                return child
            if child.owner == os.getpid():
                child.close()
            else:
                _INHERITED.append(child)
    return _Child(memory)


def _release(child: _Child) -> None:
    child.used = time.monotonic()
    with _LOCK:
        if len(_IDLE) < MAX_IDLE:
            _IDLE.append(child)
            return
    child.close()


def _after_fork() -> None:
    """In a forked process: the parent's children are not ours (their pipes are copies);
    close our copies and start afresh."""
    global _LOCK
    _LOCK = threading.Lock()
    for child in list(_ALL):
        child._forget()
        _INHERITED.append(child)  # kept, so that no Popen is collected as if ours
    _IDLE.clear()
    _ALL.clear()


def _close_all() -> None:
    with _LOCK:
        idle = [c for c in _IDLE if c.owner == os.getpid()]
        _IDLE.clear()
    for child in idle:
        child.close()


os.register_at_fork(after_in_child=_after_fork)
atexit.register(_close_all)


def render(template, chats, *, end_of_turn, today) -> list[tuple[str, list, bool]]:
    """``(text, spans, marked)`` of each chat (`packviz.chat._Chat`), rendered with
    ``template`` in a child; the first failure raises `CorpusError` (or
    `packviz.chat.ChatTemplateError`) naming its record."""
    from packviz import _sandbox
    from packviz.chat import ChatTemplateError

    if not chats:
        return []
    header = {
        "template": template.source,
        "special_tokens": dict(template.special_tokens),
        "name": template.name,
        "end_of_turn": list(end_of_turn),
        "today": today.isoformat(),
        "limits": {k: getattr(_sandbox, k) for k in _sandbox.LIMITS},
        "seconds": RENDER_WALL_SECONDS,
    }
    head = json.dumps(header)[:-1] + ', "chats": ['
    encoded = [_encode(c) for c in chats]
    out: list[tuple[str, list, bool]] = []
    child = _acquire(RENDER_MEMORY)
    try:
        lo = 0
        while lo < len(chats):
            hi, size = lo + 1, len(encoded[lo])
            while hi < len(chats) and size + len(encoded[hi]) <= REQUEST_CHARS:
                size += len(encoded[hi])
                hi += 1
            request = (head + ", ".join(encoded[lo:hi]) + "]}").encode()
            try:
                error = _exchange(child, request, chats[lo:hi], template.name, out)
            except _NotStarted:  # it died while idle: once more with a fresh one
                child.kill()
                child = _Child(RENDER_MEMORY)
                try:
                    error = _exchange(child, request, chats[lo:hi], template.name, out)
                except _NotStarted:
                    raise RuntimeError(
                        "the process that renders chat templates ended before it began "
                        f"({_how(child.proc.returncode)})"
                    ) from None
            if error is not None:  # the child skipped the rest of the request
                if error["kind"] != "memory":  # after running out of memory it exits
                    _release(child)
                    child = None
                kind = ChatTemplateError if error["kind"] == "template" else CorpusError
                raise kind(error["error"])
            lo = hi
    except BaseException:
        if child is not None:
            child.kill()
        raise
    _release(child)
    return out


class _NotStarted(Exception):
    """The child was gone before it began on a request."""


def _exchange(child: _Child, request: bytes, chats, name: str, out: list) -> dict | None:
    """Send one request and add its answers to ``out``: the error frame that ended it,
    or None. A conversation past its time limits, or a child that ends while on one,
    raises `CorpusError` naming it (the caller kills the child)."""
    try:
        child.send(request)
    except OSError:
        raise _NotStarted from None
    for k in range(len(chats)):
        try:
            frame = child.receive()
        except TimeoutError as exc:
            where = chats[max(0, child.progress()[0])].where
            took = (
                f"{RENDER_SECONDS:g} s of CPU time"
                if exc.args == ("cpu",)
                else f"{RENDER_WALL_SECONDS:g} s (is the machine overloaded?)"
            )
            raise CorpusError(
                f"{where}: {name} took more than {took} to render it and was stopped "
                "(a chat template renders a conversation in milliseconds)"
            ) from None
        except _Ended:
            child.proc.wait()
            index = child.progress()[0]
            if index < 0 and k == 0:
                raise _NotStarted from None
            raise CorpusError(
                f"{chats[max(0, index)].where}: {name} ended the process rendering it "
                f"({_how(child.proc.returncode)}); it may need more than "
                f"{RENDER_MEMORY >> 20:,} MiB"
            ) from None
        if "error" in frame:
            return frame
        out.append((frame["text"], frame["spans"], frame["marked"]))
    return None


def _encode(chat) -> str:
    def refuse(value):
        raise TypeError(type(value).__name__)

    record = {"messages": chat.messages, "where": chat.where}
    record.update(find_spans=chat.find_spans, last_only=chat.last_only)
    try:
        return json.dumps(record, default=refuse)
    except (TypeError, ValueError) as exc:
        raise CorpusError(
            f"{chat.where}: a message holds a value of type {exc} that a chat template "
            "cannot be given; keep to text, numbers, lists and objects"
        ) from None


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
