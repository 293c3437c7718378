"""What a corpus job is (its identity) and what it produced (``manifest.json``).

The *identity* of a job is every setting that changes an output byte plus each input
file's path, size and sha256, the packviz version and `PACK_FORMAT` (worker count,
engine and memory budget are not part of it: they never change the output). It is kept
in the work folder while the job runs and in the manifest when it is done, so running
the same command again resumes or reports "already complete", while a changed input,
setting or packviz is refused — unless ``overwrite``, which deletes the earlier job's
files (only those).

Only packviz's own files are ever deleted or overwritten. An output folder is taken for
packviz output only when its ``manifest.json`` is a packviz manifest (`is_manifest`:
its ``manifest_format`` and version) or it holds a work folder; a folder holding anything
packviz does not write (`foreign_entries`) is refused before anything is written, and
cleaning removes only packviz's names: the manifest, ``shard-NNNNNN.<format>``, the
trained ``tokenizer.json`` the manifest lists, the work folder and temporary names.

``manifest.json`` is written last, atomically, and holds no times or worker counts:
the same inputs and settings give the same manifest bytes.

Example:
    >>> old = {"settings": {"max_len": 2048}, "inputs": [{"path": "/a", "sha256": "1"}]}
    >>> new = {"settings": {"max_len": 4096}, "inputs": [{"path": "/a", "sha256": "1"}]}
    >>> difference(old, new)
    'setting max_len was 2048, now 4096'
    >>> is_manifest({"manifest_format": "packviz pack", "manifest_version": 2, "shards": []})
    True
    >>> is_manifest({"name": "my notes"}), own_name("shard-000012.npz"), own_name("notes.txt")
    (False, True, False)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from packviz.pipeline import files as _files
from packviz.pipeline.files import TMP_MARK, read_json, sha256_file
from packviz.pipeline.lock import LOCK_FILE

MANIFEST = "manifest.json"
WORK = ".packviz-work"
TOKENIZER_FILE = "tokenizer.json"
#: What a packviz manifest says it is, and its layout version (bump when its meaning
#: changes; version 1 had no ``manifest_format`` and is still recognized).
MANIFEST_FORMAT = "packviz pack"
MANIFEST_VERSION = 2
#: Bumped whenever the output bytes or the meaning of the work files change: it is part
#: of a job's identity, so no run reuses token store parts, shards or a finished output
#: made under another format (1: the first release; 2: trained targets per shard, the
#: train-vocab sample cut at its size, fine-tuning records).
PACK_FORMAT = 2
_SHARD = re.compile(r"shard-\d{6}\.(parquet|npz|pt)")


class JobChanged(ValueError):
    """The output folder holds another job's output (changed inputs or settings)."""


def difference(old: dict, new: dict) -> str | None:
    """The first way two identities differ, in words (None when they are the same)."""
    for key, what in (("pack_format", "packviz output format"), ("packviz_version", "packviz")):
        if old.get(key) != new.get(key):
            return f"it was made by {what} {old.get(key)}, this is {new.get(key)}"
    for key in sorted(set(old.get("settings", {})) | set(new.get("settings", {}))):
        a, b = old.get("settings", {}).get(key), new.get("settings", {}).get(key)
        if a != b:
            return f"setting {key} was {a!r}, now {b!r}"
    was = {f["path"]: f for f in old.get("inputs", [])}
    now = {f["path"]: f for f in new.get("inputs", [])}
    for path in now:
        if path not in was:
            return f"input {path} was not part of it"
        if [was[path].get(k) for k in ("size", "sha256")] != [
            now[path][k] for k in ("size", "sha256")
        ]:
            return f"input {path} changed since (size or sha256)"
    for path in was:
        if path not in now:
            return f"input {path} is no longer given"
    if list(was) != list(now):
        return "the inputs are given in another order"
    return None


def is_manifest(obj) -> bool:
    """Whether ``obj`` (parsed ``manifest.json``) is a packviz manifest."""
    if not isinstance(obj, dict) or not isinstance(obj.get("shards"), list):
        return False
    if obj.get("manifest_format") != MANIFEST_FORMAT and not (
        obj.get("manifest_version") == 1 and isinstance(obj.get("packviz_version"), str)
    ):
        return False
    return all(isinstance(s, dict) and own_name(str(s.get("file"))) for s in obj["shards"])


def own_name(name: str) -> bool:
    """Whether packviz writes files of this name in an output folder (shards and the
    manifest; temporary names of them too)."""
    base = name.split(TMP_MARK, 1)[0]
    return base == MANIFEST or _SHARD.fullmatch(base) is not None


def _own_tokenizer(out: Path, manifest) -> bool:
    """``out/tokenizer.json`` is packviz's: listed by the manifest, or the work folder's
    trained tokenizer (a run killed before its manifest)."""
    path = out / TOKENIZER_FILE
    if is_manifest(manifest) and (manifest.get("tokenizer") or {}).get("file") == TOKENIZER_FILE:
        return True
    trained = out / WORK / TOKENIZER_FILE
    return trained.is_file() and path.is_file() and sha256_file(trained) == sha256_file(path)


def foreign_entries(out: Path) -> list[str]:
    """Names in ``out`` that packviz did not write (sorted)."""
    manifest = read_json(out / MANIFEST)
    bad = []
    for p in sorted(out.iterdir()):
        name, base = p.name, p.name.split(TMP_MARK, 1)[0]
        plain = p.is_file() and not p.is_symlink()
        if name == WORK:
            ok = p.is_dir() and not p.is_symlink()
        elif name == MANIFEST:
            ok = plain and is_manifest(manifest)
        elif base == TOKENIZER_FILE:
            ok = plain and (base != name or _own_tokenizer(out, manifest))
        else:
            ok = plain and own_name(name)
        if not ok:
            bad.append(name)
    return bad


def prepare_out_dir(out: Path) -> None:
    """Check that ``out`` is new, empty or packviz output holding nothing else; create
    it and its work folder. Raises ValueError otherwise (nothing is written then)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        keep = "choose an empty or new folder (nothing there is deleted or overwritten)"
        if not (is_manifest(read_json(out / MANIFEST)) or (out / WORK).is_dir()):
            raise ValueError(f"--out {out} is not empty and holds no packviz output; {keep}")
        foreign = foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise ValueError(f"--out {out} holds files packviz did not write ({shown}); {keep}")
    try:
        (out / WORK).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create {out / WORK}: {exc.strerror or exc}") from None


def clear_work(work: Path) -> None:
    """Empty the work folder, except the lock of the run that holds it."""
    if not work.is_dir():
        return
    for p in work.iterdir():
        if p.name == LOCK_FILE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def remove_temporaries(out: Path) -> None:
    """Delete what a killed run left half-written: packviz's temporary names in ``out``
    and anything temporary in its work folder. Nothing else."""
    if out.is_dir():
        for p in out.iterdir():
            if (
                TMP_MARK in p.name
                and p.is_file()
                and (own_name(p.name) or p.name.startswith(TOKENIZER_FILE + TMP_MARK))
            ):
                p.unlink(missing_ok=True)
    _files.remove_temporaries(out / WORK)


def check_identity(out: Path, identity: dict, *, overwrite: bool) -> dict | None:
    """Compare with what ``out`` holds. Returns the finished manifest when this very job
    is already complete (and its shards still match it); clears the folder when
    ``overwrite`` and it differs; raises `JobChanged` when it differs otherwise."""
    manifest = read_json(out / MANIFEST)
    manifest = manifest if is_manifest(manifest) else None
    saved = manifest if manifest is not None else read_json(out / WORK / "job.json")
    if isinstance(saved, dict):
        changed = difference(saved, identity)
        if changed is not None:
            if not overwrite:
                raise JobChanged(
                    f"{out} holds the output of another job ({changed}); run with "
                    "--overwrite to replace it, or choose another --out"
                )
            clear(out, manifest)
        elif manifest is not None:
            if not broken_shards(out, manifest):
                return manifest
            (out / MANIFEST).unlink()  # a shard was lost or damaged: make it again
    return None


def broken_shards(out: Path, manifest: dict) -> list[str]:
    """Shards listed in ``manifest`` that are missing or no longer match their sha256."""
    bad = []
    for s in manifest.get("shards", []):
        path = out / s["file"]
        if not path.is_file() or path.stat().st_size != s["bytes"]:
            bad.append(s["file"])
        elif sha256_file(path) != s["sha256"]:
            bad.append(s["file"])
    return bad


def clear(out: Path, manifest: dict | None) -> None:
    """Delete a packviz job's files from ``out``: its manifest, shards, trained tokenizer
    and work (not the lock). Nothing else."""
    own_tokenizer = _own_tokenizer(out, manifest)
    for p in out.iterdir():
        if own_name(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
    if own_tokenizer:
        (out / TOKENIZER_FILE).unlink(missing_ok=True)
    clear_work(out / WORK)


def build_manifest(
    identity: dict,
    *,
    tokenizer: dict,
    pad_id: int,
    corpus: dict,
    stats: dict,
    shards: list[dict],
) -> dict:
    return {
        "manifest_format": MANIFEST_FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "packviz_version": identity["packviz_version"],
        "pack_format": identity["pack_format"],
        "settings": identity["settings"],
        "inputs": identity["inputs"],
        "tokenizer": tokenizer,
        "pad_id": pad_id,
        "corpus": corpus,
        "stats": stats,
        "shards": shards,
    }
