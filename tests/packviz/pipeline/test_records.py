"""Fine-tuning records through `packviz pack`: the same rows and labels as the library's
`encode_records` + `pack` + `materialize`, the same bytes for any worker count, the
rendering settings in the manifest, and clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from corpus_files import documents, load_all, stacked, tokenizer_file, tree_bytes, write_parquet

import packviz as pv
from packviz.corpus import CorpusError

FIELDS = ("input_ids", "labels", "position_ids", "doc_ids")


def _prompt_completion(n: int, seed: int) -> list[dict]:
    words = documents(2 * n, seed)
    return [{"prompt": f"Q: {words[2 * i]}\n", "completion": f"A: {words[2 * i + 1]}"}
            for i in range(n)]  # fmt: skip


def _chats(n: int, seed: int) -> list[dict]:
    words = documents(3 * n, seed)
    out = []
    for i in range(n):
        messages = [
            {"role": "user", "content": words[3 * i]},
            {"role": "assistant", "content": words[3 * i + 1]},
        ]
        if i % 3 == 0:
            messages += [{"role": "user", "content": "more"},
                         {"role": "assistant", "content": words[3 * i + 2]}]  # fmt: skip
        out.append({"messages": messages, "id": i})
    return out


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _library(tok_path, records, train_on, max_len, **kw):
    tok = pv.load_tokenizer(tok_path)
    ids = pv.encode_records(tok, records, train_on=train_on, **kw)
    plan = pv.pack(ids.lengths, max_len)
    return plan, ids, pv.materialize(plan, ids, pad_id=pv.pad_token_id(tok))


def _pack(inputs, out, tok, **kw):
    return pv.pack_corpus(inputs, out, tokenizer=tok, progress=False, log=lambda line: None, **kw)


def test_prompt_completion_records_are_the_librarys_rows_and_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "2000")  # many parts
    tok = tokenizer_file(tmp_path)
    a, b = _prompt_completion(70, 1), _prompt_completion(50, 2)
    _jsonl(tmp_path / "a.jsonl", a)
    write_parquet(tmp_path / "b.parquet", {"prompt": [r["prompt"] for r in b],
                  "completion": [r["completion"] for r in b]}, row_group_size=16)  # fmt: skip
    report = _pack([tmp_path / "a.jsonl", tmp_path / "b.parquet"], tmp_path / "o", tok,
                   train_on="completion", max_len=96, rows_per_shard=7, workers=1)  # fmt: skip
    plan, ids, want = _library(tok, a + b, "completion", 96)
    got = load_all(tmp_path / "o")
    for name in FIELDS:
        assert np.array_equal(stacked(got, name), getattr(want, name)), name
    assert (stacked(got, "labels") == -100).sum() > (stacked(got, "doc_ids") == -1).sum()
    m = report.manifest
    assert m["stats"] == plan.stats(ids).as_dict()
    assert m["stats"]["trained_targets"] < plan.stats().trained_targets  # prompts are not
    assert m["corpus"]["trained_flags"] is True
    assert m["corpus"]["rendering_settings"] == pv.rendering_settings(
        pv.load_tokenizer(tok), train_on="completion"
    )
    assert m["settings"]["train_on"] == "completion"


def test_chats_with_a_template_give_the_same_bytes_for_one_or_two_workers(
    tmp_path, monkeypatch, child_pids
):
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "3000")
    before = child_pids()
    tok = tokenizer_file(tmp_path)
    chats = _chats(90, 3)
    _jsonl(tmp_path / "chats.jsonl", chats)
    template = tmp_path / "t.jinja"
    template.write_text(
        "{% for m in messages %}<{{ m['role'] }}>{% if m['role'] == 'assistant' %}"
        "{% generation %}{{ m['content'] }}</s>{% endgeneration %}{% else %}"
        "{{ m['content'] }}{% endif %}\n{% endfor %}"
    )
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        runs[workers] = _pack(tmp_path / "chats.jsonl", out, tok, train_on="last_assistant",
                              chat_template=template, max_len=128, rows_per_shard=5,
                              workers=workers)  # fmt: skip
    assert tree_bytes(tmp_path / "w1") == tree_bytes(tmp_path / "w2")
    assert child_pids() <= before  # the template's child rendered in this process, then went
    loaded = pv.chat.load_chat_template(template)
    _, ids, want = _library(tok, chats, "last_assistant", 128, chat_template=loaded)
    got = load_all(tmp_path / "w1")
    for name in FIELDS:
        assert np.array_equal(stacked(got, name), getattr(want, name)), name
    rendering = runs[1].manifest["corpus"]["rendering_settings"]
    assert (
        rendering["template_sha256"]
        == pv.rendering_settings(train_on="last_assistant", chat_template=loaded)["template_sha256"]
    )
    assert rendering["train_on"] == "last_assistant"


def _tokenizer_with_a_config(tmp_path, template: str):
    """A tokenizer file with a tokenizer_config.json holding ``template`` beside it."""
    config = {"chat_template": template, "eos_token": "<|endoftext|>"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    return tokenizer_file(tmp_path)


def test_the_chat_template_beside_the_tokenizer_is_used(tmp_path):
    tok = _tokenizer_with_a_config(
        tmp_path, "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    )
    chats = _chats(12, 4)
    _jsonl(tmp_path / "c.jsonl", chats)
    report = _pack(tmp_path / "c.jsonl", tmp_path / "o", tok, train_on="all", max_len=256)
    loaded = pv.chat.load_chat_template(tmp_path / "tokenizer_config.json")
    _, _, want = _library(tok, chats, "all", 256, chat_template=loaded)
    assert np.array_equal(stacked(load_all(tmp_path / "o"), "input_ids"), want.input_ids)
    assert report.manifest["corpus"]["trained_flags"] is False  # all: every token trained
    assert "tokenizer_config.json" in report.manifest["corpus"]["rendering_settings"]["template"]


def test_chatml_names_the_built_in_template_over_the_one_beside_the_tokenizer(tmp_path):
    tok = _tokenizer_with_a_config(
        tmp_path, "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    )
    chats = _chats(9, 6)
    _jsonl(tmp_path / "c.jsonl", chats)
    report = _pack(tmp_path / "c.jsonl", tmp_path / "o", tok, train_on="assistant",
                   chat_template="chatml", max_len=256)  # fmt: skip
    _, _, want = _library(tok, chats, "assistant", 256)  # the library's default: ChatML
    got = load_all(tmp_path / "o")
    assert np.array_equal(stacked(got, "input_ids"), want.input_ids)
    assert np.array_equal(stacked(got, "labels"), want.labels)
    assert report.manifest["corpus"]["rendering_settings"]["template"] == (
        "the built-in ChatML template"
    )


def test_a_bad_record_is_named_by_its_line_in_a_later_part(tmp_path, monkeypatch):
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "1500")
    tok = tokenizer_file(tmp_path)
    records = _prompt_completion(80, 5)
    records[61] = {"prompt": "no completion here"}
    _jsonl(tmp_path / "a.jsonl", records)
    with pytest.raises(
        CorpusError, match=r"a\.jsonl line 62 has no 'completion' \(its fields: 'prompt'\)"
    ):
        _pack(tmp_path / "a.jsonl", tmp_path / "o", tok, train_on="completion", workers=1)
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_records_refuse_what_does_not_fit(tmp_path):
    tok = tokenizer_file(tmp_path)
    _jsonl(tmp_path / "a.jsonl", _prompt_completion(5, 1))
    (tmp_path / "n.txt").write_text("plain text")
    with pytest.raises(CorpusError, match=r"n\.txt holds documents, not records; --train-on"):
        _pack([tmp_path / "a.jsonl", tmp_path / "n.txt"], tmp_path / "o", tok, train_on="all")
    with pytest.raises(ValueError, match=r"--train-on needs the model's tokenizer"):
        pv.pack_corpus(tmp_path / "a.jsonl", tmp_path / "o", train_vocab=300,
                       train_on="completion", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"--chat-template renders fine-tuning records"):
        _pack(tmp_path / "a.jsonl", tmp_path / "o", tok, chat_template=tmp_path / "x.jinja")
    with pytest.raises(ValueError, match=r"train_on"):
        _pack(tmp_path / "a.jsonl", tmp_path / "o", tok, train_on="everything")
    assert not (tmp_path / "o").exists()


def test_the_command_line_takes_the_same_options(tmp_path):
    from packviz.cli import main

    tok = tokenizer_file(tmp_path)
    records = _prompt_completion(30, 6)
    _jsonl(tmp_path / "a.jsonl", records)
    argv = ["pack", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "o"), "--tokenizer",
            str(tok), "--train-on", "completion", "--max-len", "64", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    _, _, want = _library(tok, records, "completion", 64)
    assert np.array_equal(stacked(load_all(tmp_path / "o"), "labels"), want.labels)
