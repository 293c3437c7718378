"""Files that are either complete or absent: write to a temporary name, fsync, rename.

A corpus job can be killed at any moment (kill -9, a full disk, a lost node). Every file
the pipeline produces — token store parts, the plan, shards, records, the manifest — is
written under a temporary name in the same folder and only then renamed to its final
name (an atomic step on POSIX file systems). The deliverables (shards, the manifest, a
trained tokenizer; ``durable=True``) are also fsynced before the rename, and their
folder after it, so they survive a machine crash; the work files are not (hundreds of
flushes saved): after a crash of the machine itself, a torn one fails its sha256 and is
made again. A final name therefore always holds complete content, and a killed run
leaves at most ``*.tmp-*`` files, which the next run deletes.

Example:
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> digest = write_atomic(os.path.join(folder, "a.bin"), [b"abc", b"def"])
    >>> digest == sha256_file(os.path.join(folder, "a.bin"))
    True
    >>> sorted(os.listdir(folder))
    ['a.bin']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path

#: Marker in the names of files being written; such files are never read as results.
TMP_MARK = ".tmp-"
_CHUNK = 1 << 20


def temp_name(path: str | os.PathLike) -> Path:
    """A temporary name next to ``path``, unique to this call: the host, the process and
    a random token (on a cluster or a shared file system, two processes on different
    hosts may have the same pid)."""
    path = Path(path)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"
    return path.with_name(f"{path.name}{TMP_MARK}{host}-{os.getpid()}-{secrets.token_hex(6)}")


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make renames inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_error(path: str | os.PathLike, exc: OSError) -> OSError:
    """An OSError that names the file and says what to do (full disk, permissions)."""
    reason = exc.strerror or str(exc)
    hint = ""
    if exc.errno in (28, 27, 122):  # ENOSPC, EFBIG, EDQUOT
        hint = "; free some space (or choose another --out) and run the same command again"
    error = OSError(f"cannot write {path}: {reason}{hint}")
    error.errno = exc.errno
    return error


class AtomicWriter:
    """Write a file in pieces under a temporary name, hashing as it goes (unless
    ``checksum=False``); `commit` makes it final, `abort` (or leaving the ``with`` block
    on an error) removes it."""

    def __init__(
        self, path: str | os.PathLike, *, durable: bool = True, checksum: bool = True
    ) -> None:
        self.path = Path(path)
        self.durable = durable
        self.tmp = temp_name(self.path)
        self.sha = hashlib.sha256() if checksum else None
        self.size = 0
        try:
            self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        try:
            self._fh.write(view)
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from None
        if self.sha is not None:
            self.sha.update(view)
        self.size += view.nbytes

    def commit(self) -> str | None:
        """Flush (and fsync when durable), rename to the final name; return the sha256
        (None without ``checksum``)."""
        try:
            self._fh.flush()
            if self.durable:
                os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from None
        if self.durable:
            fsync_dir(self.path.parent)
        return None if self.sha is None else self.sha.hexdigest()

    def abort(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()


def write_atomic(
    path: str | os.PathLike, chunks: Iterable, *, durable: bool = True, checksum: bool = True
) -> str | None:
    """Write ``chunks`` (bytes-like) as one file, atomically; return its sha256 (None
    without ``checksum``)."""
    with AtomicWriter(path, durable=durable, checksum=checksum) as w:
        for chunk in chunks:
            w.write(chunk)
        return w.commit()


def write_json(path: str | os.PathLike, obj, *, durable: bool = True) -> str:
    """Write ``obj`` as indented, key-sorted JSON (the same object, the same bytes)."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return write_atomic(path, [text.encode()], durable=durable)


def read_json(path: str | os.PathLike):
    """The JSON in ``path``, or None when it is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, read in 1 MiB chunks (hashlib releases the GIL on them)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def remove_temporaries(folder: str | os.PathLike) -> None:
    """Delete files a killed run left half-written under ``folder`` (recursively)."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.rglob(f"*{TMP_MARK}*"):
            p.unlink(missing_ok=True)
