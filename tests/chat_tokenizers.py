"""Tiny tokenizers for the fine-tuning tests, trained in-process (no download): a
byte-level BPE with the ChatML special tokens, optionally with the ``trim_offsets``
post-processor real tokenizers use, and its transformers wrapper."""

from __future__ import annotations

import functools

import packviz as pv

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Packing documents into rows saves compute.",
    "What is two plus two? Two plus two is four.",
    "Hello world! Tokenizers are fun; offsets matter.",
    "Naïve café résumé — unicode bytes ✓ 日本語",
] * 20
#: A chat with a system prompt, two assistant turns, multi-byte characters and runs of
#: spaces (zero-width tokens under trim_offsets).
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "café?  What   is it"},
    {"role": "assistant", "content": " résumé ✓ — naïve  x"},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hello   world!"},
]


@functools.cache
def bpe(trim_offsets: bool | None = None):
    """The BPE; ``trim_offsets`` True/False adds a ByteLevel post-processor."""
    from tokenizers import Tokenizer, processors

    tok = pv.train_tokenizer(
        CORPUS, vocab_size=300, cache_dir=False, extra_special_tokens=pv.CHATML_SPECIAL_TOKENS
    )
    if trim_offsets is not None:
        tok = Tokenizer.from_str(tok.to_str())
        tok.post_processor = processors.ByteLevel(trim_offsets=trim_offsets)
    return tok


def hf(trim_offsets: bool | None = None):
    """A transformers fast tokenizer around `bpe`, with the built-in ChatML template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe(trim_offsets).to_str()),
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
    )
    tok.chat_template = pv.CHATML
    return tok
