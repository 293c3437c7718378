"""packviz.records: trained flags line up with the tokenizer's own offsets (as
transformers' assistant masks do), from dicts and from files alike; every bad record is
an error that names it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from chat_tokenizers import CHAT, bpe, hf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import packviz as pv
from packviz._reference import reference_token_flags
from packviz.files import Record

EOS = "<|endoftext|>"


def _flags(ids: pv.TokenIds, i: int) -> list[bool]:
    return ids.trained[ids.offsets[i] : ids.offsets[i + 1]].tolist()


@pytest.mark.parametrize("trim", [None, False, True])
def test_chat_flags_equal_transformers_assistant_masks(trim):
    """The tokenizer's own offsets and transformers' overlap rule: the same ids and the
    same flags as ``apply_chat_template(return_assistant_tokens_mask=True)``, with and
    without ``trim_offsets`` (zero-width whitespace tokens) and multi-byte characters."""
    tok = hf(trim)
    want = tok.apply_chat_template(
        CHAT, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    for tokenizer in (tok, bpe(trim)):  # transformers' tokenizer, or the bare one
        ids = pv.encode_records(tokenizer, [{"messages": CHAT}], train_on="assistant")
        assert ids.values[:-1].tolist() == want["input_ids"]
        assert pv.decode_tokens(bpe(), ids.values[-1:]) == [EOS]
        assert _flags(ids, 0) == [bool(m) for m in want["assistant_masks"]] + [False]


def test_last_assistant_trains_only_the_last_turn():
    tok = bpe()
    every = pv.encode_records(tok, [{"messages": CHAT}], train_on="assistant")
    last = pv.encode_records(tok, [{"messages": CHAT}], train_on="last_assistant")
    np.testing.assert_array_equal(every.values, last.values)
    assert (every.trained >= last.trained).all() and 0 < last.n_trained < every.n_trained
    trained = pv.decode_tokens(tok, last.values[last.trained])
    assert "".join(trained) == "Hello   world!<|im_end|>"


#: Qwen3-style: reasoning (<think>…</think>) stripped from every assistant turn but the
#: last (the real Qwen3 template does this for turns before the last user query).
STRIPS_THINKING = (
    "{% for m in messages %}{% if m.role == 'assistant' %}"
    "{% set c = m.content.split('</think>')[-1].lstrip('\\n') if not loop.last else m.content %}"
    "{{ '<|im_start|>assistant\\n' + c + '<|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
)
#: Only the last assistant turn is shown; earlier ones are left out.
LAST_ANSWER_ONLY = (
    "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}"
    "{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
)
THINKING_CHAT = [
    *CHAT[:2],
    {"role": "assistant", "content": "<think>hmm, café</think>\n" + CHAT[2]["content"]},
    *CHAT[3:],
]


@pytest.mark.parametrize("template", [STRIPS_THINKING, LAST_ANSWER_ONLY])
@pytest.mark.parametrize("trim", [None, True])
def test_last_assistant_lets_the_template_change_earlier_turns(template, trim):
    """A template that strips reasoning from earlier assistant turns, or leaves them out,
    still trains the last turn under 'last_assistant': exactly the tokens whose offsets
    overlap its content and the end of turn (the slow reference, token by token)."""
    tok = bpe(trim)
    ids = pv.encode_records(
        tok, [{"messages": THINKING_CHAT}], train_on="last_assistant", chat_template=template
    )
    text = pv.render_chat(THINKING_CHAT, template, find_spans=False).text
    assert "<think>" not in text  # the earlier turn was changed (or dropped)
    content = THINKING_CHAT[-1]["content"] + "<|im_end|>"
    start = text.rindex(content)
    enc = tok.encode(text, add_special_tokens=False)
    expected = reference_token_flags(enc.offsets, [(start, start + len(content))])
    assert ids.values.tolist() == enc.ids + [tok.token_to_id(EOS)]
    assert _flags(ids, 0) == expected + [False]
    assert "".join(pv.decode_tokens(bpe(), ids.values[ids.trained])) == content
    # every turn cannot be trained: the message names the turn and the way out
    with pytest.raises(pv.CorpusError) as err:
        pv.encode_records(
            tok, [{"messages": THINKING_CHAT}], train_on="assistant", chat_template=template
        )
    message = str(err.value)
    assert "record 0: assistant turn 0 (message 2) cannot be found" in message
    assert "earlier turn" in message and "train_on='last_assistant'" in message


def test_last_assistant_still_needs_the_last_turn_unchanged():
    upper = (
        "{% for m in messages %}{{ m.role + ': ' + (m.content | upper if m.role == "
        "'assistant' else m.content) + '<|im_end|>' }}{% endfor %}"
    )
    with pytest.raises(pv.CorpusError, match=r"assistant turn 1 \(message 4\) cannot be found"):
        pv.encode_records(
            bpe(), [{"messages": CHAT}], train_on="last_assistant", chat_template=upper
        )


#: Two generation blocks per assistant turn (the content, then the end of the turn) and
#: none for other messages.
TWO_BLOCKS = (
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' }}"
    "{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
    "{% generation %}{{ '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ m.content + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}"
)


def test_last_assistant_takes_every_block_of_the_last_turn():
    """Not the last generation block: a template may mark several per turn."""
    tok = bpe()
    for messages in (CHAT, CHAT + [{"role": "user", "content": "More?"}]):
        rec = [{"messages": messages}]
        last = pv.encode_records(tok, rec, train_on="last_assistant", chat_template=TWO_BLOCKS)
        every = pv.encode_records(tok, rec, train_on="assistant", chat_template=TWO_BLOCKS)
        assert "".join(pv.decode_tokens(tok, last.values[last.trained])) == (
            "Hello   world!<|im_end|>"
        )
        assert tok.decode(every.values[every.trained].tolist(), skip_special_tokens=False) == (
            " résumé ✓ — naïve  x<|im_end|>Hello   world!<|im_end|>"
        )
        # the same as the built-in ChatML, whose one block per turn holds both
        rendered = pv.render_records(rec, train_on="last_assistant", chat_template=TWO_BLOCKS)[0]
        chatml = pv.render_records(rec, train_on="last_assistant")[0]
        assert [rendered.text[s:e] for s, e in rendered.spans] == ["Hello   world!", "<|im_end|>"]
        assert [chatml.text[s:e] for s, e in chatml.spans] == ["Hello   world!<|im_end|>"]


def test_last_assistant_refuses_blocks_it_cannot_attribute():
    """A template that marks whatever message is last: the blocks of earlier turns
    change once later messages follow."""
    last_marked = (
        "{% for m in messages %}{% if loop.last %}{% generation %}{{ m.content }}"
        "{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}"
    )
    rec = [{"messages": CHAT[1:]}]
    with pytest.raises(pv.CorpusError, match="^record 0: .*marks earlier turns differently"):
        pv.render_records(rec, train_on="last_assistant", chat_template=last_marked)
    assistant_only = "{% for m in messages %}{{ m.content }}{% if m.role == 'assistant' %}{% generation %}x{% endgeneration %}{% endif %}{% endfor %}"
    rec = [
        {
            "messages": CHAT[:3]
            + [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
        }
    ]
    spans = pv.render_records(rec, train_on="last_assistant", chat_template=assistant_only)[0].spans
    assert len(spans) == 1


def test_the_same_records_render_the_same_whatever_the_day(monkeypatch):
    """``strftime_now`` reports ``today`` (fixed by default), and the rendering settings
    say which day it was."""
    import datetime

    from packviz import _sandbox

    dated = "{{ strftime_now('%d %b %Y') }}|" + pv.CHATML
    rec = [{"messages": CHAT}]
    first = pv.encode_records(bpe(), rec, train_on="assistant", chat_template=dated)

    class Tomorrow(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2030, 1, 2)

    monkeypatch.setattr(_sandbox.datetime, "datetime", Tomorrow)
    again = pv.encode_records(bpe(), rec, train_on="assistant", chat_template=dated)
    np.testing.assert_array_equal(first.values, again.values)
    text = pv.render_records(rec, train_on="all", chat_template=dated)[0].text
    assert text.startswith("26 Jul 2024|")
    other = pv.render_records(rec, train_on="all", chat_template=dated, today="2025-03-01")
    assert other[0].text.startswith("01 Mar 2025|")
    settings = pv.rendering_settings(bpe(), train_on="assistant", chat_template=dated)
    assert settings["today"] == "2024-07-26" and settings["template"] == "the chat template"
    assert settings == json.loads(json.dumps(settings))  # JSON values, for metadata
    changed = pv.rendering_settings(
        bpe(), train_on="assistant", chat_template=dated, today="2025-03-01"
    )
    assert {k for k in settings if settings[k] != changed[k]} == {"today"}
    assert pv.rendering_settings(train_on="all")["template_sha256"] != settings["template_sha256"]


def test_the_first_bad_record_of_a_batch_is_the_error():
    """Chats render together, yet a bad chat before a bad record of another kind is
    the one reported (and the other way round)."""
    bad_chat = {"messages": [{"role": "user", "content": "boom"}]}
    template = "{% if messages[0].content == 'boom' %}{{ raise_exception('no') }}{% endif %}x"
    recs = [{"messages": HI}, bad_chat, {"messages": HI, "extra": 1}, {"id": 3}]
    with pytest.raises(pv.CorpusError, match="^record 1: .*failed to render it"):
        pv.render_records(recs, train_on="all", chat_template=template)
    with pytest.raises(pv.CorpusError, match="^record 1 is not a fine-tuning record"):
        pv.render_records([recs[0], recs[3], bad_chat], train_on="all", chat_template=template)


texts = st.text("ab ✓é\n<|>", max_size=12)


@given(texts, texts.filter(bool), st.sampled_from([None, False, True]))
def test_prompt_completion_flags_follow_the_offsets(prompt, completion, trim):
    """Tokenized once as prompt + completion; a token is trained when its characters
    overlap the completion (the slow reference, token by token), and the end of text
    after the completion is trained too."""
    tok = bpe(trim)
    record = [{"prompt": prompt, "completion": completion}]
    enc = tok.encode(prompt + completion, add_special_tokens=False)
    span = [(len(prompt), len(prompt + completion))]
    expected = reference_token_flags(enc.offsets, span)
    if not any(expected):  # e.g. a blank completion whose offsets are trimmed away
        with pytest.raises(pv.CorpusError, match="record 0: the completion renders to zero"):
            pv.encode_records(tok, record, train_on="completion")
        return
    ids = pv.encode_records(tok, record, train_on="completion")
    assert ids.values.tolist() == enc.ids + [tok.token_to_id(EOS)]
    assert _flags(ids, 0) == expected + [True]


def test_a_boundary_token_is_trained_and_no_piece_is_tokenized_alone():
    tok = bpe()
    recs = [{"prompt": "Two plus t", "completion": "wo is four."}]
    ids = pv.encode_records(tok, recs, train_on="completion")
    # ' two' holds the prompt's last 't' and the completion's 'wo': one token, trained
    tokens = pv.decode_tokens(tok, ids.values)
    assert [(t, bool(f)) for t, f in zip(tokens, ids.trained, strict=True)][:4] == [
        ("T", False),
        ("wo", False),
        (" plus", False),
        (" two", True),
    ]
    assert tok.encode("Two plus t", add_special_tokens=False).tokens[-1] == "Ġt"  # alone: 2 tokens


def test_end_of_text_is_appended_once():
    tok = bpe()
    recs = [{"prompt": "Q", "completion": " A" + EOS}, {"prompt": "Q", "completion": " A"}]
    ids = pv.encode_records(tok, recs, train_on="completion")
    np.testing.assert_array_equal(ids[0], ids[1])
    assert _flags(ids, 0) == _flags(ids, 1) and _flags(ids, 0)[-1]
    none = pv.encode_records(tok, recs[1:], train_on="completion", add_eos=False)
    assert none.values.tolist() == ids[1][:-1].tolist()


def test_train_on_all_is_plain_language_modelling_of_the_rendered_text():
    tok = bpe()
    recs = [{"messages": CHAT}, {"prompt": "Q:", "completion": " A"}, {"text": "plain"}]
    ids = pv.encode_records(tok, recs, train_on="all")
    texts = [r.text for r in pv.render_records(recs, train_on="all")]
    assert texts[1:] == ["Q: A", "plain"] and ids.trained is None
    want = pv.encode(tok, texts)
    np.testing.assert_array_equal(ids.values, want.values)
    np.testing.assert_array_equal(ids.offsets, want.offsets)


def test_batches_give_the_same_ids_and_flags():
    tok = bpe()
    recs = [{"messages": CHAT}, {"messages": CHAT[1:3]}, {"messages": CHAT[:2] + CHAT[4:]}] * 3
    one = pv.encode_records(tok, recs, train_on="assistant", batch_size=1)
    seen = []
    many = pv.encode_records(
        tok, recs, train_on="assistant", batch_size=4, progress=lambda d, t: seen.append((d, t))
    )
    for a, b in (
        (one.values, many.values),
        (one.offsets, many.offsets),
        (one.trained, many.trained),
    ):
        np.testing.assert_array_equal(a, b)
    assert seen == [(4, 9), (8, 9), (9, 9)]
    # a pipeline feeding batch by batch gets the concatenation
    parts = [pv.encode_records(tok, recs[i : i + 2], train_on="assistant") for i in range(0, 9, 2)]
    np.testing.assert_array_equal(np.concatenate([p.trained for p in parts]), one.trained)


def test_the_tokenizer_template_and_special_tokens_are_used():
    from chat_tokenizers import hf as make

    llama = (
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'assistant' %}"
        "{{ ' ' + m.content.strip() + ' ' + eos_token }}{% else %}{{ '[INST] ' + m.content + "
        "' [/INST]' }}{% endif %}{% endfor %}"
    )
    tok = make()
    tok.chat_template = llama
    tok.bos_token = "<|im_start|>"
    rec = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Yo "}]}
    ]
    ids = pv.encode_records(tok, rec, train_on="assistant")
    text = "<|im_start|>[INST] Hi [/INST] Yo <|endoftext|>"
    assert pv.render_records(rec, train_on="assistant", tokenizer=tok)[0].text == text
    assert "".join(pv.decode_tokens(tok, ids.values[ids.trained])) == "Yo <|endoftext|>"
    # the end of text closes the turn: none is appended
    assert ids.values.tolist() == tok.backend_tokenizer.encode(text, add_special_tokens=False).ids
    # an explicit template wins over the tokenizer's own
    assert pv.render_records(rec, train_on="all", tokenizer=tok, chat_template=pv.CHATML)[
        0
    ].text == ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Yo <|im_end|>\n")


def test_records_from_files_are_the_same_records():
    import pyarrow as pa
    import pyarrow.parquet as pq

    tok = bpe()
    recs = [{"messages": CHAT}, {"messages": CHAT[1:3]}]
    jsonl = "\n".join(json.dumps(r) for r in recs).encode()
    csv = ("id,messages\n" + "".join(
        f'{i},"{json.dumps(r["messages"]).replace(chr(34), chr(34) * 2)}"\n' for i, r in enumerate(recs)
    )).encode()  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(recs), buf)
    want = pv.encode_records(tok, recs, train_on="assistant")
    for name, data in (("c.jsonl", jsonl), ("c.csv", csv), ("c.parquet", buf.getvalue())):
        got = pv.encode_records(tok, pv.read_records(name, data), train_on="assistant")
        np.testing.assert_array_equal(got.values, want.values, err_msg=name)
        np.testing.assert_array_equal(got.trained, want.trained, err_msg=name)


UPPER = "{% for m in messages %}{{ m.content.upper() }};{% endfor %}"
EMPTY_GEN = (
    "{% for m in messages %}{{ m.content }}{% if m.role == 'assistant' %}"
    "{% generation %}{% endgeneration %}{% endif %}{% endfor %}"
)
HI = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


@pytest.mark.parametrize(
    ("record", "train_on", "template", "message"),
    [
        ({"prompt": "x"}, "completion", None, "has no 'completion' \\(its fields: 'prompt'\\)"),
        ({"prompt": "x", "completion": None}, "completion", None, "'completion' is null; give it"),
        ({"prompt": 3, "completion": "y"}, "completion", None, "'prompt' is int, not text"),
        ({"id": 1}, "all", None, "is not a fine-tuning record: it needs 'messages'"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "all", None, "role 'tool'"),
        ({"messages": HI}, "completion", None,
         "is a chat \\(messages\\); train_on='completion' does not apply: use 'all' or "
         "'assistant' or 'last_assistant'"),
        ({"prompt": "a", "completion": "b"}, "assistant", None,
         "prompt/completion record; train_on='assistant' does not apply: use 'all' or 'completion'"),
        ({"text": "a"}, "last_assistant", None, "plain text: nothing in it says what to train"),
        ({"prompt": "a", "completion": ""}, "completion", None, "the completion is empty"),
        ({"messages": HI[:1] + [{"role": "assistant", "content": ""}]}, "assistant", None,
         "assistant message 1 is empty"),
        ({"messages": HI[:1]}, "last_assistant", None, "has no assistant turn"),
        ({"messages": "[{oops"}, "assistant", None, "'messages' is text that is not JSON"),
        ({"messages": HI}, "assistant", EMPTY_GEN, "assistant turn 0 renders to zero tokens"),
        ({"messages": HI}, "last_assistant", EMPTY_GEN, "the last assistant turn renders to zero"),
        ({"messages": HI}, "assistant", UPPER, "assistant turn 0 \\(message 1\\) cannot be found"),
        ({"messages": HI}, "assistant", "{{ messages.pop() }}", "outside its sandbox"),
        ({"messages": HI}, "all", "{{ raise_exception('no') }}", "failed to render it"),
    ],
)  # fmt: skip
def test_a_bad_record_is_an_error_naming_its_file_and_line(record, train_on, template, message):
    good = {"messages": HI} if train_on != "completion" else {"prompt": "a", "completion": "b"}
    if train_on == "all":
        good = {"text": "fine"}
    first = "" if template else json.dumps(good)  # a template fails on every chat
    data = (first + "\n" + json.dumps(record) + "\n").encode()
    records = pv.read_records("sft.jsonl", data)
    with pytest.raises(pv.CorpusError, match=f"^sft.jsonl line 2\\b.*{message}"):
        pv.encode_records(bpe(), records, train_on=train_on, chat_template=template)


def test_dicts_are_named_by_position_and_arguments_are_checked():
    tok = bpe()
    with pytest.raises(pv.CorpusError, match="^record 1 has no 'completion'"):
        pv.encode_records(
            tok, [{"prompt": "a", "completion": "b"}, {"prompt": "a"}], train_on="completion"
        )
    with pytest.raises(TypeError, match="wrap one record in a list"):
        pv.encode_records(tok, {"prompt": "a", "completion": "b"}, train_on="completion")
    with pytest.raises(TypeError, match="record 0 is a str, not a dict"):
        pv.encode_records(tok, ["a"], train_on="all")
    with pytest.raises(
        ValueError, match="unknown train_on 'prompt'; choose one of all, completion"
    ):
        pv.encode_records(tok, [], train_on="prompt")
    assert pv.encode_records(tok, [], train_on="assistant").n_tokens == 0
    assert pv.encode_records(tok, [Record("x.csv row 4", {"text": "a"})], train_on="all").n_tokens


def test_record_kinds():
    assert [
        pv.record_kind(r) for r in ({"messages": []}, {"completion": "x"}, {"text": ""}, {})
    ] == [
        "chat",
        "prompt_completion",
        "text",
        None,
    ]


@pytest.mark.parametrize("name", sorted(pv.BUILTIN_RECORDS))
def test_builtin_records_encode(name):
    recs = pv.load_builtin_records(name)
    assert len(recs) > 50 and len({pv.record_kind(r) for r in recs}) == 1
    train_on = "completion" if name.endswith("qa") else "assistant"
    texts = [r.text for r in pv.render_records(recs, train_on="all")]
    tok = pv.train_tokenizer(
        texts, vocab_size=400, cache_dir=False, extra_special_tokens=pv.CHATML_SPECIAL_TOKENS
    )
    ids = pv.encode_records(tok, recs, train_on=train_on)
    per_record = np.add.reduceat(ids.trained.astype(np.int64), ids.offsets[:-1])
    assert len(ids) == len(recs) and (per_record > 0).all() and (per_record < ids.lengths).all()
    if name.endswith("chat"):  # every <|im_end|> of an assistant turn is trained
        end = tok.token_to_id("<|im_end|>")
        turns = sum(m["role"] == "assistant" for r in recs for m in r["messages"])
        assert int((ids.trained & (ids.values == end)).sum()) == turns


# ---------------------------------------------------------------------------- fuzzing

values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=6,
)
keys = st.sampled_from(["prompt", "completion", "messages", "text", "role", "content", "x"])
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"]) | values,
     "content": st.text(max_size=8) | values},
)  # fmt: skip
record = st.one_of(
    st.dictionaries(keys, values | st.text(max_size=8), max_size=3),
    st.fixed_dictionaries({"messages": st.lists(message, max_size=4) | values}),
    values,
)
templates = st.one_of(
    st.none(),
    st.just(pv.CHATML),
    st.text("{}%# ab()'+messages.content[]|", max_size=30),
    values,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(
    st.lists(record, max_size=4) | values,
    st.sampled_from(pv.TRAIN_ON) | values,
    templates,
    st.integers(-1, 3) | values,
)
def test_encode_records_fuzzed(records, train_on, template, batch_size):
    """A correct result or a ValueError / TypeError with a message, nothing else."""
    try:
        ids = pv.encode_records(
            bpe(), records, train_on=train_on, chat_template=template, batch_size=batch_size
        )
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    assert len(ids) == len(records) and (ids.lengths > 0).all()
    assert (ids.trained is None) == (train_on == "all")
    if ids.trained is not None:
        per_record = np.add.reduceat(ids.trained.astype(int), ids.offsets[:-1]) if len(ids) else []
        assert all(n > 0 for n in per_record)


@FUZZ
@given(values, templates, st.text(max_size=30) | st.binary(max_size=30))
def test_chat_entry_points_fuzzed(messages, template, config):
    for call in (
        lambda: pv.render_chat(messages, template),
        lambda: pv.load_chat_template(config if isinstance(config, bytes) else config.encode()),
        lambda: pv.record_kind(messages),
        lambda: pv.render_records([messages], train_on="all", chat_template=template),
    ):
        try:
            call()
        except (ValueError, TypeError) as exc:
            assert str(exc).strip()
