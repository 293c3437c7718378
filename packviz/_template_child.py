"""The child process of `packviz._template_process`: ``python -m packviz._template_child
MEMORY PAGE_FD``.

Why its own module. It is the other end of the pipes: it imports the sandbox, limits
its own address space to what it needed to start plus ``MEMORY`` bytes, says it is
ready, then renders requests until its input ends or it has been idle for
`packviz._template_process.IDLE_SECONDS`. Before each conversation it notes the
conversation's index, its CPU time and the clock in the shared page ``PAGE_FD``, so
that the parent can tell how long it has been on it and name the one it had to stop;
answers are written in large pieces. A conversation that runs out of memory is
reported and the process exits (a fresh one replaces it); ``SIGALRM`` ends it if a
conversation runs twice past the parent's wall-clock limit (the parent is gone). Its standard output and error go to ``/dev/null`` once it
is ready: only frames reach the parent.
"""

from __future__ import annotations

import json
import mmap
import os
import select
import signal
import sys
import time
from pathlib import Path

from packviz._template_process import _LEN, _PROGRESS, IDLE_SECONDS, _Ended
from packviz.corpus import CorpusError


def _read(fd: int, n: int) -> bytes:
    """``n`` bytes from ``fd`` (the child's blocking reads); `_Ended` at end of file."""
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 22))
        if not chunk:
            raise _Ended
        buf += chunk
    return bytes(buf)


def _serve(request: dict, out: int, memory: int, page) -> bool:
    """Render the chats of ``request``, one frame each (written in large pieces); False
    when this process must end."""
    import datetime

    from packviz import _chat_render, _sandbox, chat

    for name, value in request["limits"].items():
        setattr(_sandbox, name, value)
    template = chat.ChatTemplate(request["template"], request["special_tokens"], request["name"])
    day = datetime.date.fromisoformat(request["today"])
    end_of_turn = tuple(request["end_of_turn"])
    backstop = int(request["seconds"] * 2) + 5  # if the parent is gone, still stop
    pending: list[bytes] = []
    size = 0
    for index, c in enumerate(request["chats"]):
        one = chat._Chat(c["messages"], c["where"], c["find_spans"], c["last_only"])
        _PROGRESS.pack_into(page, 0, index, _cpu(), time.monotonic())
        signal.alarm(backstop)
        try:
            r = _chat_render.render_one(one, template, end_of_turn, day)
            frame = {"text": r.text, "spans": r.spans, "marked": r.marked}
        except chat.ChatTemplateError as exc:
            frame = {"error": str(exc), "kind": "template"}
        except CorpusError as exc:
            frame = {"error": str(exc), "kind": "corpus"}
        except MemoryError:
            frame = {
                "error": f"{one.where}: {template.name} ran out of memory rendering it "
                f"(more than {memory >> 20:,} MiB)",
                "kind": "memory",
            }
        except Exception as exc:  # noqa: BLE001 - whatever a template does is its error
            frame = {
                "error": f"{one.where}: {template.name} failed to render it "
                f"({type(exc).__name__}: {exc})",
                "kind": "corpus",
            }
        finally:
            signal.alarm(0)
        data = json.dumps(frame).encode()
        pending += (_LEN.pack(len(data)), data)
        size += len(data)
        if "error" in frame:
            _write(out, b"".join(pending))
            return frame["kind"] != "memory"
        if size >= 1 << 20:
            _write(out, b"".join(pending))
            pending, size = [], 0
    _write(out, b"".join(pending))
    return True


def _cpu() -> float:
    """CPU seconds of this process, as the parent reads them (``/proc``, in ticks)."""
    t = os.times()
    return t.user + t.system


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_request(fd: int):
    """The next request, or None at end of input or after `IDLE_SECONDS` idle."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if not poller.poll(int(IDLE_SECONDS * 1000)):
        return None
    try:
        return json.loads(_read(fd, _LEN.unpack(_read(fd, _LEN.size))[0]))
    except _Ended:
        return None


def main() -> int:
    import resource

    from packviz import _chat_render, _sandbox  # noqa: F401 - imported before the limit

    _sandbox.environment()
    memory, page = int(sys.argv[1]), mmap.mmap(int(sys.argv[2]), _PROGRESS.size)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + memory
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):  # no /proc: keep the limits there are
        pass
    out = os.dup(1)  # frames only on the pipe; stray prints go to /dev/null
    ready = json.dumps({"ready": True, "pid": os.getpid()}).encode()
    _write(out, _LEN.pack(len(ready)) + ready)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    while (request := _read_request(0)) is not None:
        if not _serve(request, out, memory, page):
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
