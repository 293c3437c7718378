"""`pack_corpus` end to end in this process: the shards are exactly the library's own
`materialize` of the one global plan, the same bytes for any worker count, resumable,
and refusing what it must refuse."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
from corpus_files import (
    documents,
    expected_ids,
    load_all,
    stacked,
    tokenizer_file,
    tree_bytes,
    write_jsonl,
    write_parquet,
)

import packviz as pv
from packviz.corpus import CorpusError
from packviz.pipeline import files as files_module
from packviz.pipeline import tasks
from packviz.pipeline.files import sha256_file
from packviz.pipeline.manifest import JobChanged

FIELDS = ("input_ids", "labels", "position_ids", "doc_ids")


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """Three files of three kinds (with blank records), many small parts, a tokenizer."""
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "3000")
    d = tmp_path / "corpus"
    d.mkdir()
    a, b, c = documents(120, 1, blank_every=9), documents(80, 2), documents(90, 3, median=60)
    write_jsonl(d / "a.jsonl", a)
    write_parquet(d / "b.parquet", {"text": b}, row_group_size=25)
    write_jsonl(d / "c.jsonl.gz", c, gz=True)
    return d, a + b + c, tokenizer_file(tmp_path)


def _pack(corpus, out, **kw):
    d, _, tok = corpus
    kw.setdefault("tokenizer", tok)
    return pv.pack_corpus(d, out, progress=False, log=lambda line: None, **kw)


@pytest.mark.parametrize(
    ("strategy", "sort", "fmt"),
    [
        ("best_fit", "desc", "parquet"),
        ("first_fit", "asc", "npz"),
        ("wrapped", "random", "parquet"),
    ],
)
def test_shards_are_materialize_of_the_global_plan(corpus, tmp_path, strategy, sort, fmt):
    _, docs, tok = corpus
    report = _pack(corpus, tmp_path / "out", max_len=64, strategy=strategy, sort=sort,
                   seed=3, rows_per_shard=13, format=fmt, workers=1)  # fmt: skip
    ids = expected_ids(tok, docs)
    plan = pv.pack(ids.lengths, 64, strategy=strategy, sort=sort, seed=3)
    want = pv.materialize(plan, ids, pad_id=pv.pad_token_id(pv.load_tokenizer(tok)))
    got = load_all(tmp_path / "out")
    for name in FIELDS:
        assert np.array_equal(stacked(got, name), getattr(want, name)), name
    assert np.array_equal(stacked(got, "row_index"), np.arange(plan.n_rows))
    cu = [a.cu_seqlens for a in got]  # per shard: the pieces of its own rows
    assert sum(c.size - 1 for c in cu) == plan.n_pieces
    m = report.manifest
    assert m["stats"] == plan.stats().as_dict()
    assert m["corpus"] == {"documents": len(docs), "tokens": ids.n_tokens, "trained_flags": False}
    assert [s["rows"] for s in m["shards"]] == [
        [r, min(r + 13, plan.n_rows)] for r in range(0, plan.n_rows, 13)
    ]
    for s in m["shards"]:
        assert sha256_file(tmp_path / "out" / s["file"]) == s["sha256"]
    assert [f["documents"] for f in m["inputs"]] == [120, 80, 90]
    assert got[0].metadata["plan"] == plan.settings()
    assert not (tmp_path / "out" / ".packviz-work").exists()


def test_the_same_bytes_whatever_the_worker_count(corpus, tmp_path):
    one = _pack(corpus, tmp_path / "one", max_len=128, rows_per_shard=9, workers=1)
    two = _pack(corpus, tmp_path / "two", max_len=128, rows_per_shard=9, workers=2)
    assert len(one.shards) > 3
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")
    assert len(two.memory["worker_peaks"]) == 2


def test_an_interrupted_job_resumes_reusing_verified_work(corpus, tmp_path, monkeypatch):
    full = tmp_path / "full"
    _pack(corpus, full, max_len=64, rows_per_shard=10, workers=1)

    encoded = []
    real_encode, real_shard = tasks._encode, tasks.write_shard
    monkeypatch.setattr(tasks, "_encode", lambda *a: encoded.append(a[2]) or real_encode(*a))

    def crash_after_three(work, index):
        if index == 3:
            raise KeyboardInterrupt  # the job dies half way through pass 2
        return real_shard(work, index)

    monkeypatch.setattr(tasks, "write_shard", crash_after_three)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        _pack(corpus, out, max_len=64, rows_per_shard=10, workers=1)
    assert not (out / "manifest.json").exists()
    assert encoded, "pass 1 ran"
    parts = sorted((out / ".packviz-work" / "tokens").glob("part-*.ids"))
    parts[1].write_bytes(parts[1].read_bytes()[:-4])  # damage one finished part

    encoded.clear()
    monkeypatch.setattr(tasks, "write_shard", real_shard)
    report = _pack(corpus, out, max_len=64, rows_per_shard=10, workers=1)
    assert len(encoded) >= 1 and len(encoded) < len(parts)  # only the damaged part again
    assert tree_bytes(out) == tree_bytes(full)
    assert not report.already_complete

    again = _pack(corpus, out, max_len=64, rows_per_shard=10, workers=1)
    assert again.already_complete
    assert again.manifest == report.manifest


def test_changed_inputs_or_settings_are_refused_unless_overwrite(corpus, tmp_path):
    d, _, _ = corpus
    out = tmp_path / "out"
    _pack(corpus, out, max_len=64)
    with pytest.raises(
        JobChanged,
        match=r"holds the output of another job \(setting max_len was 64, now 128\); run with --overwrite",
    ):
        _pack(corpus, out, max_len=128)
    with (d / "a.jsonl").open("a") as fh:
        fh.write('{"text": "one more"}\n')
    with pytest.raises(JobChanged, match=r"input .*a\.jsonl changed since"):
        _pack(corpus, out, max_len=64)
    report = _pack(corpus, out, max_len=128, overwrite=True)
    assert report.manifest["settings"]["max_len"] == 128
    assert report.stats.n_docs == 291
    names = {p.name for p in out.iterdir()}
    assert names == {"manifest.json", *(s["file"] for s in report.manifest["shards"])}


def test_a_folder_that_is_not_packviz_output_is_never_written_into(corpus, tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"is not empty and holds no packviz output"):
        _pack(corpus, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_empty_corpora_are_refused(tmp_path):
    tok = tokenizer_file(tmp_path)
    write_jsonl(tmp_path / "blank.jsonl", ["", "  ", "\n"])
    with pytest.raises(CorpusError, match=r"empty corpus: all 3 documents are empty"):
        pv.pack_corpus(tmp_path / "blank.jsonl", tmp_path / "o1", tokenizer=tok, progress=False)
    (tmp_path / "none.jsonl").write_text("")
    with pytest.raises(CorpusError, match=r"empty corpus: no documents in the 1 input files"):
        pv.pack_corpus(tmp_path / "none.jsonl", tmp_path / "o2", tokenizer=tok, progress=False)
    assert not (tmp_path / "o1" / "manifest.json").exists()


def test_a_failing_tokenizer_is_reported_with_the_file(tmp_path):
    from tokenizers import Tokenizer, models

    tok = Tokenizer(models.WordLevel({"a": 0}))  # no unknown token: cannot encode "b"
    tok.save(str(tmp_path / "tok.json"))
    write_jsonl(tmp_path / "c.jsonl", ["a", "b"])
    with pytest.raises(pv.TokenizerError, match=r"c\.jsonl: this tokenizer cannot encode"):
        pv.pack_corpus(tmp_path / "c.jsonl", tmp_path / "o", tokenizer=tmp_path / "tok.json",
                       progress=False, log=lambda line: None)  # fmt: skip


def test_text_needs_one_tokenizer(corpus, tmp_path):
    d, _, tok = corpus
    with pytest.raises(ValueError, match=r"these inputs hold text: give --tokenizer"):
        pv.pack_corpus(d, tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match=r"not both"):
        pv.pack_corpus(d, tmp_path / "o", tokenizer=tok, train_vocab=300, progress=False)


def test_pre_tokenized_fine_tuning_records_keep_their_trained_flags(tmp_path):
    ids = [[5, 6, 7, 8], [9, 10], [11, 12, 13]]
    trained = [[False, False, True, True], [True, True], [False, True, True]]
    write_parquet(tmp_path / "sft.parquet", {"input_ids": ids, "trained": trained})
    report = pv.pack_corpus(tmp_path / "sft.parquet", tmp_path / "o", max_len=8, pad_id=0,
                            progress=False, log=lambda line: None)  # fmt: skip
    (a,) = load_all(tmp_path / "o")
    want = pv.materialize(pv.pack([4, 2, 3], 8), pv.TokenIds.from_sequences(ids, trained), pad_id=0)
    assert np.array_equal(a.labels, want.labels)
    assert (a.labels == -100).sum() > (a.input_ids == 0).sum()  # prompts are not targets
    assert report.manifest["tokenizer"] == {"source": "pre-tokenized", "fingerprint": None}
    assert report.manifest["corpus"]["trained_flags"] is True
    # labels that are targets: the trained tokens after each piece's first (2 + 1 + 2)
    assert report.manifest["stats"]["trained_targets"] == (a.labels != -100).sum() == 5
    plan = pv.pack([4, 2, 3], 8)
    assert report.stats == plan.stats(pv.TokenIds.from_sequences(ids, trained))
    assert report.manifest["shards"][0]["targets"] == 5


def test_a_write_error_leaves_nothing_that_looks_complete(corpus, tmp_path, monkeypatch):
    real = files_module.AtomicWriter.write

    def full_disk(self, data):
        if self.path.name == "shard-000002.parquet":
            raise_error = OSError(errno.ENOSPC, "No space left on device")
            self.abort()
            raise files_module.write_error(self.path, raise_error)
        return real(self, data)

    monkeypatch.setattr(files_module.AtomicWriter, "write", full_disk)
    out = tmp_path / "out"
    with pytest.raises(
        OSError, match=r"cannot write .*shard-000002\.parquet: No space left on device"
    ):
        _pack(corpus, out, max_len=64, rows_per_shard=10, workers=1)
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    records = out / ".packviz-work" / "shards"
    for shard in out.glob("shard-*"):  # every file under a final name is complete
        record = json.loads((records / f"{shard.name}.json").read_text())
        assert sha256_file(shard) == record["sha256"]


def test_packing_again_into_a_folder_inside_the_corpus_reads_no_shard(corpus, tmp_path):
    d, docs, _ = corpus
    out = d / "packed"
    first = _pack(corpus, out, max_len=64)
    again = _pack(corpus, out, max_len=64)
    assert again.already_complete and again.manifest == first.manifest
    assert first.stats.n_docs == len(docs)


def test_pre_tokenized_input_takes_no_tokenizer(tmp_path):
    write_parquet(tmp_path / "ids.parquet", {"input_ids": [[5, 6], [7]]})
    tok = tokenizer_file(tmp_path)
    for kw, named in (({"tokenizer": tok}, "--tokenizer"), ({"train_vocab": 300}, "--train-vocab")):
        with pytest.raises(
            ValueError,
            match=rf"ids\.parquet is pre-tokenized \(an 'input_ids' column\): its ids are used as "
            rf"they are, so {named} would do nothing; leave it out",
        ):
            pv.pack_corpus(tmp_path / "ids.parquet", tmp_path / "o", progress=False, **kw)
        assert not (tmp_path / "o").exists()


def test_blank_and_null_records_pack_as_the_library_reads_them(tmp_path):
    """The dashboard's path (`pv.read_documents` → `pv.encode` → `pv.pack` →
    `pv.materialize`) and `packviz pack` give the same rows for records with blank and
    null text (empty documents: no tokens, kept so that numbers stay record numbers)."""
    docs = documents(40, 4)
    docs[3], docs[10], docs[11], docs[25] = "", "   ", None, "\n\t"
    lines = [json.dumps({"text": d, "id": i}) for i, d in enumerate(docs)]
    data = ("\n".join(lines) + "\n").encode()
    (tmp_path / "c.jsonl").write_bytes(data)
    tok_path = tokenizer_file(tmp_path)
    tok = pv.load_tokenizer(tok_path)

    read = pv.read_documents("c.jsonl", data)
    assert len(read) == 40 and read[11] == "" and read[10] == ""
    ids = pv.encode(tok, read)
    plan = pv.pack(ids.lengths, 64)
    want = pv.materialize(plan, ids, pad_id=pv.pad_token_id(tok))

    report = pv.pack_corpus(tmp_path / "c.jsonl", tmp_path / "o", tokenizer=tok_path, max_len=64,
                            progress=False, log=lambda line: None)  # fmt: skip
    got = load_all(tmp_path / "o")
    for name in FIELDS:
        assert np.array_equal(stacked(got, name), getattr(want, name)), name
    assert report.manifest["stats"] == plan.stats().as_dict()
    assert report.stats.n_empty_docs == 4


def test_no_process_of_the_job_outlives_pack_corpus(corpus, tmp_path, child_pids):
    before = child_pids()
    report = _pack(corpus, tmp_path / "out", max_len=64, workers=2)
    assert len(report.memory["worker_peaks"]) == 2  # it did run worker processes
    assert child_pids() <= before  # the fork server and resource tracker are gone too


def test_on_a_cluster_the_budget_holds_on_every_node():
    from packviz.pipeline.run import _memory_plan

    class Cluster:  # what the memory plan asks of the Ray engine
        workers, cpus_per_task = 6, 1.0

        @staticmethod
        def node_cpus():
            return [4, 2]

    lines = []
    settings = {"rows_per_shard": 25, "max_len": 128, "train_on": None}
    mem = _memory_plan(Cluster, None, 700 * 10**6, settings, lines.append)
    # 700 MB fits 2 tasks on one node: each task asks for 2 CPUs, so the 4-CPU node runs
    # 2 at once and the 2-CPU node 1 (the budget was applied once for the whole cluster)
    assert Cluster.cpus_per_task == 2.0
    assert mem.workers == Cluster.workers == 3
    assert lines == ["memory budget 668 MiB per node fits 3 tasks at once on 2 nodes (2 CPUs each)"]
    big = _memory_plan(Cluster, None, 4 * 10**9, settings, lines.append)
    assert (big.workers, Cluster.cpus_per_task) == (6, 1.0)
