"""One run at a time per output folder: an exclusive lock on ``.packviz-work/lock``.

Two runs on one ``--out`` would race: both write the work folder, both rename shards
over each other, one deletes what the other still reads. So the driver takes an
exclusive, non-blocking ``flock`` on ``out/.packviz-work/lock`` before it writes
anything else there; a second run fails at once, naming the folder and the process
that holds it. The operating system drops the lock when its process dies (``kill -9``
included), so a killed run never leaves the folder locked.

The lock file is deleted when the run ends, while still held. A run that opened it just
before that could then hold a lock on a file no longer in the folder, so after taking
the lock a run checks that the path still names the file it locked, and starts over if
not. ``flock`` works on local file systems and on NFS (Linux emulates it with POSIX
locks there); where ``fcntl`` does not exist (Windows), there is no lock.

Example:
    >>> import tempfile, pathlib
    >>> work = pathlib.Path(tempfile.mkdtemp()) / ".packviz-work"
    >>> with JobLock(work):
    ...     try:
    ...         JobLock(work).acquire()
    ...     except JobLocked as exc:
    ...         print(str(exc).split(" (")[0].endswith("is in use by another packviz pack run"))
    True
    >>> work.exists()
    False
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOCK_FILE = "lock"


class JobLocked(ValueError):
    """Another run holds the output folder."""


class JobLock:
    """The exclusive lock of one output folder's work folder ``work``."""

    def __init__(self, work: str | os.PathLike) -> None:
        self.work = Path(work)
        self.path = self.work / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> JobLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform
            return self
        while True:
            try:  # each try: a run that finished in between may have removed the folder
                self.work.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"cannot create {self.work}: {exc.strerror or exc}"
                ) from None
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the folder went between mkdir and open: again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise JobLocked(
                    f"{self.work.parent} is in use by another packviz pack run ({holder} holds "
                    f"{self.path}); wait for it to finish or stop it, then run again"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the run before us removed it: lock the file that is there now
        os.ftruncate(fd, 0)
        os.write(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Delete the lock file (and the work folder, when nothing else is left in it),
        then let go of the lock."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        try:
            self.work.rmdir()
        except OSError:
            pass  # not empty: an interrupted job's work, kept to resume
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> JobLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
