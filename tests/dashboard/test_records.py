"""dashboard.records: the Train on choices are exactly what pv.encode_records accepts, and
uploads become records only when they hold fine-tuning records."""

from __future__ import annotations

import json

import pytest

import packviz as pv
from dashboard import records

EXAMPLES = {
    "chat": {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    },
    "prompt_completion": {"prompt": "2+2?", "completion": " 4"},
    "text": {"text": "plain words"},
}


@pytest.fixture(scope="module")
def tokenizer():
    texts = [r.text for r in pv.render_records(list(EXAMPLES.values()), train_on="all")]
    return pv.train_tokenizer(
        texts * 4, vocab_size=300, cache_dir=False, extra_special_tokens=pv.CHATML_SPECIAL_TOKENS
    )


@pytest.mark.parametrize("kind", list(EXAMPLES))
@pytest.mark.parametrize("train_on", pv.TRAIN_ON)
def test_choices_are_what_the_library_accepts(tokenizer, kind, train_on):
    offered = train_on in records.train_on_choices({kind: 1})
    try:
        pv.encode_records(tokenizer, [EXAMPLES[kind]], train_on=train_on)
    except pv.CorpusError as exc:
        assert not offered, exc
        assert "does not apply" in str(exc)
    else:
        assert offered


def test_choices_of_mixed_corpora_and_documents():
    assert records.train_on_choices({"chat": 3, "prompt_completion": 1}) == ("all",)
    assert records.train_on_choices({"chat": 3, None: 1}) == ("all",)
    assert records.train_on_choices(None) == ("all",)
    assert records.natural_train_on({"chat": 3}) == "assistant"
    assert records.natural_train_on({"prompt_completion": 3}) == "completion"
    assert records.natural_train_on({"chat": 3, "text": 1}) == "all"
    # a kept choice applies where the corpus allows it, and is not forgotten elsewhere
    assert records.effective_train_on("last_assistant", {"chat": 2}) == "last_assistant"
    assert records.effective_train_on("last_assistant", {"prompt_completion": 2}) == "completion"
    assert records.effective_train_on(None, {"chat": 2}) == "assistant"


def test_kinds_are_counted_and_named():
    recs = [EXAMPLES["chat"], EXAMPLES["chat"], EXAMPLES["text"], {"body": "x"}]
    kinds = records.count_kinds(recs)
    assert kinds == {"chat": 2, "text": 1, None: 1}
    assert records.kinds_text(kinds) == "2 chats, 1 text record, 1 unrecognised record"
    assert records.kinds_text({"prompt_completion": 1}) == "1 prompt/completion record"


def test_uploads_with_finetuning_records_become_records():
    chats = "\n".join(json.dumps(EXAMPLES["chat"]) for _ in range(3)).encode()
    notes = b"First paragraph.\n\nSecond paragraph."
    found = records.uploaded("k1", "paragraph", [("c.jsonl", chats), ("n.txt", notes)])
    assert found.kinds == {"chat": 3, "text": 2}
    assert [r.where for r in found.records] == [
        "c.jsonl line 1",
        "c.jsonl line 2",
        "c.jsonl line 3",
        "n.txt document 1",
        "n.txt document 2",
    ]
    assert found.records[4].fields == {"text": "Second paragraph."}


def test_uploads_of_documents_stay_documents():
    lines = b'{"text": "a"}\n{"body": "b"}\n'
    assert records.uploaded("k2", "paragraph", [("d.jsonl", lines), ("n.txt", b"x")]) is None


def test_encoding_is_predicted_from_the_rendered_characters():
    assert records.encode_seconds(["ab", "cde"]) == pytest.approx(
        5 * records.ENCODE_SECONDS_PER_CHAR
    )
