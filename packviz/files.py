"""Reading the files people bring: plain text, and records in JSONL, CSV or Parquet.

Nothing here trusts its input. Every problem becomes a `CorpusError` that names the file
(and the line or row) and says what to do: an empty, binary or wrongly encoded file, a
JSONL line that is not one JSON object (or nests too deep, or holds a number too long to
read, or a lone surrogate), a CSV row with the wrong number of fields or an unclosed
quote, a missing field, a field that is not text. Nothing is unpickled or executed, and
no process-wide state is changed (CSV goes through pyarrow, whose limits are per call).

Record files keep one document per record, so document ``i`` is always record ``i``
(the dashboard and the fine-tuning records refer to them by position): a null or blank
text is the empty document "" (`record_text`); text files are split into documents by
`packviz.corpus.split_text`, which drops empty pieces.

Example:
    >>> read_documents("notes.jsonl", b'{"text": "a"}\\n{"text": "b c"}\\n')
    ['a', 'b c']
    >>> [r.where for r in read_records("t.csv", b'id,text\\n1,"x, y"\\n2,z\\n')]  # the lines in the file
    ['t.csv line 2', 't.csv line 3']
"""

from __future__ import annotations

import codecs
import io
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packviz._args import as_list
from packviz.choices import SPLITS, Split, check_choice
from packviz.corpus import CorpusError, split_text

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
RECORD_SUFFIXES: tuple[str, ...] = (".jsonl", ".csv", ".parquet")
SUFFIXES: tuple[str, ...] = TEXT_SUFFIXES + RECORD_SUFFIXES

#: Byte-order marks, longest first (a UTF-32 LE mark starts like a UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a JSONL, CSV or Parquet file: where it is, and its fields."""

    where: str
    fields: dict


def decode_text(filename: str, data: bytes) -> str:
    """The text of a file: UTF-8, or UTF-8/16/32 with a byte-order mark; else a
    CorpusError saying what the file is and how to re-save it."""
    if not data:
        raise CorpusError(f"{filename} is empty: upload a file with some text in it")
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), None)
    if encoding is None and b"\x00" in data[:8192]:
        head = data[:8192]
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > 0.4 * (len(head) / 2) and min(even, odd) < 0.05 * (len(head) / 2):
            order = "little" if odd > even else "big"
            raise CorpusError(
                f"{filename} looks like UTF-16 text ({order}-endian) without a byte-order "
                "mark; re-save it as UTF-8 (or as UTF-16 with a byte-order mark)"
            )
        raise CorpusError(
            f"{filename} looks like a binary file (it contains NUL bytes); "
            "upload plain text (.txt, .md), .jsonl, .csv or .parquet"
        )
    try:
        text = data.decode(encoding or "utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{filename} is not {encoding or 'UTF-8'} text (byte 0x{data[exc.start]:02x} at "
            f"position {exc.start}); re-save it as UTF-8"
        ) from None
    if not text.strip():
        raise CorpusError(f"{filename} holds only whitespace: upload a file with some text")
    return text


def record_text(record: Record, field: str) -> str:
    """The document text of a record: its ``field``, checked. A record without the field
    is an error, as is a value that is not text; a null or blank (whitespace-only) value
    is the empty document "" — kept, so document ``i`` stays record ``i``, and counted
    as empty by the statistics. The dashboard and ``packviz pack`` both read records
    through this one rule.

    >>> record_text(Record("a.jsonl line 3", {"text": "  "}), "text")
    ''
    """
    if field not in record.fields:
        keys = ", ".join(map(repr, list(record.fields)[:10])) or "none"
        raise CorpusError(
            f"{record.where} has no field {field!r} (its fields: {keys}); choose the text field"
        )
    value = record.fields[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CorpusError(f"{record.where}: field {field!r} is {type(value).__name__}, not text")
    return check_text(value, record.where) if value.strip() else ""


def check_text(text: str, where: str) -> str:
    """``text`` if it can be encoded as UTF-8; a lone surrogate (which JSON escapes such
    as ``"\\ud800"`` can produce) is a CorpusError naming ``where``."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CorpusError(
                f"{where} contains a lone surrogate (U+{ord(text[exc.start]):04X}) that is not "
                "a character; fix the escape in the file"
            ) from None
    return text


def _unique_keys(pairs: list) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object; keep one")
        seen[key] = value
    return seen


def _read_jsonl(filename: str, text: str, *, first_line: int = 1) -> list[Record]:
    """The records of JSONL ``text`` whose first line is line ``first_line`` of the file
    (``packviz pack`` reads a file in byte ranges)."""
    records = []
    # JSON Lines separates records by "\n" only: U+2028, U+0085 and the like may sit inside
    # strings, so str.splitlines (which splits on them) would cut records apart
    for n, line in enumerate(text.split("\n"), start=first_line):
        if not line.strip():
            continue
        where = f"{filename} line {n}"
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise CorpusError(
                f"{where} is not valid JSON ({exc.msg}); each line must be one JSON object"
            ) from None
        except RecursionError:
            raise CorpusError(f"{where} nests JSON too deeply to read") from None
        except ValueError as exc:  # a repeated key, an integer too long to read
            if "int_max_str_digits" in str(exc) or "digits" in str(exc):
                most = sys.get_int_max_str_digits()
                raise CorpusError(
                    f"{where} holds an integer with more than {most:,} digits; store it as a string"
                ) from None
            raise CorpusError(f"{where} cannot be read: {exc}") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{where} is not a JSON object")
        records.append(Record(where, record))
    return records


def _read_csv(filename: str, text: str) -> list[Record]:
    import pyarrow as pa
    import pyarrow.csv as pc

    # a quoted field that never closes would swallow the rest of the file (pyarrow reads
    # it to the end): quotes come in pairs unless one is open, or one sits inside an
    # unquoted field (5" tall), so only an odd count needs the closer look
    if text.count('"') % 2:
        line = _unclosed_quote_line(text)
        if line is not None:
            raise CorpusError(
                f"{filename} line {line} opens a quoted field that never closes: close it, "
                'and write a quote inside a quoted field as ""'
            )
    data = text.encode("utf-8")
    header = text.split("\n", 1)[0].rstrip("\r")
    try:
        first = pc.read_csv(
            io.BytesIO(header.encode("utf-8") + b"\n"),
            read_options=pc.ReadOptions(autogenerate_column_names=True),
            convert_options=pc.ConvertOptions(strings_can_be_null=False),
        )
        names = [str(first.column(i)[0].as_py()) for i in range(first.num_columns)]
    except pa.ArrowException as exc:
        raise CorpusError(f"{filename} is not valid CSV ({exc})") from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CorpusError(
            f"{filename} line 1: the header names the column {twice[0]!r} more than once; "
            "give every column its own name"
        )
    bad = []

    def invalid(row) -> str:
        bad.append(row)
        return "error"

    try:
        table = pc.read_csv(
            io.BytesIO(data),
            read_options=pc.ReadOptions(use_threads=False),
            parse_options=pc.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
            convert_options=pc.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException as exc:
        if bad:
            row = bad[0]
            raise CorpusError(
                f"{_csv_where(filename, text, row.number - 1)} has {row.actual_columns} "
                f"fields where the header has {row.expected_columns}: {row.text[:80]!r}"
            ) from None
        raise CorpusError(f"{filename} is not valid CSV ({exc})") from None
    rows = table.to_pylist()
    lines = _row_lines(text)
    if len(lines) != len(rows) + 1:  # the walk and pyarrow disagree: count data rows
        return [Record(_csv_where(filename, "", i), r) for i, r in enumerate(rows, start=1)]
    return [Record(f"{filename} line {n}", r) for n, r in zip(lines[1:], rows, strict=True)]


def _csv_where(filename: str, text: str, row: int) -> str:
    """How a message names data row ``row`` (1 = the first after the header): its line
    in the file, or its row number where the line cannot be told."""
    lines = _row_lines(text) if text else []
    if 0 < row < len(lines):
        return f"{filename} line {lines[row]}"
    return f"{filename} data row {row} (header not counted)"


def _row_lines(text: str) -> list[int]:
    """The line (from 1) on which each CSV record begins, the header first; blank lines
    hold no record. Fields are walked in order, so a quoted field may span lines."""
    out, pos, n, line = [], 0, len(text), 1
    while pos < n:
        if text[pos] in "\r\n":  # a blank line
            line += text[pos] == "\n"
            pos += 1
            continue
        out.append(line)
        while True:  # the fields of one record
            if pos < n and text[pos] == '"':
                closed = _QUOTED.match(text, pos)
                end = closed.end() if closed is not None else n
                line += text.count("\n", pos, end)
                pos = end
            pos = _UNQUOTED.match(text, pos).end()
            if pos < n and text[pos] == ",":
                pos += 1
                continue
            break
        if text.startswith("\r\n", pos):
            pos += 2
        elif pos < n:
            pos += 1
        line += 1
    return out


_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_UNQUOTED = re.compile(r"[^,\r\n]*")


def _unclosed_quote_line(text: str) -> int | None:
    """The line where a quoted field opens and never closes, or None: fields walked in
    order (a quote opens a field only at its start; elsewhere it is a character)."""
    pos, n = 0, len(text)
    while pos < n:
        if text[pos] == '"':
            closed = _QUOTED.match(text, pos)
            if closed is None:
                return text.count("\n", 0, pos) + 1
            pos = closed.end()
        pos = _UNQUOTED.match(text, pos).end()  # an unquoted field, or text after a quote
        pos += 1  # the delimiter or line end
    return None


def _read_parquet(filename: str, data: bytes, columns: Sequence[str] | None) -> list[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(pa.BufferReader(data)).names
        missing = [c for c in columns or () if c not in names]
        if missing:
            shown = ", ".join(map(repr, names[:10])) or "none"
            raise CorpusError(
                f"{filename} has no column {missing[0]!r} (its columns: {shown}); choose the "
                "text column"
            )
        table = pq.read_table(pa.BufferReader(data), columns=list(columns) if columns else None)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{filename} is not a readable Parquet file: {exc}") from None
    return [Record(f"{filename} row {i}", r) for i, r in enumerate(table.to_pylist(), start=1)]


def _suffix(filename: str) -> str:
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a str (the file's name), got {type(filename).__name__}")
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(
            f"{filename}: unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}"
        )
    return suffix


def read_records(
    filename: str, data: bytes, *, columns: Sequence[str] | None = None
) -> list[Record]:
    """The records of a ``.jsonl``, ``.csv`` or ``.parquet`` file, in file order.

    ``columns`` limits a Parquet read to those columns (JSONL and CSV records carry all
    their fields). CSV fields are strings, exactly as written.
    """
    suffix = _suffix(filename)
    if columns is not None:
        columns = as_list("columns", columns, "column names")
        if not all(isinstance(c, str) for c in columns):
            raise TypeError(f"columns must be a list of column names (str), got {columns!r:.80}")
    if suffix not in RECORD_SUFFIXES:
        raise CorpusError(f"{filename} is not a record file; use {', '.join(RECORD_SUFFIXES)}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"file contents must be bytes, got {type(data).__name__}")
    if suffix == ".parquet":
        if not data:
            raise CorpusError(f"{filename} is empty: upload a file with some records in it")
        records = _read_parquet(filename, bytes(data), columns)
    elif suffix == ".jsonl":
        records = _read_jsonl(filename, decode_text(filename, bytes(data)))
    else:
        records = _read_csv(filename, decode_text(filename, bytes(data)))
    if not records:
        raise CorpusError(f"{filename} has no records")
    return records


def read_documents(
    filename: str, data: bytes, *, split: Split = "paragraph", text_field: str = "text"
) -> list[str]:
    """Documents from one file, chosen by its suffix.

    ``.txt``/``.md`` are split by ``split`` (see `packviz.corpus.split_text`); each
    ``.jsonl`` line, ``.csv`` row or ``.parquet`` row is one document, taken from
    ``text_field`` (empty ones included, so document ``i`` is record ``i``).
    """
    suffix = _suffix(filename)
    check_choice("split", split, SPLITS, error=CorpusError)
    if not isinstance(text_field, str) or not text_field:
        raise CorpusError(f"the text field must be a non-empty name, got {text_field!r}")
    if suffix in RECORD_SUFFIXES:
        records = read_records(filename, data, columns=[text_field])
        if suffix == ".csv" and text_field not in records[0].fields:  # one header for all
            shown = ", ".join(map(repr, list(records[0].fields)[:10])) or "none"
            raise CorpusError(
                f"{filename} has no column {text_field!r} (its columns: {shown}); choose the "
                "text column"
            )
        docs = [record_text(r, text_field) for r in records]
    else:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"file contents must be bytes, got {type(data).__name__}")
        docs = split_text(decode_text(filename, bytes(data)), split)
    if not any(d.strip() for d in docs):
        raise CorpusError(f"{filename} has no non-empty documents")
    return docs
