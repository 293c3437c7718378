"""The Export view: an uploaded corpus flows through to a file whose metadata carries the
plan's own settings and statistics, and that loads back bit-exactly."""

from __future__ import annotations

import json

import numpy as np
from apptest import app, errors, metrics, number

import packviz as pv

TEXT = "\n\n".join(
    f"Paragraph {i}: " + " ".join(f"word{j % 37}" for j in range(5 + 13 * (i % 9)))
    for i in range(60)
)


def test_upload_flows_through_to_export(tmp_path):
    at = app(corpus_source="Upload", max_len=128, vocab_size=512).run()
    at.file_uploader(key="corpus_files").upload("notes.txt", TEXT.encode(), "text/plain").run()
    assert not at.exception, at.exception
    assert not errors(at)
    m = metrics(at)
    assert number(m["Documents"]) == 60
    tokens = number(m["Tokens"])

    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    meta = json.loads(at.expander[0].code[0].value)
    assert meta["corpus"] == "upload: notes.txt"
    assert meta["plan"] == {
        "max_len": 128,
        "strategy": "best_fit",
        "sort": "desc",
        "overflow": "split",
        "seed": 0,
    }
    assert meta["statistics"]["input_tokens"] == tokens
    assert meta["statistics"]["packed_tokens"] == tokens
    assert meta["tokenizer_fingerprint"]

    # the download's bytes are not exposed by AppTest: build the same file the page does
    docs = pv.read_documents("notes.txt", TEXT.encode(), split="paragraph")
    tok = pv.train_tokenizer(docs, vocab_size=512, cache_dir=str(tmp_path))
    ids = pv.encode(tok, docs)
    plan = pv.pack(ids.lengths, 128)
    assert meta["statistics"]["n_rows"] == plan.n_rows
    arrays = pv.materialize(plan, ids, pad_id=pv.pad_token_id(tok))
    extra = {k: v for k, v in meta.items() if k != "plan"}
    path = tmp_path / "x.npz"
    path.write_bytes(pv.to_bytes(arrays, "npz", metadata=extra))
    back = pv.load(path)
    assert np.array_equal(back.input_ids, arrays.input_ids)
    assert int((back.doc_ids >= 0).sum()) == tokens
    assert back.metadata["plan"] == meta["plan"]  # written once, from the plan itself
    assert at.metric[0].value.endswith("MiB")
