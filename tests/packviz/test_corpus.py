"""packviz.corpus: built-in corpora, parsing uploads, and clear errors for bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest

import packviz as pv


@pytest.mark.parametrize("name", list(pv.BUILTIN_CORPORA))
def test_builtin_corpora_are_real_and_heavy_tailed(name):
    docs = pv.load_builtin(name)
    assert len(docs) > 50 and all(d.strip() for d in docs)
    lengths = np.array([len(d) for d in docs])
    assert lengths.max() > 5 * np.median(lengths)


def test_split_text():
    text = "First para. Second sentence!\n\nNext para\nline two?\n\n\n"
    assert pv.split_text(text, "file") == [text.strip()]
    assert pv.split_text(text, "paragraph") == [
        "First para. Second sentence!",
        "Next para\nline two?",
    ]
    assert pv.split_text(text, "line") == ["First para. Second sentence!", "Next para", "line two?"]
    assert pv.split_text(text, "sentence") == [
        "First para.",
        "Second sentence!",
        "Next para\nline two?",
    ]
    with pytest.raises(ValueError, match="file, paragraph, line, sentence"):
        pv.split_text(text, "word")


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
    pq.write_table(pa.table({"text": ["p", None, "q"]}), buf)
    assert pv.read_documents("a.parquet", buf.getvalue()) == ["p", "q"]


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
        ("a.parquet", b"PAR1 nope", {}, "not a readable Parquet"),
        ("a.pkl", b"\x80\x04", {}, "unsupported file type .pkl"),
        ("a.txt", b"x", {"split": "word"}, "unknown split"),
    ],
)
def test_bad_uploads(name, data, kwargs, message):
    with pytest.raises(pv.CorpusError, match=message):
        pv.read_documents(name, data, **kwargs)


def test_synthetic_lengths():
    x = pv.synthetic_lengths(100_000, seed=0)
    assert x.dtype == np.int64 and x.min() >= 1 and x.max() <= 32768
    assert 280 < np.median(x) < 320
    assert np.array_equal(x, pv.synthetic_lengths(100_000, seed=0))
    for dist in pv.DISTRIBUTIONS:
        y = pv.synthetic_lengths(10_000, distribution=dist, median=100, max_length=4096)
        assert 60 < np.median(y) < 140, dist
    with pytest.raises(pv.CorpusError, match="between 1 and"):
        pv.synthetic_lengths(0)
    with pytest.raises(pv.CorpusError, match="lognormal"):
        pv.synthetic_lengths(10, distribution="zipf")


def test_csv_with_one_very_long_document():
    long = "word " * 60_000  # 300k characters: over csv's default field limit
    docs = pv.read_documents("a.csv", ("text\n" + long + "\n").encode())
    assert docs == [long]
