"""The worker process of `dashboard.jobs`: ``python -m dashboard.worker``.

Why a fresh interpreter and not ``multiprocessing``: Streamlit runs page scripts as the
``__main__`` module, and ``multiprocessing``'s spawn and forkserver children re-import
``__main__`` — they would run the page script again, in bare mode. A plain subprocess
imports only this module, `dashboard.work` and packviz (a few hundred ms, small against
work predicted to take seconds), and Stop can terminate it outright.

Protocol: the parent writes one message to stdin, ``(function name in dashboard.work,
args)``; the worker writes messages to stdout — ``("progress", done, total, text)``,
then ``("done", value)`` or ``("error", message)``. Each message is an 8-byte length and
a pickle. Both ends are this program's own code: nothing from a user is ever unpickled
here (uploads reach the worker as arrays and strings the parent built).
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import BinaryIO

_LEN = struct.Struct("<Q")


def send(stream: BinaryIO, msg) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)))
    stream.write(data)
    stream.flush()


def receive(stream: BinaryIO):
    """The next message, or raise EOFError when the other end has gone."""
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (n,) = _LEN.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - written by the dashboard itself, see above


def main() -> int:
    from dashboard import work

    name, args = receive(sys.stdin.buffer)
    out = sys.stdout.buffer

    def report(done: int, total: int, text: str) -> None:
        send(out, ("progress", done, total, text))

    try:
        value = getattr(work, name)(*args, report=report)
    except ValueError as exc:  # the library's messages about input are for the user
        send(out, ("error", str(exc)))
    except MemoryError:
        send(out, ("error", "it ran out of memory"))
    except Exception as exc:  # noqa: BLE001 - anything else is reported, not raised
        send(out, ("error", f"{type(exc).__name__}: {exc}"))
    else:
        send(out, ("done", value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
