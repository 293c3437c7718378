"""Which files make up a corpus, what each holds, and how the corpus is cut into parts.

Inputs are files, folders (searched recursively) and glob patterns, expanded in a fixed
order: the arguments as given, each folder or pattern sorted by path. Kinds by suffix:

- ``.parquet``: a text column (``--text-field``), or pre-tokenized: an ``input_ids``
  list column (used as is, no tokenizer, no end-of-text added) with an optional
  ``trained`` list<bool> column (per-token training targets, as `packviz.TokenIds`);
- ``.jsonl`` / ``.jsonl.gz``: one JSON object per line, text in ``--text-field``;
- ``.txt`` / ``.md``: split into documents by ``--split`` (as in the dashboard);
- ``.csv``: a text column.

Why parts. A *part* is the unit of parallel work and of resumption: a few row groups of
a parquet file, a byte range of a JSONL file, or a run of small whole files, about
`PART_BYTES` of input each. Parts depend only on the files — never on ``--workers`` or
the engine — so the token store, the plan and every output byte are the same however the
work is spread. Document numbers (``doc_ids``) count records in this order: parts, then
records inside a part.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "b.jsonl").write_text('{"text": "x"}\\n')
    >>> _ = (d / "a.txt").write_text("one\\n\\ntwo")
    >>> [(pathlib.Path(f.path).name, f.kind) for f in find_inputs([str(d)])]
    [('a.txt', 'text'), ('b.jsonl', 'jsonl')]
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packviz._args import as_list
from packviz.corpus import CorpusError

Kind = Literal["parquet", "tokens", "jsonl", "jsonl.gz", "text", "csv"]
#: Suffix -> kind ("parquet" becomes "tokens" when the file has an input_ids column).
SUFFIX_KINDS: dict[str, Kind] = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl.gz",
    ".txt": "text",
    ".md": "text",
    ".csv": "csv",
}
#: Input bytes per part (uncompressed column bytes for parquet): the corpus over
#: `TARGET_PARTS`, within [`MIN_PART_BYTES`, `PART_BYTES`], so that small corpora still
#: spread over many workers; ``$PACKVIZ_PART_BYTES`` fixes it (tests, tuning). Parts never
#: change the output, only how the work is spread.
PART_BYTES = 32 << 20
MIN_PART_BYTES = 1 << 20
TARGET_PARTS = 256
#: Pre-tokenized bytes weigh this much less than text: reading ids is far cheaper than
#: tokenizing, and a part that splits a row group decodes the group up to its rows.
TOKENS_WEIGHT = 16
#: Column of pre-tokenized parquet files, and their optional per-token trained flags.
IDS_COLUMN, TRAINED_COLUMN = "input_ids", "trained"


@dataclass(frozen=True)
class InputFile:
    """One input file: absolute path, kind, size in bytes, and (parquet) its row groups'
    (rows, column bytes)."""

    path: str
    kind: Kind
    size: int
    row_groups: tuple[tuple[int, int], ...] = ()
    has_trained: bool = False
    #: The columns of a parquet file of fine-tuning records (read as records).
    record_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Part:
    """Segments ``(input index, lo, hi)`` read in order: parquet rows [lo, hi), JSONL
    bytes [lo, hi) (lines starting there), or a whole file (0, size)."""

    index: int
    segments: tuple[tuple[int, int, int], ...]


def kind_of(path: str) -> Kind | None:
    name = path.lower()
    for suffix in sorted(SUFFIX_KINDS, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIX_KINDS[suffix]
    return None


def _expand(spec: str, exclude: str | None = None) -> list[str]:
    """Paths for one argument: a file, a folder (recursive) or a glob pattern; never a
    hidden file (a name starting with ".", below a folder given) nor anything under
    ``exclude`` (the output folder: its shards are not inputs)."""

    def wanted(p: str) -> bool:
        return exclude is None or not _under(p, exclude)

    path = Path(spec).expanduser()
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and kind_of(p.name)]
        found = [
            str(p) for p in found if not any(s.startswith(".") for s in p.relative_to(path).parts)
        ]
        found = [p for p in found if wanted(p)]
        if not found:
            raise CorpusError(f"{spec}: no corpus files in this folder ({_kinds_text()})")
        return sorted(found)
    if path.is_file():
        if kind_of(path.name) is None:
            raise CorpusError(f"{spec}: unsupported file type; use {_kinds_text()}")
        if not wanted(str(path)):
            raise CorpusError(f"{spec} is inside the output folder {exclude}; it is not an input")
        return [str(path)]
    if glob.has_magic(spec):
        found = sorted(p for p in glob.glob(os.path.expanduser(spec), recursive=True))
        found = [p for p in found if Path(p).is_file() and kind_of(p) and wanted(p)]
        if not found:
            raise CorpusError(f"{spec}: no corpus files match this pattern ({_kinds_text()})")
        return found
    raise CorpusError(f"{spec}: no such file or folder")


def _under(path: str, folder: str) -> bool:
    real = os.path.realpath(path)
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def _kinds_text() -> str:
    return ", ".join(SUFFIX_KINDS)


def input_specs(specs: object) -> list[str]:
    """``specs`` (one path or glob, or a list of them) as a list of strings; anything else
    is a TypeError saying what to pass.

    >>> input_specs("data/*.jsonl"), input_specs([Path("a.txt"), "b/"])
    (['data/*.jsonl'], ['a.txt', 'b/'])
    """
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    specs = as_list("inputs", specs, "files, folders or globs")
    return [check_path("an input", spec) for spec in specs]


def check_paths(out: object, **optional: object) -> None:
    """``out`` and every optional path or name that is not None (``tokenizer``,
    ``chat_template``, ``text_field``) is a string or os.PathLike (`check_path`)."""
    check_path("out", out)
    for name, value in optional.items():
        if value is not None:
            check_path(name, value)


def check_path(name: str, value: object) -> str:
    """``value`` as a string when it is a path or name (a str or os.PathLike); else a
    TypeError naming ``name``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path or name (a string), got {value!r:.60}")
    return os.fspath(value)


def find_inputs(
    specs,
    *,
    text_field: str = "text",
    exclude: str | os.PathLike | None = None,
    records: bool = False,
) -> list[InputFile]:
    """The corpus files named by ``specs``, in order, with their kind (and parquet layout);
    folders and globs skip everything under ``exclude`` (the output folder). With
    ``records``, parquet files are read as fine-tuning records (their record columns).

    Raises `CorpusError` for a missing path, an unsupported file, a file listed twice, a
    parquet file without the text column, or a corpus that mixes pre-tokenized parquet
    with text (one needs a tokenizer, the other must not be re-tokenized).
    """
    specs = input_specs(specs)
    paths: list[str] = []
    seen: dict[str, str] = {}
    exclude = None if exclude is None else os.path.realpath(exclude)
    for spec in specs:
        for p in _expand(spec, exclude):
            real = os.path.realpath(p)
            if real in seen:
                raise CorpusError(f"{p} is listed twice (also as {seen[real]}); list it once")
            seen[real] = p
            paths.append(real)
    if not paths:
        raise CorpusError("no input files given")
    files = [_describe(p, text_field, records) for p in paths]
    tokens = [f for f in files if f.kind == "tokens"]
    if tokens and len(tokens) < len(files):
        text = next(f for f in files if f.kind != "tokens")
        raise CorpusError(
            f"mixed inputs: {tokens[0].path} is pre-tokenized (an {IDS_COLUMN!r} column) but "
            f"{text.path} holds text; pack them in separate runs"
        )
    return files


def _describe(path: str, text_field: str, records: bool = False) -> InputFile:
    kind = kind_of(path)
    try:
        size = os.path.getsize(path)
        if not os.access(path, os.R_OK):
            raise PermissionError(13, "permission denied")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if kind != "parquet":
        return InputFile(path, kind, size)
    return _describe_parquet(path, size, text_field, records)


def _describe_parquet(path: str, size: int, text_field: str, records: bool) -> InputFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{path} is not a readable Parquet file ({exc})") from None
    names = schema.names
    record_columns: tuple[str, ...] = ()
    if IDS_COLUMN in names:
        columns, kind = [IDS_COLUMN], "tokens"
        t = schema.field(IDS_COLUMN).type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_integer(
            t.value_type
        ):
            raise CorpusError(f"{path}: column {IDS_COLUMN!r} is {t}, not a list of integers")
        has_trained = TRAINED_COLUMN in names
        if has_trained:
            t = schema.field(TRAINED_COLUMN).type
            if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_boolean(
                t.value_type
            ):
                raise CorpusError(f"{path}: column {TRAINED_COLUMN!r} is {t}, not a list of bool")
    elif records:
        from packviz.pipeline.records import RECORD_COLUMNS

        record_columns = tuple(c for c in RECORD_COLUMNS if c in names)
        columns, kind, has_trained = list(record_columns), "parquet", False
        if not columns:
            shown = ", ".join(map(repr, names[:10])) or "none"
            raise CorpusError(
                f"{path} has no column of fine-tuning records: it needs 'messages', or "
                f"'prompt' and 'completion', or 'text' (its columns: {shown})"
            )
    elif text_field in names:
        columns, kind, has_trained = [text_field], "parquet", False
        t = schema.field(text_field).type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise CorpusError(f"{path}: column {text_field!r} is {t}, not text")
    else:
        shown = ", ".join(map(repr, names[:10])) or "none"
        raise CorpusError(
            f"{path} has no column {text_field!r} (its columns: {shown}); pass --text-field "
            f"NAME, or give pre-tokenized files an {IDS_COLUMN!r} column"
        )
    groups = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        # leaf columns of a nested column follow its position; sum those of our columns
        nbytes = sum(
            rg.column(c).total_uncompressed_size
            for c in range(rg.num_columns)
            if rg.column(c).path_in_schema.split(".")[0] in columns
        )
        groups.append((rg.num_rows, nbytes))
    return InputFile(path, kind, size, tuple(groups), has_trained, record_columns)


def make_parts(files: list[InputFile], part_bytes: int | None = None) -> list[Part]:
    """Cut the corpus into parts of about ``part_bytes``: big units are split (parquet
    row groups by rows, JSONL by byte ranges), small ones grouped in order."""
    if part_bytes is None and os.environ.get("PACKVIZ_PART_BYTES"):
        part_bytes = int(os.environ["PACKVIZ_PART_BYTES"])
    if part_bytes is None:
        total = sum(f.size // (TOKENS_WEIGHT if f.kind == "tokens" else 1) for f in files)
        part_bytes = min(PART_BYTES, max(MIN_PART_BYTES, -(-total // TARGET_PARTS)))
    units: list[tuple[tuple[int, int, int], int]] = []  # (segment, weight)
    for i, f in enumerate(files):
        if f.kind in ("parquet", "tokens"):
            row = 0
            for rows, nbytes in f.row_groups:
                nbytes = nbytes // TOKENS_WEIGHT if f.kind == "tokens" else nbytes
                k = max(1, -(-nbytes // part_bytes))
                cuts = [row + rows * j // k for j in range(k + 1)]
                units += [
                    ((i, a, b), nbytes // k)
                    for a, b in zip(cuts[:-1], cuts[1:], strict=True)
                    if b > a
                ]
                row += rows
        elif f.kind == "jsonl" and f.size > part_bytes:
            units += [
                ((i, lo, min(lo + part_bytes, f.size)), part_bytes)
                for lo in range(0, f.size, part_bytes)
            ]
        else:
            units.append(((i, 0, f.size), f.size))
    parts: list[Part] = []
    current: list[tuple[int, int, int]] = []
    weight = 0
    for segment, w in units:
        if current and weight + w > part_bytes:
            parts.append(Part(len(parts), tuple(current)))
            current, weight = [], 0
        current.append(segment)
        weight += w
    if current:
        parts.append(Part(len(parts), tuple(current)))
    return parts
