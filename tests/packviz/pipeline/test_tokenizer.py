"""The job's tokenizer: what a trained one learns from, and when none may be given."""

from __future__ import annotations

from corpus_files import documents, write_jsonl

import packviz as pv
from packviz.pipeline import tokenizer as tokenizers
from packviz.pipeline.inputs import find_inputs, make_parts


def test_the_training_sample_stops_reading_once_full(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        write_jsonl(tmp_path / f"{name}.jsonl", documents(200, seed=ord(name)))
    files = find_inputs([str(tmp_path)])
    parts = make_parts(files, 1000)  # many parts per file
    monkeypatch.setattr(tokenizers, "TRAIN_SAMPLE_CHARS", 2500)
    read = []
    real = tokenizers.read_segment
    monkeypatch.setattr(
        tokenizers, "read_segment", lambda f, *a, **k: read.append(f.path) or real(f, *a, **k)
    )
    learned = []
    real_train = pv.train_tokenizer
    monkeypatch.setattr(
        pv, "train_tokenizer", lambda docs, **k: learned.extend(docs) or real_train(docs, **k)
    )
    spec = {"text_field": "text", "split": "paragraph"}
    (tmp_path / "w").mkdir()
    tokenizers.trained(tmp_path / "w", files, parts, spec, 300, log=lambda line: None)
    assert set(read) == {files[0].path}  # the first file holds more than the sample
    first = documents(200, seed=ord("a"))
    assert sum(map(len, learned)) == 2500
    assert learned[:-1] == first[: len(learned) - 1]
    assert first[len(learned) - 1].startswith(learned[-1])  # the last one cut at the mark
