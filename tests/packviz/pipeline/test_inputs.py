"""Finding corpus files and cutting them into parts: fixed order, clear refusals, parts
that cover every record exactly once whatever their size."""

from __future__ import annotations

import pytest
from corpus_files import documents, write_jsonl, write_parquet
from hypothesis import given
from hypothesis import strategies as st

from packviz.corpus import CorpusError
from packviz.pipeline import inputs
from packviz.pipeline.inputs import find_inputs, make_parts
from packviz.pipeline.readers import read_segment


def test_folders_globs_and_files_expand_in_a_fixed_order(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.jsonl", "a.txt", "sub/c.md", "skip.bin", "d.jsonl.gz", "e.csv"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.txt").write_text("x")
    files = find_inputs([str(tmp_path)])
    names = [f.path.removeprefix(str(tmp_path) + "/") for f in files]
    assert names == ["a.txt", "b.jsonl", "d.jsonl.gz", "e.csv", "sub/c.md"]
    assert [f.kind for f in files] == ["text", "jsonl", "jsonl.gz", "csv", "text"]
    globbed = find_inputs([str(tmp_path / "sub" / "*.md"), str(tmp_path / "b.jsonl")])
    assert [f.path.rsplit("/", 1)[1] for f in globbed] == ["c.md", "b.jsonl"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: [str(d / "missing.jsonl")], "missing.jsonl: no such file or folder"),
        (lambda d: [str(d / "x.bin")], "x.bin: unsupported file type"),
        (lambda d: [str(d / "*.nothing")], "no corpus files match this pattern"),
        (lambda d: [str(d / "a.jsonl"), str(d)], "a.jsonl is listed twice"),
        (lambda d: [str(d / "empty")], "no corpus files in this folder"),
    ],
)
def test_bad_paths_are_refused_by_name(tmp_path, make, message):
    (tmp_path / "x.bin").write_bytes(b"x")
    (tmp_path / "a.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=message.replace("*", r"\*")):
        find_inputs(make(tmp_path))


def test_parquet_without_the_text_column_names_file_and_columns(tmp_path):
    path = write_parquet(tmp_path / "p.parquet", {"body": ["a", "b"]})
    with pytest.raises(
        CorpusError, match=r"p\.parquet has no column 'text' \(its columns: 'body'\)"
    ):
        find_inputs([str(path)])
    assert find_inputs([str(path)], text_field="body")[0].kind == "parquet"
    bad = write_parquet(tmp_path / "n.parquet", {"text": [1, 2]})
    with pytest.raises(CorpusError, match=r"n\.parquet: column 'text' is int64, not text"):
        find_inputs([str(bad)])


def test_pre_tokenized_and_text_inputs_are_not_mixed(tmp_path):
    ids = write_parquet(tmp_path / "ids.parquet", {"input_ids": [[1, 2], [3]]})
    text = write_jsonl(tmp_path / "t.jsonl", ["a"])
    assert find_inputs([str(ids)])[0].kind == "tokens"
    with pytest.raises(
        CorpusError,
        match=r"mixed inputs: .*ids\.parquet is pre-tokenized .* but .*t\.jsonl holds text",
    ):
        find_inputs([str(ids), str(text)])


def _read_all(files, parts):
    out = []
    for part in parts:
        for i, lo, hi in part.segments:
            for batch in read_segment(files[i], lo, hi, text_field="text", batch_bytes=97):
                out.extend(batch)
    return out


@given(part_bytes=st.integers(1, 3000), row_group=st.integers(1, 50))
def test_parts_of_any_size_cover_every_record_once_in_order(
    tmp_path_factory, part_bytes, row_group
):
    d = tmp_path_factory.mktemp("c")
    a, b, c = documents(37, seed=1), documents(23, seed=2), documents(11, seed=3)
    write_jsonl(d / "a.jsonl", a)
    write_parquet(d / "b.parquet", {"text": b}, row_group_size=row_group)
    write_jsonl(d / "c.jsonl.gz", c, gz=True)
    files = find_inputs([str(d / "a.jsonl"), str(d / "b.parquet"), str(d / "c.jsonl.gz")])
    parts = make_parts(files, part_bytes)
    assert [p.index for p in parts] == list(range(len(parts)))
    assert _read_all(files, parts) == a + b + c


def test_parts_follow_the_corpus_size_or_the_environment(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "a.jsonl", documents(200))
    files = find_inputs([str(tmp_path)])
    assert len(make_parts(files)) == 1  # under MIN_PART_BYTES
    monkeypatch.setattr(inputs, "MIN_PART_BYTES", 100)
    monkeypatch.setattr(inputs, "TARGET_PARTS", 8)
    assert len(make_parts(files)) == 8  # the corpus over TARGET_PARTS
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "100000")
    assert len(make_parts(files)) == 1


def test_the_output_folder_inside_an_input_folder_is_not_read(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", documents(5))
    out = tmp_path / "packed"
    out.mkdir()
    write_parquet(out / "shard-000000.parquet", {"input_ids": [[1, 2]]})
    (out / "x.jsonl").write_text('{"text": "a"}\n')
    for spec in (str(tmp_path), str(tmp_path / "**" / "*.*")):
        assert [f.path for f in find_inputs([spec], exclude=out)] == [str(tmp_path / "a.jsonl")]
    with pytest.raises(CorpusError, match=r"x\.jsonl is inside the output folder .*packed"):
        find_inputs([str(out / "x.jsonl")], exclude=out)


def test_a_corpus_below_a_hidden_folder_is_found(tmp_path):
    d = tmp_path / ".cache" / "corpus"
    d.mkdir(parents=True)
    write_jsonl(d / "a.jsonl", documents(3))
    (d / ".git").mkdir()
    (d / ".git" / "b.txt").write_text("x")
    assert [f.path for f in find_inputs([str(d)])] == [str(d / "a.jsonl")]
