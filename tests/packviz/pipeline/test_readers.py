"""Reading parts: the same documents as the dashboard reads, errors that name the file
and the line (or row), and pre-tokenized ids with their trained flags."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from corpus_files import documents, write_jsonl, write_parquet
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz.corpus import CorpusError
from packviz.pipeline.inputs import find_inputs, make_parts
from packviz.pipeline.readers import TokenBatch, read_segment


def _docs(path, **kw):
    field = kw.pop("text_field", "text")
    files = find_inputs([str(path)], text_field=field)
    out = []
    for part in make_parts(files, kw.pop("part_bytes", 1 << 20)):
        for i, lo, hi in part.segments:
            for batch in read_segment(files[i], lo, hi, text_field=field, **kw):
                out.append(batch) if isinstance(batch, TokenBatch) else out.extend(batch)
    return out


@pytest.mark.parametrize("split", ["file", "paragraph", "line", "sentence"])
def test_text_files_are_split_as_the_dashboard_splits_them(tmp_path, split):
    text = "One. Two!\n\nThree?\n  \nFour\nfive.\n"
    path = tmp_path / "notes.txt"
    path.write_text(text)
    assert _docs(path, split=split) == pv.read_documents("notes.txt", text.encode(), split=split)


def test_jsonl_blank_records_stay_as_empty_documents_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "  "}\n{"text": "b", "x": [1]}\n')
    assert _docs(path) == ["a", "", "b"]
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert _docs(gz) == ["a", "", "b"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"body": "x"}', r"line 40 has no field 'text' \(its fields: 'body'\); choose the text"),
        ('{"text": 5}', r"line 40: field 'text' is int, not text"),
        ('{"text": "a\\ud800"}', r"line 40 contains a lone surrogate \(U\+D800\)"),
        ('{"text": "x"', r"line 40 is not valid JSON"),
        ("[1, 2]", r"line 40 is not a JSON object"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_a_bad_jsonl_line_is_named_by_file_and_line(tmp_path, line, message, gz):
    docs = documents(60)
    path = write_jsonl(tmp_path / "c.jsonl", docs)
    lines = path.read_text().splitlines()
    lines[39] = line
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        path = tmp_path / "c.jsonl.gz"
        data = gzip.compress(data)
    path.write_bytes(data)
    with pytest.raises(CorpusError, match=rf"{path.name} {message}"):
        _docs(path, part_bytes=500, batch_bytes=300)  # the line sits in a later part


def test_unreadable_inputs_are_named(tmp_path):
    bad_gz = tmp_path / "b.jsonl.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(CorpusError, match=r"b\.jsonl\.gz is not a readable gzip file"):
        _docs(bad_gz)
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"l\.txt is not UTF-8 text \(byte 0xe9 at position 3\)"):
        _docs(latin)
    js = tmp_path / "l.jsonl"
    js.write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(CorpusError, match=r"l\.jsonl line 1 is not UTF-8 text"):
        _docs(js)


def test_csv_reads_the_text_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,text\n1,"hello, world"\n2,"two\nlines"\n3,\n')
    assert _docs(path) == ["hello, world", "two\nlines", ""]
    with pytest.raises(
        CorpusError,
        match=r"c\.csv has no column 'body' \(its columns: 'id', 'text'\); pass --text-field NAME",
    ):
        _docs(path, text_field="body")
    path.write_text("id,text\n1,a\n2\n")
    with pytest.raises(CorpusError, match=r"c\.csv line 3 has 1 fields where the header has 2"):
        _docs(path)


BLANKS = ["first", "", "   ", None, "\t\n", "last one"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_blank_null_and_missing_text_follow_the_librarys_one_rule(tmp_path, suffix):
    """`packviz.files.record_text`: null or blank text is the empty document, kept."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from packviz.files import read_records, record_text

    path = tmp_path / f"c{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in BLANKS))
    elif suffix == ".csv":
        quoted = ['"' + t.replace('"', '""') + '"' if t is not None else "" for t in BLANKS]
        rows = "".join(f"{i},{q}\n" for i, q in enumerate(quoted))
        path.write_text("id,text\n" + rows)
    else:
        pq.write_table(pa.table({"text": BLANKS}), path)
    library = [record_text(r, "text") for r in read_records(path.name, path.read_bytes())]
    assert library == ["first", "", "", "", "", "last one"]
    assert _docs(path, part_bytes=20, batch_bytes=10) == library
    if suffix == ".jsonl":  # a record without the field is an error in both
        path.write_text('{"text": "a"}\n{"id": 3}\n')
        with pytest.raises(CorpusError, match=r"c\.jsonl line 2 has no field 'text'"):
            _docs(path)


def test_parquet_text_rows_in_any_part_size(tmp_path):
    docs = documents(250, blank_every=7)
    path = write_parquet(tmp_path / "p.parquet", {"text": docs}, row_group_size=40)
    expected = [d if d.strip() else "" for d in docs]
    for part_bytes in (1, 700, 1 << 20):
        assert _docs(path, part_bytes=part_bytes, batch_bytes=100) == expected


def test_pre_tokenized_parquet_keeps_ids_and_trained_flags(tmp_path):
    ids = [[5, 6, 7], [], [8], [9, 10]]
    trained = [[False, True, True], [], [True], [False, False]]
    path = write_parquet(tmp_path / "t.parquet", {"input_ids": ids, "trained": trained})
    (batch,) = _docs(path)
    assert batch.values.tolist() == [5, 6, 7, 8, 9, 10]
    assert batch.values.dtype == np.int32
    assert batch.lengths.tolist() == [3, 0, 1, 2]
    assert batch.trained.tolist() == [False, True, True, True, False, False]
    wrong = write_parquet(tmp_path / "w.parquet", {"input_ids": ids, "trained": [[True]] * 4})
    with pytest.raises(
        CorpusError, match=r"w\.parquet row 0: 'trained' has 1 flags for 3 token ids"
    ):
        _docs(wrong)
    negative = write_parquet(tmp_path / "n.parquet", {"input_ids": [[1], [2, -3]]})
    with pytest.raises(
        CorpusError, match=r"n\.parquet row 1: token id -3 is outside \[0, 2\*\*31\)"
    ):
        _docs(negative)


@given(
    text=st.lists(st.sampled_from(["ab", "é", " ", "\n", "\r", "\t", ".", "!", "\u2028"]),
                  max_size=300).map("".join),
    block=st.integers(1, 40),
    split=st.sampled_from(["paragraph", "line", "sentence", "file"]),
)  # fmt: skip
def test_text_files_read_in_blocks_split_as_the_whole_text(tmp_path_factory, text, block, split):
    from packviz.corpus import split_text
    from packviz.pipeline.inputs import InputFile

    path = tmp_path_factory.mktemp("t") / "t.txt"
    path.write_bytes(text.encode())
    f = InputFile(str(path), "text", path.stat().st_size)
    docs = [d for b in read_segment(f, 0, f.size, text_field="text", split=split, batch_bytes=block)
            for d in b]  # fmt: skip
    assert docs == split_text(text, split)


def test_a_text_file_is_read_a_block_at_a_time(tmp_path, monkeypatch):
    from packviz.pipeline import readers

    path = tmp_path / "big.txt"
    path.write_text("\n\n".join(documents(400, 9)))
    monkeypatch.setattr(readers, "MAX_TEXT_FILE_BYTES", 1000)  # only split="file" reads whole
    batches = list(readers.read_segment(find_inputs([str(path)])[0], 0, 0, text_field="text",
                                        batch_bytes=2000))  # fmt: skip
    assert len(batches) > 5 and max(sum(map(len, b)) for b in batches) < 4000
    with pytest.raises(CorpusError, match=r"big\.txt is .* GiB; whole files are read whole"):
        _docs(path, split="file")


def test_a_marked_record_name_becomes_its_line_wherever_it_is_in_the_message(tmp_path):
    from packviz.pipeline.readers import name_lines

    path = tmp_path / "c.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": 4}\n')
    offset = len('{"a": 1}\n{"a": 2}\n')  # the block starts at line 3
    exc = CorpusError(f"the chat template failed on {path}\x00{offset}\x00 line 1: boom")
    named = name_lines(exc, str(path))
    assert type(named) is CorpusError
    assert str(named) == f"the chat template failed on {path} line 4: boom"
    other = ValueError("nothing marked")
    assert name_lines(other, str(path)) is other


def test_a_byte_order_mark_opens_a_jsonl_file_as_the_dashboard_reads_it(tmp_path):
    bom = b"\xef\xbb\xbf"
    for name, body in [("null_first", b'{"text": null}\n{"text": "hello"}\n'),
                       ("fast", b'{"text": "x"}\n{"text": "hello"}\n')]:  # fmt: skip
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(bom + body)
        assert _docs(path) == pv.read_documents(path.name, path.read_bytes())
    path = tmp_path / "sft.jsonl"
    path.write_bytes(bom + b'{"prompt": "a", "completion": "b"}\n')
    (records,) = read_segment(find_inputs([str(path)], records=True)[0], 0, path.stat().st_size,
                              text_field="text", records=True)  # fmt: skip
    assert [r.fields for r in records] == [
        r.fields for r in pv.read_records("s.jsonl", path.read_bytes())
    ]
