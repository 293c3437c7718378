"""packviz.tokenize: a BPE trained in-process (no download), cached; uploads checked."""

from __future__ import annotations

import numpy as np
import pytest

import packviz as pv

DOCS = ["the quick brown fox", "jumps over the lazy dog", "def f(x):\n    return x * 2\n"] * 20


def test_train_encode_and_cache(tmp_path):
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=tmp_path)
    assert list(tmp_path.glob("*.json"))
    again = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=tmp_path)
    assert pv.tokenizer_fingerprint(tok) == pv.tokenizer_fingerprint(again)
    ids = pv.encode(tok, DOCS[:3])
    eos = pv.eos_token_id(tok)
    assert len(ids) == 3 and all(ids[i][-1] == eos for i in range(3))
    assert tok.decode(ids[0][:-1].tolist()) == DOCS[0]  # byte-level: lossless
    assert pv.pad_token_id(tok) == tok.token_to_id("<|pad|>") != eos
    no_eos = pv.encode(tok, DOCS[:3], add_eos=False)
    np.testing.assert_array_equal(no_eos.lengths + 1, ids.lengths)
    pieces = pv.decode_tokens(tok, ids[0])
    assert "".join(pieces[:-1]) == DOCS[0] and pieces[-1] == "<|endoftext|>"


def test_progress_is_reported():
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)
    seen = []
    pv.encode(tok, DOCS, batch_size=25, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(25, 60), (50, 60), (60, 60)]


def test_load_user_tokenizer(tmp_path):
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)
    data = tok.to_str().encode()
    assert pv.tokenizer_fingerprint(pv.load_tokenizer(data)) == pv.tokenizer_fingerprint(tok)
    path = tmp_path / "tokenizer.json"
    path.write_bytes(data)
    assert pv.load_tokenizer(path).get_vocab_size() == tok.get_vocab_size()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"version": "1.0"', "not a valid tokenizer.json"),
        (b'{"hello": 1}', "not a valid tokenizer.json"),
    ],
)
def test_bad_tokenizer_files(data, message):
    with pytest.raises(pv.TokenizerError, match=message):
        pv.load_tokenizer(data)


def test_pad_fallbacks():
    from tokenizers import Tokenizer, models

    bare = Tokenizer(models.WordLevel({"a": 0, "</s>": 1}, unk_token="a"))
    assert pv.pad_token_id(bare) == 1  # no pad token: end-of-text
    bare = Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a"))
    assert pv.pad_token_id(bare) == 0  # neither: 0


def test_bad_vocab_size():
    with pytest.raises(pv.TokenizerError, match="vocab_size must be an integer from 260 to"):
        pv.train_tokenizer(DOCS, vocab_size=10, cache_dir=False)


def test_a_tokenizer_that_cannot_encode_is_a_clear_error():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"hello": 0}))  # no unknown token
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    loaded = pv.load_tokenizer(tok.to_str().encode())
    with pytest.raises(pv.TokenizerError, match="cannot encode"):
        pv.encode(loaded, ["hello world"])


def _tokenizer_json(vocab, added=(), post_processor=None) -> bytes:
    import json

    return json.dumps(
        {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {
                    "id": i,
                    "content": c,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": True,
                }
                for i, c in added
            ],
            "normalizer": None,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": post_processor,
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
        }
    ).encode()


@pytest.mark.parametrize(
    "data, message",
    [
        (_tokenizer_json({"a": 0, "[UNK]": 4_000_000_000}), "token id 4000000000"),
        (_tokenizer_json({"a": 0, "[UNK]": -1}), "token id -1"),
        (_tokenizer_json({"a": 0, "[UNK]": 1.5}), "token id 1.5"),
        (_tokenizer_json({"a": 0, "[UNK]": 1}, added=[(2**40, "<x>")]), "token id 1099511627776"),
        (
            _tokenizer_json(
                {"a": 0, "[UNK]": 1},
                post_processor={"type": "BertProcessing", "sep": ["a", 9**12], "cls": ["a", 0]},
            ),
            "token id 282429536481",
        ),
        (b"[" * 100_000, "not a valid tokenizer.json"),
        (b'"just a string"', "no model object"),
    ],
)
def test_absurd_token_ids_are_refused_before_the_rust_library_sees_them(data, message):
    with pytest.raises(pv.TokenizerError, match=message):
        pv.load_tokenizer(data)


def test_json_text_where_a_path_goes_and_wrong_types():
    with pytest.raises(pv.TokenizerError, match="got JSON text where a path goes"):
        pv.load_tokenizer('{"model": {}}')
    with pytest.raises(TypeError, match="bytes or a path, got int"):
        pv.load_tokenizer(3)


def test_encode_takes_a_list_of_strings_only():
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)
    with pytest.raises(TypeError, match=r"got a single str \(wrap one document in a list"):
        pv.encode(tok, "one string")
    with pytest.raises(TypeError, match="document 1 is a int, not a string"):
        pv.encode(tok, ["fine", 7])
    with pytest.raises(ValueError, match="batch_size"):
        pv.encode(tok, ["x"], batch_size=0)


def test_fingerprint_and_token_texts_serialize_a_tokenizer_once():
    """A large vocabulary takes seconds to serialize: once per tokenizer, never per call."""
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)

    class Counting:
        calls = 0

        def to_str(self):
            Counting.calls += 1
            return tok.to_str()

        def __getattr__(self, name):
            return getattr(tok, name)

    proxy = Counting()
    ids = pv.encode(tok, DOCS[:2]).values
    first = pv.tokenizer_fingerprint(proxy)
    assert pv.tokenizer_fingerprint(proxy) == first == pv.tokenizer_fingerprint(tok)
    texts = pv.decode_tokens(proxy, ids)
    assert pv.decode_tokens(proxy, ids) == texts
    assert "".join(texts).replace("<|endoftext|>", "") == DOCS[0] + DOCS[1]
    assert Counting.calls == 1
    # ids no token has are marked, not shown as empty tokens
    assert pv.decode_tokens(tok, [-5, 10**9]) == ["<not a token: -5>", "<not a token: 1000000000>"]


def test_truncation_and_padding_settings_never_cut_or_pad_documents():
    """A tokenizer.json saved with truncation/padding on, or a transformers tokenizer
    after a ``tok(..., truncation=True)`` call, must still encode whole documents."""
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)
    whole = pv.encode(tok, DOCS[:3]).lengths.tolist()
    pad = tok.token_to_id("<|pad|>")
    tok.enable_truncation(max_length=2)
    tok.enable_padding(pad_id=pad, pad_token="<|pad|>", length=40)
    assert pv.encode(tok, DOCS[:3]).lengths.tolist() == whole
    assert tok.truncation is not None and tok.padding is not None  # the caller's object
    loaded = pv.load_tokenizer(tok.to_str().encode())
    assert pv.encode(loaded, DOCS[:3]).lengths.tolist() == whole
    assert pv.pad_token_id(loaded) == pad

    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)
    )
    fast(DOCS[:2], truncation=True, max_length=2)  # leaves truncation on in its backend
    assert fast.backend_tokenizer.truncation is not None
    assert pv.encode(fast, DOCS[:3]).lengths.tolist() == whole
    records = [{"prompt": DOCS[0], "completion": DOCS[1]}]
    plain = pv.encode_records(tok, records, train_on="completion")
    assert pv.encode_records(fast, records, train_on="completion").lengths.tolist() == (
        plain.lengths.tolist()
    )


def test_an_empty_document_stays_empty():
    """ "" is an empty document (0 tokens, no end-of-text), as blank records are read."""
    tok = pv.train_tokenizer(DOCS, vocab_size=300, cache_dir=False)
    ids = pv.encode(tok, ["", DOCS[0], ""])
    assert ids.lengths.tolist()[0] == ids.lengths.tolist()[2] == 0
    assert ids[1][-1] == pv.eos_token_id(tok)
    assert pv.pack(ids.lengths, 64).stats().n_empty_docs == 2


def test_documents_are_a_list_not_a_mapping_or_set_and_a_bom_is_not_json():
    tok = pv.train_tokenizer(["hello world"] * 3, vocab_size=270, cache_dir=False)
    with pytest.raises(TypeError, match=r"documents must be a list .*got a mapping \(dict\)"):
        pv.encode(tok, {"a": 1})
    with pytest.raises(TypeError, match=r"got a set \(unordered\); pass a list"):
        pv.encode(tok, {"a", "b"})
    with pytest.raises(TypeError, match="documents must be a list of strings, got a mapping"):
        pv.find_documents({"a": 1}, "a")
    text = "\ufeff" + tok.to_str()
    assert pv.load_tokenizer(text.encode()).get_vocab_size() == tok.get_vocab_size()
    with pytest.raises(pv.TokenizerError, match="got JSON text where a path goes"):
        pv.load_tokenizer(text)
