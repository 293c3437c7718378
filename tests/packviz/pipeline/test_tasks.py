"""What tasks keep between calls in one process: never a map of a file that was replaced,
nothing after the job."""

from __future__ import annotations

import os

import numpy as np
from corpus_files import documents, tokenizer_file, write_jsonl

import packviz as pv
from packviz.pipeline import tasks


def test_a_replaced_file_is_read_again_even_with_the_same_size_and_time(tmp_path):
    (tmp_path / tasks.JOB_ID).write_text("job-1")
    path = tmp_path / "pass2.json"
    path.write_text('{"n": 1}')
    assert tasks._cached(str(tmp_path), "pass2.json", lambda p: p.read_text()) == '{"n": 1}'
    st = path.stat()
    fresh = tmp_path / "new.json"
    fresh.write_text('{"n": 2}')  # same size
    os.utime(fresh, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same time
    os.replace(fresh, path)  # another inode: a file written anew, as runs write them
    assert tasks._cached(str(tmp_path), "pass2.json", lambda p: p.read_text()) == '{"n": 2}'
    tasks.forget()


def test_another_job_in_the_same_folder_drops_everything_cached(tmp_path):
    (tmp_path / tasks.JOB_ID).write_text("job-1")
    (tmp_path / "a").write_text("x")
    tasks._cached(str(tmp_path), "a", lambda p: "from job 1")
    (tmp_path / tasks.JOB_ID).write_text("job-2")
    assert tasks._cached(str(tmp_path), "a", lambda p: "from job 2") == "from job 2"
    tasks.forget()
    assert tasks._CACHE == {}


def test_nothing_stays_cached_after_pack_corpus(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", documents(50, 1))
    tok = tokenizer_file(tmp_path)
    out = tmp_path / "out"
    pv.pack_corpus(tmp_path / "a.jsonl", out, tokenizer=tok, max_len=64, workers=1,
                   progress=False, log=lambda line: None)  # fmt: skip
    assert tasks._CACHE == {}  # no map keeps the deleted token store alive
    write_jsonl(tmp_path / "b.jsonl", documents(30, 2))
    again = pv.pack_corpus(tmp_path / "b.jsonl", out, tokenizer=tok, max_len=64, workers=1,
                           overwrite=True, progress=False, log=lambda line: None)  # fmt: skip
    fresh = pv.pack_corpus(tmp_path / "b.jsonl", tmp_path / "fresh", tokenizer=tok, max_len=64,
                           workers=1, progress=False, log=lambda line: None)  # fmt: skip
    assert again.stats == fresh.stats
    for a, b in zip(again.shards, fresh.shards, strict=True):
        assert np.array_equal(pv.load(a).input_ids, pv.load(b).input_ids)
