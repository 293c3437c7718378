"""packviz.files: reading text and record files; every problem is a CorpusError naming
the file (and line or row) and the fix; nothing is dropped without notice."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import packviz as pv


def test_read_formats():
    assert pv.read_documents("a.txt", b"one\n\ntwo") == ["one", "two"]
    assert pv.read_documents("a.md", b"# T\nx", split="line") == ["# T", "x"]
    assert pv.read_documents("a.jsonl", b'{"body": "x"}\n\n{"body": "y"}', text_field="body") == [
        "x",
        "y",
    ]
    assert pv.read_documents("a.csv", b'id,text\n1,hello\n2,"a, b"\n') == ["hello", "a, b"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["p", "", "q"]}), buf)
    assert pv.read_documents("a.parquet", buf.getvalue()) == ["p", "", "q"]  # record i = doc i


@pytest.mark.parametrize(
    "name, data, kwargs, message",
    [
        ("a.txt", b"", {}, "a.txt is empty"),
        ("a.txt", b"   \n", {}, "only whitespace"),
        ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00", {}, "binary"),
        ("a.txt", "café".encode("latin-1"), {}, "not UTF-8 .*position 3"),
        ("a.jsonl", b'{"text": "ok"}\n{"text": oops}\n', {}, "line 2 is not valid JSON"),
        ("a.jsonl", b'{"body": "ok"}\n', {}, "line 1 has no field 'text' .*'body'"),
        ("a.jsonl", b"[1, 2]\n", {}, "line 1 is not a JSON object"),
        ("a.jsonl", b'{"text": 5}\n', {}, "not text"),
        ("a.csv", b"id,body\n1,x\n", {}, "no column 'text' .*'body'"),
        ("a.csv", b"id,text\n1,x\n2\n", {}, "a.csv line 3 has 1 fields where the header has 2"),
        ("a.csv", b'id,text\n1,"never closed\n2,x\n', {}, "line 2 opens a quoted field"),
        ("a.jsonl", b'{"text": "a"}\n' + b"[" * 100_000 + b"]" * 100_000, {}, "line 2 nests"),
        (
            "a.jsonl",
            b'{"text": "a", "n": ' + b"7" * 5000 + b"}",
            {},
            "line 1 holds an integer with more than 4,300 digits; store it as a string",
        ),
        ("a.jsonl", b'{"text": "a\\ud800b"}', {}, "line 1 contains a lone surrogate"),
        ("a.txt", "hello wide world".encode("utf-16-le"), {}, "UTF-16 text \\(little-endian\\)"),
        ("a.txt", "hello wide world".encode("utf-16-be"), {}, "UTF-16 text \\(big-endian\\)"),
        ("a.parquet", b"PAR1 nope", {}, "not a readable Parquet"),
        ("a.pkl", b"\x80\x04", {}, "unsupported file type .pkl"),
        ("a.txt", b"x", {"split": "word"}, "unknown split"),
    ],
)
def test_bad_uploads(name, data, kwargs, message):
    with pytest.raises(pv.CorpusError, match=message):
        pv.read_documents(name, data, **kwargs)


def test_csv_with_one_very_long_document():
    long = "word " * 60_000  # 300k characters: over csv's default field limit
    docs = pv.read_documents("a.csv", ("text\n" + long + "\n").encode())
    assert docs == [long]


def test_json_lines_are_split_on_newlines_only():
    """U+2028, U+2029 and U+0085 are allowed inside JSON strings; only \\n ends a record."""
    text = "a\u2028b\u0085c\u2029d\x0ce"
    data = (json.dumps({"text": text}, ensure_ascii=False) + '\r\n{"text": "f"}\n').encode()
    assert pv.read_documents("x.jsonl", data) == [text, "f"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_text_with_a_byte_order_mark_is_decoded(encoding):
    data = "Grüße\n\nzwei".encode(encoding)
    assert pv.read_documents("a.txt", data) == ["Grüße", "zwei"]


def test_record_files_keep_one_document_per_record():
    data = b'{"text": "a"}\n{"text": ""}\n\n{"text": "c"}\n'
    assert pv.read_documents("x.jsonl", data) == ["a", "", "c"]
    assert [r.where for r in pv.read_records("x.jsonl", data)] == [
        "x.jsonl line 1",
        "x.jsonl line 2",
        "x.jsonl line 4",
    ]
    assert pv.read_documents("x.csv", b'text\na\n""\nc\n') == ["a", "", "c"]
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["p", None, " \n "]}), buf)
    # null and blank texts are the empty document: kept, so record i stays document i
    assert pv.read_documents("a.parquet", buf.getvalue()) == ["p", "", ""]
    with pytest.raises(pv.CorpusError, match="x.jsonl line 2 has no field 'text'"):
        pv.read_documents("x.jsonl", b'{"text": "a"}\n{"body": "b"}\n')


def test_csv_fields_are_text_exactly_as_written():
    records = pv.read_records("t.csv", b"id,text\n007,1e3\n")
    assert records[0].fields == {"id": "007", "text": "1e3"}


def test_csv_reading_changes_no_process_state_and_is_thread_safe():
    """Long fields are read without touching csv.field_size_limit (a process global that
    concurrent uploads used to race on)."""
    limit = csv.field_size_limit()
    long = "word " * 60_000  # 300k characters: over csv's default field limit
    data = ("text,n\n" + long + ",1\nshort,2\n").encode()

    def read(_):
        return pv.read_documents("a.csv", data)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, range(64)))
    assert all(r == [long, "short"] for r in results)
    assert csv.field_size_limit() == limit


def test_a_quote_inside_an_unquoted_csv_field_is_a_character():
    data = b'id,text\n1,5" tall\n2,"a ""quoted"" word"\n'
    assert pv.read_documents("a.csv", data) == ['5" tall', 'a "quoted" word']


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "a.jsonl",
            b'{"text": "a", "text": "b"}\n',
            "line 1 cannot be read: the key 'text' appears",
        ),
        (
            "a.csv",
            b"text,id,text\na,1,b\n",
            "a.csv line 1: the header names the column 'text' more",
        ),
    ],
)
def test_duplicates_are_refused(name, data, message):
    with pytest.raises(pv.CorpusError, match=message):
        pv.read_records(name, data)


def test_nan_is_read_as_python_and_pyarrow_read_it_and_is_no_text():
    data = b'{"text": "a", "score": NaN}\n{"text": "b", "score": Infinity}\n'
    assert pv.read_documents("a.jsonl", data) == ["a", "b"]  # as `packviz pack` reads it
    with pytest.raises(pv.CorpusError, match="a.jsonl line 2: field 'text' is float, not text"):
        pv.read_documents("a.jsonl", b'{"text": "a"}\n{"text": NaN}\n')


def test_csv_records_are_named_by_their_line_in_the_file():
    data = b'id,text\n1,"a\nb"\n\n2,c\r\n3,"d ""e"""\n4,f,g\n'
    with pytest.raises(pv.CorpusError, match="a.csv line 7 has 3 fields"):
        pv.read_records("a.csv", data)
    records = pv.read_records("a.csv", data.rsplit(b"4,f,g", 1)[0])
    assert [r.where for r in records] == ["a.csv line 2", "a.csv line 5", "a.csv line 6"]
    assert [r.fields["text"] for r in records] == ["a\nb", "c", 'd "e"']
