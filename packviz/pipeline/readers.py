"""Read one part of a corpus in bounded batches: documents (text) or token ids.

Each reader streams its segment in batches of about ``batch_bytes`` of input, so a
worker's memory follows the batch, never the file. JSONL goes through pyarrow's JSON
parser (C++, no Python per field); when a batch fails there, it is parsed again line by
line in Python only to say exactly what is wrong and where (file and line). Text files
are split like the dashboard splits them (`packviz.corpus.split_text`), so a command
copied from the dashboard sees the same documents.

A record's text follows the library's one rule (`packviz.files.record_text`, the
dashboard's): a missing field is an error naming the file and line (or row); a null,
empty or whitespace-only text is kept as an *empty document* (length 0, not tokenized),
so document numbers stay record numbers and the plan skips it (counted in
``n_empty_docs``). JSONL lines the fast parser cannot take (nulls, a missing field, bad
JSON) and CSV files are read by the library's own readers (`packviz.files`).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.jsonl"
    >>> _ = p.write_text('{"text": "a b"}\\n\\n{"text": " "}\\n')
    >>> from packviz.pipeline.inputs import InputFile
    >>> f = InputFile(str(p), "jsonl", p.stat().st_size)
    >>> [list(b) for b in read_segment(f, 0, f.size, text_field="text")]
    [['a b', '']]
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from packviz.corpus import _PARAGRAPH, _SENTENCE, CorpusError, split_text
from packviz.files import Record, _read_jsonl, read_records, record_text
from packviz.pipeline.inputs import IDS_COLUMN, TRAINED_COLUMN, InputFile

#: Largest .txt/.md file read whole (bigger: convert it to JSONL, one document a line).
MAX_TEXT_FILE_BYTES = 1 << 30


@dataclass(frozen=True)
class TokenBatch:
    """Pre-tokenized documents: flat ids, one length per document, optional flags."""

    values: np.ndarray
    lengths: np.ndarray
    trained: np.ndarray | None


def read_segment(
    f: InputFile,
    lo: int,
    hi: int,
    *,
    text_field: str,
    split: str = "paragraph",
    batch_bytes: int = 4 << 20,
    records: bool = False,
) -> Iterator[list[str] | list[Record] | TokenBatch]:
    """Batches of one segment of ``f``: lists of documents, `TokenBatch` for
    pre-tokenized parquet, or (``records``) lists of `packviz.files.Record` s, the
    fine-tuning records. Errors are `CorpusError` naming the file (and line or row); a
    record's ``where`` may hold a line mark that `name_lines` turns into its line."""
    if f.kind in ("parquet", "tokens"):
        yield from _parquet(f, lo, hi, text_field, batch_bytes, records)
    elif f.kind == "jsonl":
        for start, chunk in _jsonl_range(f.path, lo, hi, batch_bytes):
            if records:  # the line number is looked up only if a record is reported
                yield jsonl_records(
                    chunk, f"{f.path}{_MARK}{start}{_MARK}", 0, file_start=start == 0
                )
            else:
                yield _parse_jsonl(
                    chunk, text_field, f.path, lambda s=start: _line_number(f.path, s)
                )
    elif f.kind == "jsonl.gz":
        for line, chunk in _jsonl_gz(f.path, batch_bytes):
            if records:
                yield jsonl_records(chunk, f.path, line)
            else:
                yield _parse_jsonl(chunk, text_field, f.path, lambda n=line: n)
    elif f.kind == "csv":
        yield from _csv(f, text_field, batch_bytes, records)
    else:
        yield from _text(f, split, batch_bytes)


#: Marks the byte offset of a JSONL block in its records' ``where`` ("PATH\0OFFSET\0
#: line K"): counting the lines before a block costs a read of the file up to it, so it
#: is done only when a record is reported (`name_lines`).
_MARK = "\x00"


def name_lines(exc: Exception, path: str) -> Exception:
    """``exc`` again with the marked names of records of ``path``
    (``PATH\\0OFFSET\\0 line K``) turned into line numbers; ``exc`` itself when it has
    none."""
    message = str(exc)
    marked = re.compile(re.escape(path) + "\x00(\\d+)\x00 line (\\d+)")
    if marked.search(message) is None:
        return exc
    fixed = marked.sub(
        lambda m: f"{path} line {_line_number(path, int(m[1])) + int(m[2])}", message
    )
    return type(exc)(fixed)


def _blank_to_empty(docs: list) -> list[str]:
    """`packviz.files.record_text`'s rule for values already known to be text (a column
    that pyarrow parsed as strings, without nulls): blank is the empty document."""
    return [d if d.strip() else "" for d in docs]


# ----------------------------------------------------------------------------- JSONL


def _parse_jsonl(data: bytes, field: str, path: str, first_line) -> list[str]:
    """Texts of a block of whole lines; ``first_line()`` gives the line number of its
    first line (computed only when the fast path cannot take the block)."""
    import pyarrow as pa
    import pyarrow.json as pj

    if not data.strip():
        return []
    try:
        table = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pj.ParseOptions(
                explicit_schema=pa.schema([(field, pa.string())]),
                unexpected_field_behavior="ignore",
            ),
        )
        column = table.column(field)
        if column.null_count == 0:
            return _blank_to_empty(column.to_pylist())
    except (pa.ArrowException, UnicodeDecodeError):
        pass
    # nulls (a null or a missing field) or a problem: the library's own reading, line by
    # line, says which record it is and reads it exactly as the dashboard does
    return [record_text(r, field) for r in jsonl_records(data, path, first_line())]


def jsonl_records(
    data: bytes, path: str, line0: int, *, file_start: bool | None = None
) -> list[Record]:
    """The records of a block of whole JSONL lines starting at line ``line0``, read by
    `packviz.files` (the dashboard's reader): errors name the file and line.
    ``file_start``: the block opens the file (default: ``line0 == 1``), where a UTF-8
    byte-order mark is skipped as the library's reader skips it."""
    file_start = line0 == 1 if file_start is None else file_start
    try:
        text = data.decode("utf-8-sig" if file_start else "utf-8")
    except UnicodeDecodeError as exc:
        line = line0 + data.count(b"\n", 0, exc.start)
        raise CorpusError(
            f"{path} line {line} is not UTF-8 text; re-save the file as UTF-8"
        ) from None
    return _read_jsonl(path, text, first_line=line0)


def _jsonl_range(path: str, lo: int, hi: int, batch_bytes: int):
    """(offset, block) of the lines that *start* in bytes [lo, hi), in blocks of whole
    lines."""
    with _open(path) as fh:
        if lo > 0:
            fh.seek(lo - 1)
            fh.readline()  # the line under way at lo belongs to the part before
        pos = fh.tell()
        while pos < hi:
            chunk = fh.read(batch_bytes)
            if not chunk:
                break
            if not chunk.endswith(b"\n"):
                chunk += fh.readline()
            last = pos + len(chunk) > hi
            if last:  # keep the lines starting before hi
                cut = chunk.find(b"\n", hi - pos - 1)
                chunk = chunk if cut < 0 else chunk[: cut + 1]
            yield pos, chunk
            if last:
                break
            pos += len(chunk)


def _line_number(path: str, offset: int) -> int:
    """1-based number of the line starting at byte ``offset`` (error reports only)."""
    count, done = 1, 0
    with _open(path) as fh:
        while done < offset:
            block = fh.read(min(1 << 20, offset - done))
            if not block:
                break
            count += block.count(b"\n")
            done += len(block)
    return count


def _jsonl_gz(path: str, batch_bytes: int):
    """(first line, block) of whole lines."""
    line = 1
    try:
        with _open(path) as raw, gzip.GzipFile(fileobj=raw) as fh:
            while chunk := fh.read(batch_bytes):
                if not chunk.endswith(b"\n"):
                    chunk += fh.readline()
                yield line, chunk
                line += chunk.count(b"\n")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CorpusError(f"{path} is not a readable gzip file ({exc})") from None


def _open(path: str):
    try:
        return open(path, "rb")  # noqa: SIM115 - the callers close it
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from None


# ----------------------------------------------------------------------------- text, CSV


def _check_whole(f: InputFile, what: str) -> None:
    if f.size > MAX_TEXT_FILE_BYTES:
        raise CorpusError(
            f"{f.path} is {f.size / 2**30:.1f} GiB; {what} files are read whole, so above "
            f"{MAX_TEXT_FILE_BYTES >> 30} GiB convert it to JSONL (one document a line)"
        )


def _text(f: InputFile, split: str, batch_bytes: int):
    """Documents of a text file, split as `packviz.corpus.split_text` splits the whole
    text, read a block at a time: each block is cut after its last complete separator
    (`_cut`) and the rest carried into the next, which gives the same documents (tested
    on random texts and block sizes). ``--split file`` reads the file whole."""
    if split == "file":
        _check_whole(f, "whole")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    carry, done = "", 0
    with _open(f.path) as fh:
        while True:
            data = fh.read(batch_bytes if split != "file" else -1)
            if done == 0 and b"\x00" in data[:8192]:
                raise CorpusError(f"{f.path} looks like a binary file (it contains NUL bytes)")
            pending = len(decoder.getstate()[0])
            try:
                text = carry + decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                at = done - pending + exc.start
                raise CorpusError(
                    f"{f.path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                    f"position {at}); re-save it as UTF-8"
                ) from None
            done += len(data)
            cut = len(text) if not data or split == "file" else _cut(text, split)
            docs = split_text(text[:cut], split) if cut else []
            carry = text[cut:]
            if docs:
                yield docs
            if not data or split == "file":
                return


def _cut(text: str, split: str) -> int:
    """Where ``text`` may be cut without changing how it splits: after its last
    separator that has a non-separator character after it (so the separator is whole);
    0 when there is none yet."""
    if split == "line":
        return text.rfind("\n") + 1
    pattern = _PARAGRAPH if split == "paragraph" else _SENTENCE
    end = len(text.rstrip())  # a separator reaching into the trailing space may grow
    last = 0
    for m in pattern.finditer(text, 0, end):
        last = m.end()
    return last


def _csv(f: InputFile, field: str, batch_bytes: int, records: bool = False):
    """A CSV file, read whole by the library's reader (`packviz.files.read_records`), as
    the dashboard reads it; a file is one unit of work, at most `MAX_TEXT_FILE_BYTES`."""
    _check_whole(f, "CSV")
    with _open(f.path) as fh:
        data = fh.read()
    rows = read_records(f.path, data, columns=None)
    del data
    if rows and not records and field not in rows[0].fields:  # the header: say it once
        names = ", ".join(map(repr, rows[0].fields))
        raise CorpusError(
            f"{f.path} has no column {field!r} (its columns: {names}); pass --text-field NAME"
        )
    batch, size = [], 0
    for r in rows:
        item = r if records else record_text(r, field)
        batch.append(item)
        size += sum(len(v) for v in r.fields.values() if isinstance(v, str))
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# ----------------------------------------------------------------------------- parquet


def _parquet(f: InputFile, lo: int, hi: int, field: str, batch_bytes: int, records: bool):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [IDS_COLUMN] + ([TRAINED_COLUMN] if f.has_trained else [])
    if f.kind == "parquet":
        columns = list(f.record_columns) if records else [field]
    try:
        pf = pq.ParquetFile(f.path)
        first = 0
        for g, (rows, nbytes) in enumerate(f.row_groups):
            a, b = max(lo, first) - first, min(hi, first + rows) - first
            if a < b:
                per_batch = max(1, min(rows, batch_bytes * rows // max(nbytes, 1)))
                at = 0
                for batch in pf.iter_batches(per_batch, row_groups=[g], columns=columns):
                    n = batch.num_rows
                    s, e = max(a - at, 0), min(b - at, n)
                    if s < e:
                        part, row = batch.slice(s, e - s), first + at + s
                        if records:  # rows numbered from 1, as the library numbers them
                            yield [
                                Record(f"{f.path} row {row + k}", r)
                                for k, r in enumerate(part.to_pylist(), start=1)
                            ]
                        else:
                            yield _parquet_batch(f, part, row)
                    at += n
                    if at >= b:
                        break
            first += rows
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{f.path} is not a readable Parquet file ({exc})") from None


def _parquet_batch(f: InputFile, batch, row0: int):
    import pyarrow.compute as pc

    if f.kind == "parquet":
        return _blank_to_empty([t or "" for t in batch.column(0).to_pylist()])
    ids = batch.column(0)
    lengths = pc.fill_null(pc.list_value_length(ids), 0).to_numpy().astype(np.int64)
    values = ids.flatten().to_numpy()
    trained = None
    if f.has_trained:
        flags = batch.column(1)
        flag_lengths = pc.fill_null(pc.list_value_length(flags), 0).to_numpy()
        bad = np.flatnonzero(flag_lengths != lengths)
        if bad.size:
            r = row0 + int(bad[0])
            raise CorpusError(
                f"{f.path} row {r}: {TRAINED_COLUMN!r} has {int(flag_lengths[bad[0]])} flags "
                f"for {int(lengths[bad[0]])} token ids; give one flag per token"
            )
        trained = flags.flatten().to_numpy(zero_copy_only=False).astype(bool)
    if values.size and (values.min() < 0 or values.max() >= 2**31):
        at = int(np.flatnonzero((values < 0) | (values >= 2**31))[0])
        r = row0 + int(np.searchsorted(np.cumsum(lengths), at, side="right"))
        raise CorpusError(
            f"{f.path} row {r}: token id {values[at]} is outside [0, 2**31); "
            "pre-tokenized ids must be non-negative vocabulary indices"
        )
    return TokenBatch(values.astype(np.int32, copy=False), lengths, trained)
