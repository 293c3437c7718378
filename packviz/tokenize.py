"""Tokenizers: train a byte-level BPE (cached on disk), load a user's ``tokenizer.json``,
and encode many documents into ragged ids in one batched call.

The trained BPE defines ``<|endoftext|>`` (appended to every document by default, so
document boundaries survive ``wrapped`` packing; it counts in the lengths) and
``<|pad|>``. The pad id of any tokenizer comes from `pad_token_id`: its pad token when it
has one, else its end-of-text token (a common choice: padding is never attended to nor
trained on), else 0.

A ``tokenizer.json`` is JSON parsed by the Rust ``tokenizers`` library; nothing is
unpickled or executed.

Example:
    >>> tok = train_tokenizer(["hello world", "hello there"], vocab_size=300, cache_dir=False)
    >>> ids = encode(tok, ["hello world"])
    >>> decode_tokens(tok, ids.values)[-1]
    '<|endoftext|>'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from packviz.ragged import TokenIds

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
_EOS_CANDIDATES = (EOS_TOKEN, "</s>", "<eos>", "<|eos|>", "[SEP]", "<|end_of_text|>")
_PAD_CANDIDATES = (PAD_TOKEN, "[PAD]", "<pad>", "<|padding|>", "<|finetune_right_pad_id|>")
MIN_VOCAB, MAX_VOCAB = 260, 1 << 20
_TRAINER_VERSION = "bpe-v1"


class TokenizerError(ValueError):
    """A tokenizer file or request that cannot be used."""


def default_cache_dir() -> Path:
    """Where trained tokenizers are cached: ``$PACKVIZ_CACHE`` or ``~/.cache/packviz``."""
    return Path(os.environ.get("PACKVIZ_CACHE") or Path.home() / ".cache" / "packviz")


def _corpus_key(documents: Sequence[str], vocab_size: int) -> str:
    h = hashlib.sha256(f"{_TRAINER_VERSION}:{vocab_size}:{len(documents)}".encode())
    for d in documents:
        h.update(d.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def train_tokenizer(documents: Sequence[str], *, vocab_size: int = 4096, cache_dir=None):
    """Train (or load from the disk cache) a byte-level BPE on ``documents``.

    Args:
        vocab_size: target vocabulary, ``MIN_VOCAB`` .. ``MAX_VOCAB``.
        cache_dir: folder for trained tokenizers; None = `default_cache_dir()`, False = no
            cache.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TokenizerError(f"vocab_size must be an integer, got {vocab_size!r}")
    if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise TokenizerError(f"vocab_size must be between {MIN_VOCAB} and {MAX_VOCAB:,}")
    if not documents:
        raise TokenizerError("no documents to train a tokenizer on")
    folder = None
    if cache_dir is not False:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = folder / f"{_corpus_key(documents, vocab_size)}.json"
        if path.is_file():
            try:
                return Tokenizer.from_file(str(path))
            except Exception:  # a damaged cache entry is retrained
                path.unlink(missing_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(documents, trainer=trainer, length=len(documents))
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tok.save(str(tmp))
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache only costs retraining
    return tok


def load_tokenizer(source: bytes | str | os.PathLike):
    """Load a ``tokenizer.json`` from bytes (an upload) or a path."""
    from tokenizers import Tokenizer

    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise TokenizerError("the tokenizer file is empty; upload a tokenizer.json")
        try:
            text = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            raise TokenizerError(
                "the tokenizer file is not UTF-8 JSON; upload a tokenizer.json"
            ) from None
        try:
            tok = Tokenizer.from_str(text)
        except Exception as exc:
            raise TokenizerError(f"not a valid tokenizer.json ({_first_line(exc)})") from None
    else:
        path = Path(source)
        if not path.is_file():
            raise TokenizerError(f"no tokenizer file at {path}")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise TokenizerError(
                f"{path} is not a valid tokenizer.json ({_first_line(exc)})"
            ) from None
    if tok.get_vocab_size() == 0:
        raise TokenizerError("the tokenizer has an empty vocabulary")
    return tok


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _special(tokenizer, candidates) -> int | None:
    for t in candidates:
        i = tokenizer.token_to_id(t)
        if i is not None:
            return int(i)
    return None


def eos_token_id(tokenizer) -> int | None:
    """The end-of-text token's id, or None if the tokenizer has none."""
    return _special(tokenizer, _EOS_CANDIDATES)


def pad_token_id(tokenizer) -> int:
    """Pad id: the pad token, else the padding setting, else end-of-text, else 0."""
    i = _special(tokenizer, _PAD_CANDIDATES)
    if i is not None:
        return i
    padding = getattr(tokenizer, "padding", None)
    if padding and padding.get("pad_id") is not None:
        return int(padding["pad_id"])
    eos = eos_token_id(tokenizer)
    return 0 if eos is None else eos


def tokenizer_fingerprint(tokenizer) -> str:
    """A short stable hash of the tokenizer's full definition."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]


def encode(
    tokenizer,
    documents: Sequence[str],
    *,
    add_eos: bool = True,
    batch_size: int = 4096,
    progress: Callable[[int, int], None] | None = None,
) -> TokenIds:
    """Token ids of every document, batched through ``encode_batch`` (parallel in Rust).

    ``add_eos`` appends the end-of-text token when the tokenizer has one.
    ``progress(done, total)`` is called after every batch.
    """
    eos = eos_token_id(tokenizer) if add_eos else None
    fast = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    chunks: list[np.ndarray] = []
    lengths = np.zeros(len(documents), dtype=np.int64)
    total = len(documents)
    for lo in range(0, total, batch_size):
        batch = list(documents[lo : lo + batch_size])
        try:
            encs = fast(batch, add_special_tokens=False)
        except Exception as exc:  # the Rust library raises plain Exceptions
            raise TokenizerError(
                f"this tokenizer cannot encode the documents ({_first_line(exc)}); "
                "use a complete tokenizer.json (with its unknown/byte fallback tokens) or "
                "train a BPE on the corpus"
            ) from None
        for j, e in enumerate(encs):
            ids = e.ids
            if eos is not None:
                ids.append(eos)
            lengths[lo + j] = len(ids)
            chunks.append(np.asarray(ids, dtype=np.int32))
        if progress is not None:
            progress(min(lo + batch_size, total), total)
    offsets = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenIds(values, offsets)


@lru_cache(maxsize=8)
def _token_table(definition: str) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(definition)
    n = tok.get_vocab_size(with_added_tokens=True)

    def text(i: int) -> str:
        try:
            return tok.decode([i], skip_special_tokens=False)
        except Exception:  # a decoder that fails on a lone id: show the raw token
            return tok.id_to_token(i) or ""

    return np.array([text(i) for i in range(n)], dtype=object)


def decode_tokens(tokenizer, ids) -> list[str]:
    """Each id as the text it stands for (special tokens by name), for hover labels."""
    table = _token_table(tokenizer.to_str())
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    inside = (ids >= 0) & (ids < table.size)
    out = np.full(ids.size, "", dtype=object)
    out[inside] = table[ids[inside]]
    return out.tolist()
