"""The output folder: only packviz's own files are ever deleted or overwritten, a job's
identity includes the packviz that made it, and cleaning touches nothing else."""

from __future__ import annotations

import json

import pytest
from corpus_files import documents, tokenizer_file, write_jsonl

import packviz as pv
from packviz.pipeline import manifest, run
from packviz.pipeline.manifest import JobChanged, clear, foreign_entries, remove_temporaries


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    write_jsonl(d / "a.jsonl", documents(60, 1))
    return d, tokenizer_file(tmp_path)


def _pack(corpus, out, **kw):
    d, tok = corpus
    kw.setdefault("tokenizer", tok)
    kw.setdefault("max_len", 64)
    return pv.pack_corpus(d, out, progress=False, log=lambda line: None, **kw)


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_foreign_manifest_is_not_packviz_output_even_with_overwrite(corpus, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "manifest.json").write_text('{"model": "my-llm", "shards": []}\n')
    (out / "tokenizer.json").write_text("my own tokenizer")
    (out / "shard-000000.parquet").write_bytes(b"my own data")
    before = _files(out)
    with pytest.raises(ValueError, match=r"is not empty and holds no packviz output"):
        _pack(corpus, out, overwrite=True)
    assert _files(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no work folder either


def test_packviz_output_with_other_files_beside_it_is_refused(corpus, tmp_path):
    out = tmp_path / "out"
    _pack(corpus, out)
    (out / "notes.txt").write_text("mine")
    (out / "tokenizer.json").write_text("my own tokenizer, put here to use it")
    before = _files(out)
    with pytest.raises(
        ValueError,
        match=r"holds files packviz did not write \(notes\.txt, tokenizer\.json\); choose an "
        r"empty or new folder \(nothing there is deleted or overwritten\)",
    ):
        _pack(corpus, out, max_len=128, overwrite=True)
    assert _files(out) == before


def test_overwrite_replaces_a_packviz_job_and_its_trained_tokenizer(corpus, tmp_path):
    out = tmp_path / "out"
    d, _ = corpus
    first = _pack(corpus, out, tokenizer=None, train_vocab=300)
    assert (out / "tokenizer.json").is_file()
    assert first.manifest["manifest_format"] == "packviz pack"
    assert foreign_entries(out) == []
    report = _pack(corpus, out, overwrite=True)  # a given tokenizer: none is shipped
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(s["file"] for s in report.manifest["shards"])]
    )


def test_clear_and_remove_temporaries_delete_only_packviz_names(tmp_path):
    out = tmp_path / "out"
    (out / ".packviz-work" / "tokens").mkdir(parents=True)
    (out / ".packviz-work" / "lock").write_text("held")
    (out / ".packviz-work" / "tokens" / "part-000000.ids.tmp-h-1-ab").write_bytes(b"x")
    (out / ".packviz-work" / "spec.json").write_text("{}")
    for name in ("manifest.json.tmp-h-1-ab", "shard-000003.npz.tmp-h-2-cd", "shard-000001.npz"):
        (out / name).write_bytes(b"x")
    (out / "tokenizer.json").write_text("not ours: no manifest lists it")
    remove_temporaries(out)
    assert sorted(p.name for p in out.iterdir()) == [".packviz-work", "shard-000001.npz",
                                                       "tokenizer.json"]  # fmt: skip
    assert not list((out / ".packviz-work" / "tokens").iterdir())
    clear(out, None)
    assert sorted(p.name for p in out.iterdir()) == [".packviz-work", "tokenizer.json"]
    assert [p.name for p in (out / ".packviz-work").iterdir()] == ["lock"]


def test_a_job_made_by_another_packviz_format_is_another_job(corpus, tmp_path, monkeypatch):
    out = tmp_path / "out"
    done = _pack(corpus, out)
    assert done.manifest["pack_format"] == manifest.PACK_FORMAT
    assert done.manifest["packviz_version"] == pv.__version__
    monkeypatch.setattr(run, "PACK_FORMAT", manifest.PACK_FORMAT + 1)
    with pytest.raises(
        JobChanged,
        match=rf"another job \(it was made by packviz output format {manifest.PACK_FORMAT}, "
        rf"this is {manifest.PACK_FORMAT + 1}\); run with --overwrite",
    ):
        _pack(corpus, out)
    monkeypatch.setattr(run, "pv_version", lambda: "9.9.9")
    monkeypatch.setattr(run, "PACK_FORMAT", manifest.PACK_FORMAT)
    with pytest.raises(JobChanged, match=r"made by packviz 0\.1\.0, this is 9\.9\.9"):
        _pack(corpus, out)
    again = _pack(corpus, out, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["packviz_version"] == "9.9.9"
    assert not again.already_complete


def test_a_tokenizer_inside_the_output_folder_is_refused(corpus, tmp_path):
    out = tmp_path / "out"
    _pack(corpus, out, tokenizer=None, train_vocab=300)
    with pytest.raises(ValueError, match=r"tokenizer\.json is inside --out .*out; keep it outside"):
        _pack(corpus, out, tokenizer=out / "tokenizer.json", overwrite=True)
    assert (out / "tokenizer.json").is_file()  # not deleted by the overwrite
