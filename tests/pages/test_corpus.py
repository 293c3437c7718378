"""The Corpus view: its numbers are the library's; uploads and tokenizers work, and bad ones
say what is wrong and what to do; a new tokenizer repacks everything downstream."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from apptest import (
    APP,
    PAGES,
    WORDLEVEL_NO_UNK,
    WORDLEVEL_PAD_0,
    app,
    captions,
    errors,
    figures,
    markdown,
    metrics,
    number,
    plotly_array,
    records_ids,
    synthetic,
    synthetic_lengths,
    train_on,
)
from streamlit.testing.v1 import AppTest

import packviz as pv
from dashboard import corpus as dcorpus

TEXT = "\n\n".join(
    f"Paragraph {i}: " + " ".join(f"word{j % 37}" for j in range(5 + 13 * (i % 9)))
    for i in range(60)
)


def upload_page(**settings):
    at = app(corpus_source="Upload", **settings).run()
    assert not at.exception
    return at


def upload(at, name, data, mime="text/plain"):
    at.file_uploader(key="corpus_files").upload(name, data, mime).run()
    return at


def test_corpus_summary_matches_library():
    at = synthetic(max_len=512).run()
    assert not at.exception
    summary = pv.length_summary(synthetic_lengths(), 512)
    m = metrics(at)
    assert number(m["Documents"]) == summary.n_docs
    assert number(m["Tokens"]) == summary.tokens
    assert m["Median length"] == f"{summary.median:,.0f}"
    assert number(m["Longer than 512"]) == summary.over_max_len > 0
    table = at.dataframe[0].value
    assert table["document"].tolist() == summary.top_docs.tolist()
    assert int(plotly_array(figures(at)[0]["data"][0]["y"]).sum()) == summary.n_docs


def test_vocabulary_change_repacks_and_materializes():
    """A new vocabulary size gives new lengths: plans, stats and row windows follow."""
    at = app(max_len=256, vocab_size=4096).run()
    tokens_big_vocab = number(metrics(at)["Tokens"])
    at.switch_page("pages/packing.py").run()
    assert not at.exception, at.exception
    rows_big_vocab = number(metrics(at)["Rows"])

    at.switch_page("pages/corpus.py").run()
    at.select_slider(key="vocab_size").set_value(512).run()
    assert not at.exception, at.exception
    tokens = number(metrics(at)["Tokens"])
    assert tokens > tokens_big_vocab  # a smaller vocabulary needs more tokens

    at.switch_page("pages/packing.py").run()
    assert not at.exception, at.exception
    assert not errors(at)
    rows = number(metrics(at)["Rows"])
    assert rows > rows_big_vocab
    at.selectbox(key="row_pick").set_value("first").run()
    at.number_input(key="first_row").set_value(3).run()  # materializes with the new ids
    assert not at.exception, at.exception
    assert plotly_array(figures(at)[0]["data"][0]["y"]).tolist() == list(range(3, 11))

    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    meta = json.loads(at.expander[0].code[0].value)
    assert meta["statistics"]["input_tokens"] == tokens
    assert meta["statistics"]["n_rows"] == rows


def test_upload_digest_is_computed_once(monkeypatch):
    at = upload_page(vocab_size=512)
    real, hashed = dcorpus.digest, []

    def counting(*parts):
        hashed.append(sum(len(p) for p in parts))
        return real(*parts)

    monkeypatch.setattr(dcorpus, "digest", counting)
    at = upload(at, "notes.txt", TEXT.encode())
    assert not at.exception and not errors(at)
    big = len(TEXT.encode())
    assert sum(n >= big for n in hashed) == 1  # once, when the file arrived
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    at.run()
    assert sum(n >= big for n in hashed) == 1  # reruns and page changes reuse it


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.txt", b"", "empty.txt is empty"),
        ("binary.txt", bytes(range(256)) * 8, "binary.txt looks like a binary file"),
        ("latin1.txt", "café olé ñ".encode("latin-1") * 50, "latin1.txt is not UTF-8 text"),
        ("bad.jsonl", b'{"text": "ok"}\nthis is not json\n', "bad.jsonl line 2 is not valid JSON"),
        (
            "nofield.jsonl",
            b'{"body": "no text field"}\n',
            "nofield.jsonl line 1 has no field 'text'",
        ),
    ],
)
def test_bad_uploads_show_error(name, data, says):
    at = upload(upload_page(), name, data)
    assert not at.exception, at.exception
    assert [e for e in errors(at) if says in e], errors(at)


def test_malformed_tokenizer_shows_error():
    at = app(tokenizer_source="Upload tokenizer.json").run()
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", b'{"model": 3', "application/json"
    ).run()
    assert not at.exception
    assert [e for e in errors(at) if "not a valid tokenizer.json" in e], errors(at)


def test_tokenizer_that_cannot_encode_shows_error():
    at = app(tokenizer_source="Upload tokenizer.json").run()
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", WORDLEVEL_NO_UNK, "application/json"
    ).run()
    assert not at.exception, at.exception
    shown = errors(at)
    assert [e for e in shown if "[UNK]" in e and "Train byte-level BPE" in e], shown
    for page in PAGES[1:]:  # every page stops with the same message
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert errors(at) == shown


def test_tokenizer_library_exception_shows_error(monkeypatch):
    """The tokenizers library raises bare ``Exception``: still a message, not a traceback."""

    def failing_encode(*args, **kwargs):
        raise Exception("WordLevel error: Missing [UNK] token from the vocabulary")

    monkeypatch.setattr(pv, "encode", failing_encode)
    at = app().run()
    assert not at.exception, at.exception
    assert [e for e in errors(at) if "Missing [UNK] token" in e and "Train byte-level BPE" in e]


def test_no_upload_yet_says_what_to_do():
    assert [e for e in errors(upload_page()) if e.startswith("No files uploaded yet")]


def test_upload_jsonl_text_field():
    lines = "\n".join(json.dumps({"body": f"record {i} " * (i + 1)}) for i in range(20))
    at = upload(upload_page(text_field="body", vocab_size=512), "data.jsonl", lines.encode())
    assert not at.exception and not errors(at)
    assert number(metrics(at)["Documents"]) == 20


def test_upload_csv_and_parquet():
    import pandas as pd

    df = pd.DataFrame({"text": [f"row {i} " * (i + 2) for i in range(15)]})
    at = upload(upload_page(vocab_size=512), "t.csv", df.to_csv(index=False).encode(), "text/csv")
    assert not errors(at) and number(metrics(at)["Documents"]) == 15
    buf = io.BytesIO()
    df.to_parquet(buf)
    at = upload(
        upload_page(vocab_size=512), "t.parquet", buf.getvalue(), "application/octet-stream"
    )
    assert not at.exception and not errors(at)
    assert number(metrics(at)["Documents"]) == 15


def test_uploads_can_be_removed_and_say_they_are_in_use():
    at = upload(upload_page(vocab_size=512), "notes.txt", TEXT.encode())
    assert not at.exception and not errors(at)
    assert "**notes.txt**" in markdown(at) and "in use" in markdown(at)
    at.switch_page("pages/packing.py").run()
    at.switch_page("pages/corpus.py").run()  # the uploader empties; the file stays listed
    assert "**notes.txt**" in markdown(at)
    at = upload(at, "more.txt", TEXT.encode()[:2000])  # a second file adds to the first
    assert "**notes.txt**" in markdown(at) and "**more.txt**" in markdown(at)
    at.button(key="remove_upload_0").click().run()
    assert not at.exception
    assert "**notes.txt**" not in markdown(at) and "**more.txt**" in markdown(at)
    at.button(key="remove_upload_0").click().run()
    assert [e for e in errors(at) if e.startswith("No files uploaded yet")]


def test_tokenizer_in_use_is_named_with_its_special_tokens():
    at = app().run()
    shown = markdown(at)
    assert "**Tokenizer in use:** byte-level BPE trained on this corpus, 4,096 tokens" in shown
    assert "<|endoftext|> (id 0), appended to every document" in shown
    assert "**pad:** <|pad|> (id 1)" in shown
    at = app(tokenizer_source="Upload tokenizer.json").run()
    at.file_uploader(key="tokenizer_file").upload(
        "mytok.json", WORDLEVEL_PAD_0, "application/json"
    ).run()
    shown = markdown(at)
    assert "uploaded mytok.json, 6 tokens" in shown
    assert "**end-of-text:** none" in shown and "**pad:** [PAD] (id 0)" in shown
    at.button(key="remove_tokenizer").click().run()
    assert [e for e in errors(at) if e.startswith("Upload a tokenizer.json")]


@pytest.mark.parametrize("max_len", [1, 16, 256, 100_000])
def test_histogram_axis_spans_the_data_and_the_marks(max_len):
    """Annotations on a log axis take log10 positions: the axis must never run out to
    10^99 (it did for marks below ~300)."""
    at = synthetic(max_len=max_len).run()
    fig = figures(at)[0]
    lo, hi = fig["layout"]["xaxis"]["range"]
    lengths = synthetic_lengths()
    assert lo <= np.log10(min(lengths.min(), max_len)) and hi >= np.log10(
        max(lengths.max(), max_len)
    )
    assert hi - lo < 7
    for a in fig["layout"]["annotations"]:
        assert lo <= a["x"] <= hi


# --------------------------------------------------------------------------- records


def _preview(at) -> str:
    return [c for c in captions(at) if c.startswith("Record ")][0]


def test_builtin_chat_corpus_is_records_and_train_on_follows_the_kinds():
    at = app(builtin_name="python-docs-chat", doc_index=3).run()
    assert not at.exception and not errors(at)
    assert "**Records:** 79 chats · **train on:** assistant turns" in markdown(at)
    box = at.sidebar.selectbox(key="train_on")
    assert box.options == ["all tokens", "assistant turns", "last assistant turn"]
    assert box.value == "assistant" and not box.disabled
    assert "special tokens <|im_start|>, <|im_end|>" in markdown(at)
    for choice in ("assistant", "last_assistant"):
        train_on(at, choice)
        _, ids = records_ids("python-docs-chat", choice)
        assert number(metrics(at)["Tokens"]) == ids.n_tokens
        flags = ids.trained[ids.offsets[3] : ids.offsets[4]]
        assert _preview(at).startswith(f"Record 3: {flags.size:,} tokens")
        assert f"; {int(flags.sum()):,} trained" in _preview(at)
        html = at.get("html")[0].proto.body
        assert html.count("· trained") == int(flags[:400].sum())
    train_on(at, "all")
    assert "trained" not in _preview(at)  # every token trained: nothing to tell apart

    at.selectbox(key="builtin_name").set_value("python-docs-qa").run()
    box = at.sidebar.selectbox(key="train_on")
    assert box.options == ["all tokens", "completions"]
    assert box.value == "all"  # the kept choice applies where the corpus allows it
    at.selectbox(key="builtin_name").set_value("python-docs").run()
    box = at.sidebar.selectbox(key="train_on")
    assert box.options == ["all tokens"] and box.disabled
    assert "**Records:**" not in markdown(at)


def test_qa_corpus_opens_on_completions():
    at = app(builtin_name="python-docs-qa").run()
    assert at.sidebar.selectbox(key="train_on").value == "completion"
    assert "**Records:** 79 prompt/completion records · **train on:** completions" in markdown(at)
    assert at.query_params.get("builtin_name") == "python-docs-qa"


def test_train_on_travels_in_the_url():
    at = app(builtin_name="python-docs-chat").run()
    train_on(at, "last_assistant")
    assert at.query_params["train_on"] == "last_assistant"
    fresh = AppTest.from_file(APP, default_timeout=120)
    for k, v in dict(at.query_params).items():
        fresh.query_params[k] = v
    fresh.run()
    assert fresh.sidebar.selectbox(key="train_on").value == "last_assistant"


CHATS = pv.load_builtin_records("python-docs-chat")[:12]
CHAT_LINES = "\n".join(json.dumps(r) for r in CHATS)


def test_uploaded_chats_are_counted_by_kind():
    at = upload(upload_page(vocab_size=512), "chats.jsonl", CHAT_LINES.encode())
    assert not at.exception and not errors(at)
    assert "**Records:** 12 chats" in markdown(at)
    assert number(metrics(at)["Documents"]) == 12
    assert at.sidebar.selectbox(key="train_on").value == "assistant"


def test_uploaded_csv_chats_and_prompt_completion_parquet():
    import pandas as pd

    df = pd.DataFrame({"messages": [json.dumps(r["messages"]) for r in CHATS]})
    at = upload(upload_page(vocab_size=512), "c.csv", df.to_csv(index=False).encode(), "text/csv")
    assert not at.exception and not errors(at)
    assert "**Records:** 12 chats" in markdown(at)
    qa = pd.DataFrame({"prompt": ["2+2?", "3+3?"], "completion": [" 4", " 6"]})
    buf = io.BytesIO()
    qa.to_parquet(buf)
    at = upload(
        upload_page(vocab_size=512), "qa.parquet", buf.getvalue(), "application/octet-stream"
    )
    assert not at.exception and not errors(at)
    assert "**Records:** 2 prompt/completion records" in markdown(at)
    assert at.sidebar.selectbox(key="train_on").options == ["all tokens", "completions"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (
            '{"messages": [{"role": "tool", "content": "x"}]}',
            "bad.jsonl line 13: message 0 has role 'tool'",
        ),
        ('{"messages": [{"role": "user"}]}', "bad.jsonl line 13"),
        (
            '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}',
            "bad.jsonl line 13: assistant message 1 is empty",
        ),
        (
            '{"messages": [{"role": "user", "content": "Hi"}]}',
            "bad.jsonl line 13 has no assistant turn",
        ),
    ],
)
def test_bad_records_are_named_in_an_error_box(line, says):
    at = upload(upload_page(vocab_size=512), "bad.jsonl", (CHAT_LINES + "\n" + line).encode())
    assert not at.exception, at.exception
    assert [e for e in errors(at) if says in e], errors(at)


LLAMA_CONFIG = {
    "chat_template": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
    "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}",
    "bos_token": "<|begin_of_text|>",
    "eos_token": "<|eot_id|>",
}


def test_chat_template_from_a_tokenizer_config():
    at = app(builtin_name="python-docs-chat", template_source="Upload tokenizer_config.json").run()
    assert [e for e in errors(at) if "Upload a tokenizer_config.json" in e]
    config = json.dumps(LLAMA_CONFIG).encode()
    at.file_uploader(key="template_file").upload(
        "tokenizer_config.json", config, "application/json"
    )
    at.run()
    assert not at.exception and not errors(at)
    assert "**chat template:** chat template of tokenizer_config.json" in markdown(at)
    assert "special tokens <|begin_of_text|>, <|eot_id|>" in markdown(at)
    # the same records through the library, with that template
    recs = pv.load_builtin_records("python-docs-chat")
    template = pv.load_chat_template(config)
    texts = [r.text for r in pv.render_records(recs, train_on="all", chat_template=template)]
    tok = pv.train_tokenizer(
        texts,
        vocab_size=4096,
        cache_dir=False,
        extra_special_tokens=("<|begin_of_text|>", "<|eot_id|>"),
    )
    ids = pv.encode_records(tok, recs, train_on="assistant", chat_template=template)
    assert number(metrics(at)["Tokens"]) == ids.n_tokens
    assert f"; {int(ids.trained[: ids.offsets[1]].sum()):,} trained" in _preview(at)
    at.button(key="remove_template").click().run()
    assert [e for e in errors(at) if "Upload a tokenizer_config.json" in e]


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (b"{", "the tokenizer config is not valid JSON"),
        (b'{"eos_token": "</s>"}', "has no chat_template"),
        (
            json.dumps({"chat_template": "{{ messages.__class__.__mro__ }}"}).encode(),
            "record 0: the chat template of the tokenizer config tried to reach outside its sandbox",
        ),
    ],
)
def test_bad_chat_templates_say_why(config, says):
    at = app(builtin_name="python-docs-chat", template_source="Upload tokenizer_config.json").run()
    at.file_uploader(key="template_file").upload("tc.json", config, "application/json").run()
    assert not at.exception, at.exception
    assert [e for e in errors(at) if says in e], errors(at)


def test_slow_encoding_is_offered_then_runs_in_a_worker(monkeypatch):
    from dashboard import records

    monkeypatch.setattr(records, "ENCODE_SECONDS_PER_CHAR", 1e-3)
    at = app(builtin_name="python-docs-qa").run()
    assert not at.exception and not errors(at)
    offer = [b for b in at.button if b.label.startswith("Encode the records (about")]
    assert offer and not metrics(at)  # nothing computed yet
    assert "Encoding 79 records (train on completions)" in markdown(at)
    offer[0].click().run(timeout=120)
    assert not at.exception and not errors(at)
    _, ids = records_ids("python-docs-qa", "completion")
    assert number(metrics(at)["Tokens"]) == ids.n_tokens
