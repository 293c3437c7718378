"""Documents: built-in corpora, user files, and synthetic lengths.

Built-in corpora need no download: the Python documentation topics shipped in the
standard library's ``pydoc_data`` (about 80 documents of real prose, heavy-tailed
lengths) and the standard library's own top-level source files (real code, a few MB).
Both differ between Python versions, so nothing should depend on exact counts.

User files are parsed here with messages a person can act on: an empty, binary or
non-UTF-8 file, a JSONL line that is not JSON or lacks the text field, a CSV without the
column. Nothing is unpickled or executed. Every error is a `CorpusError` (a ValueError).

Example:
    >>> split_text("One. Two!\\n\\nThree?", "sentence")
    ['One.', 'Two!', 'Three?']
    >>> read_documents("notes.jsonl", b'{"text": "a"}\\n{"text": "b c"}\\n')
    ['a', 'b c']
"""

from __future__ import annotations

import csv
import io
import json
import re
import sysconfig
from pathlib import Path

import numpy as np

from packviz.choices import DISTRIBUTIONS, SPLITS, Distribution, Split, check_choice

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
RECORD_SUFFIXES: tuple[str, ...] = (".jsonl", ".csv", ".parquet")
SUFFIXES: tuple[str, ...] = TEXT_SUFFIXES + RECORD_SUFFIXES
#: Largest synthetic corpus (documents).
MAX_SYNTHETIC_DOCS = 50_000_000

BUILTIN_CORPORA: dict[str, str] = {
    "python-docs": "Python documentation topics (pydoc_data): ~80 documents of prose",
    "python-stdlib": "Python standard library source files: ~170 modules of code",
}


class CorpusError(ValueError):
    """A user file or corpus request that cannot be turned into documents."""


def load_builtin(name: str) -> list[str]:
    """Documents of a built-in corpus (see `BUILTIN_CORPORA`)."""
    check_choice("corpus", name, tuple(BUILTIN_CORPORA), error=CorpusError)
    if name == "python-docs":
        from pydoc_data.topics import topics

        return [topics[k] for k in sorted(topics) if topics[k].strip()]
    if name == "python-stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        files = sorted(root.glob("*.py"))
        docs = [f.read_text(encoding="utf-8", errors="replace") for f in files]
        return [d for d in docs if d.strip()]
    raise AssertionError(name)


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")


def split_text(text: str, by: Split = "paragraph") -> list[str]:
    """Split text into documents: whole ``file``, blank-line ``paragraph``, ``line``, or
    ``sentence`` (after . ! ?, as in the tutorial). Empty pieces are dropped."""
    check_choice("split", by, SPLITS, error=CorpusError)
    if by == "file":
        parts = [text]
    elif by == "paragraph":
        parts = _PARAGRAPH.split(text)
    elif by == "line":
        parts = text.splitlines()
    else:
        parts = _SENTENCE.split(text)
    return [p.strip() for p in parts if p.strip()]


def decode_text(filename: str, data: bytes) -> str:
    """UTF-8 text of an upload, or a CorpusError saying what is wrong with it."""
    if not data:
        raise CorpusError(f"{filename} is empty: upload a file with some text in it")
    if b"\x00" in data[:8192]:
        raise CorpusError(
            f"{filename} looks like a binary file (it contains NUL bytes); "
            "upload plain text (.txt, .md), .jsonl, .csv or .parquet"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{filename} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position "
            f"{exc.start}); re-save it as UTF-8"
        ) from None
    if not text.strip():
        raise CorpusError(f"{filename} holds only whitespace: upload a file with some text")
    return text


def _field_text(value, where: str, field: str) -> str:
    if not isinstance(value, str):
        raise CorpusError(f"{where}: field {field!r} is {type(value).__name__}, not text")
    return value


def _read_jsonl(filename: str, text: str, field: str) -> list[str]:
    docs = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(
                f"{filename} line {n} is not valid JSON ({exc.msg}); each line must be one "
                "JSON object"
            ) from None
        if not isinstance(record, dict):
            raise CorpusError(f"{filename} line {n} is not a JSON object")
        if field not in record:
            keys = ", ".join(map(repr, list(record)[:10])) or "none"
            raise CorpusError(
                f"{filename} line {n} has no field {field!r} (its fields: {keys}); "
                "choose the text field"
            )
        docs.append(_field_text(record[field], f"{filename} line {n}", field))
    return docs


def _read_csv(filename: str, text: str, field: str) -> list[str]:
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # one long document is still a field
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        if field not in columns:
            shown = ", ".join(map(repr, columns[:10])) or "none"
            raise CorpusError(
                f"{filename} has no column {field!r} (its columns: {shown}); choose the text column"
            )
        return [row[field] or "" for row in reader]
    except csv.Error as exc:
        raise CorpusError(f"{filename} is not valid CSV: {exc}") from None
    finally:
        csv.field_size_limit(limit)


def _read_parquet(filename: str, data: bytes, field: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(pa.BufferReader(data)).names
        if field not in names:
            shown = ", ".join(map(repr, names[:10])) or "none"
            raise CorpusError(
                f"{filename} has no column {field!r} (its columns: {shown}); choose the text column"
            )
        col = pq.read_table(pa.BufferReader(data), columns=[field]).column(field)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{filename} is not a readable Parquet file: {exc}") from None
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise CorpusError(f"{filename}: column {field!r} is {col.type}, not text")
    return [v if v is not None else "" for v in col.to_pylist()]


def read_documents(
    filename: str, data: bytes, *, split: Split = "paragraph", text_field: str = "text"
) -> list[str]:
    """Documents from one uploaded file, chosen by its suffix.

    ``.txt``/``.md`` are split by ``split`` (see `split_text`); each ``.jsonl`` line,
    ``.csv`` row or ``.parquet`` row is one document, taken from ``text_field``.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(
            f"{filename}: unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}"
        )
    check_choice("split", split, SPLITS, error=CorpusError)
    if suffix == ".parquet":
        if not data:
            raise CorpusError(f"{filename} is empty: upload a file with some text in it")
        docs = _read_parquet(filename, data, text_field)
    else:
        text = decode_text(filename, data)
        if suffix == ".jsonl":
            docs = _read_jsonl(filename, text, text_field)
        elif suffix == ".csv":
            docs = _read_csv(filename, text, text_field)
        else:
            docs = split_text(text, split)
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise CorpusError(f"{filename} has no non-empty documents")
    return docs


def synthetic_lengths(
    n: int,
    *,
    median: float = 300,
    sigma: float = 1.0,
    max_length: int = 32768,
    distribution: Distribution = "lognormal",
    seed: int = 0,
) -> np.ndarray:
    """Seeded document lengths (int64, clipped to [1, max_length]) for exploring scale.

    ``lognormal`` (median, sigma) is the benchmark workload; ``exponential`` has the given
    median; ``uniform`` spans [1, 2 * median]; ``constant`` is ``median`` everywhere.

    >>> synthetic_lengths(5, seed=0).tolist()
    [340, 262, 569, 333, 175]
    """
    if (
        isinstance(n, bool)
        or not isinstance(n, (int, np.integer))
        or not 1 <= n <= MAX_SYNTHETIC_DOCS
    ):
        raise CorpusError(f"number of documents must be between 1 and {MAX_SYNTHETIC_DOCS:,}")
    if not median >= 1 or not max_length >= 1 or not sigma >= 0:
        raise CorpusError("median and max_length must be at least 1, sigma non-negative")
    check_choice("distribution", distribution, DISTRIBUTIONS, error=CorpusError)
    rng = np.random.default_rng(seed)
    if distribution == "lognormal":
        x = rng.lognormal(np.log(median), sigma, n)
    elif distribution == "exponential":
        x = rng.exponential(median / np.log(2), n)
    elif distribution == "uniform":
        x = rng.uniform(1, 2 * median + 1, n)
    else:
        x = np.full(n, float(median))
    return np.clip(x, 1, max_length).astype(np.int64)
