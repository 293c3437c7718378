"""What a corpus job is (its identity) and what it produced (``manifest.json``).

The *identity* of a job is every setting that changes an output byte plus each input
file's path, size and sha256 (worker count, engine and memory budget are not part of
it: they never change the output). It is kept in the work folder while the job runs and
in the manifest when it is done, so running the same command again resumes or reports
"already complete", while a changed input or setting is refused — unless ``overwrite``,
which deletes the earlier job's files (only those: a folder that holds anything else is
never written into).

``manifest.json`` is written last, atomically, and holds no times or worker counts:
the same inputs and settings give the same manifest bytes.

Example:
    >>> old = {"settings": {"max_len": 2048}, "inputs": [{"path": "/a", "sha256": "1"}]}
    >>> new = {"settings": {"max_len": 4096}, "inputs": [{"path": "/a", "sha256": "1"}]}
    >>> difference(old, new)
    'setting max_len was 2048, now 4096'
"""

from __future__ import annotations

import shutil
from pathlib import Path

from packviz.pipeline.files import read_json, sha256_file

MANIFEST = "manifest.json"
WORK = ".packviz-work"
TOKENIZER_FILE = "tokenizer.json"
#: Manifest layout version (bump when its meaning changes).
MANIFEST_VERSION = 1


class JobChanged(ValueError):
    """The output folder holds another job's output (changed inputs or settings)."""


def difference(old: dict, new: dict) -> str | None:
    """The first way two identities differ, in words (None when they are the same)."""
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


def prepare_out_dir(out: Path) -> None:
    """Create ``out``, or check that it is empty or a packviz output folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / MANIFEST).is_file() or (out / WORK).is_dir()):
            raise ValueError(
                f"--out {out} is not empty and holds no packviz output; choose an empty or "
                "new folder (nothing there is deleted or overwritten)"
            )
    try:
        (out / WORK).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create {out / WORK}: {exc.strerror or exc}") from None


def check_identity(out: Path, identity: dict, *, overwrite: bool) -> dict | None:
    """Compare with what ``out`` holds. Returns the finished manifest when this very job
    is already complete (and its shards still match it); clears the folder when
    ``overwrite`` and it differs; raises `JobChanged` when it differs otherwise."""
    manifest = read_json(out / MANIFEST)
    saved = manifest if isinstance(manifest, dict) else read_json(out / WORK / "job.json")
    if isinstance(saved, dict):
        changed = difference(saved, identity)
        if changed is not None:
            if not overwrite:
                raise JobChanged(
                    f"{out} holds the output of another job ({changed}); run with "
                    "--overwrite to replace it, or choose another --out"
                )
            clear(out, manifest if isinstance(manifest, dict) else None)
        elif isinstance(manifest, dict):
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
    """Delete a packviz job's files from ``out``: its manifest, shards, tokenizer and work
    folder. Nothing else."""
    (out / MANIFEST).unlink(missing_ok=True)
    names = {s["file"] for s in (manifest or {}).get("shards", [])}
    for pattern in ("shard-*.parquet", "shard-*.npz", "shard-*.pt"):
        names |= {p.name for p in out.glob(pattern)}
    for name in names:
        (out / name).unlink(missing_ok=True)
    (out / TOKENIZER_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / WORK, ignore_errors=True)
    (out / WORK).mkdir(parents=True, exist_ok=True)


def build_manifest(
    identity: dict,
    *,
    tokenizer: dict,
    pad_id: int,
    corpus: dict,
    stats: dict,
    shards: list[dict],
) -> dict:
    from packviz import __version__

    return {
        "manifest_version": MANIFEST_VERSION,
        "packviz_version": __version__,
        "settings": identity["settings"],
        "inputs": identity["inputs"],
        "tokenizer": tokenizer,
        "pad_id": pad_id,
        "corpus": corpus,
        "stats": stats,
        "shards": shards,
    }
