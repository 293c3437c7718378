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
import json
import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from packviz._args import as_array, as_list
from packviz.files import check_text
from packviz.limits import check_int
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


def _corpus_key(documents: Sequence[str], vocab_size: int, specials: Sequence[str] = ()) -> str:
    h = hashlib.sha256(f"{_TRAINER_VERSION}:{vocab_size}:{len(documents)}".encode())
    if specials:  # keys of tokenizers without extra special tokens stay as they were
        h.update(json.dumps(list(specials)).encode())
    for d in documents:
        h.update(d.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def train_tokenizer(
    documents: Sequence[str],
    *,
    vocab_size: int = 4096,
    cache_dir=None,
    extra_special_tokens: Sequence[str] = (),
):
    """Train (or load from the disk cache) a byte-level BPE on ``documents``.

    Args:
        vocab_size: target vocabulary, ``MIN_VOCAB`` .. ``MAX_VOCAB``.
        cache_dir: folder for trained tokenizers; None = `default_cache_dir()`, False = no
            cache.
        extra_special_tokens: more special tokens after ``<|endoftext|>`` and ``<|pad|>``
            (e.g. `packviz.chat.CHATML_SPECIAL_TOKENS` for chats): each is one token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    documents = _documents(documents)
    vocab_size = check_int(
        "vocab_size", vocab_size, least=MIN_VOCAB, most=MAX_VOCAB, error=TokenizerError
    )
    if not documents:
        raise TokenizerError("no documents to train a tokenizer on")
    extra = [t for t in _documents(extra_special_tokens) if t not in (EOS_TOKEN, PAD_TOKEN)]
    if any(not t for t in extra):
        raise TokenizerError("a special token cannot be empty")
    folder = None
    if cache_dir is not False:
        if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
            raise TypeError(
                f"cache_dir must be a folder path, None (the default) or False (no cache), got "
                f"{cache_dir!r}"
            )
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = folder / f"{_corpus_key(documents, vocab_size, extra)}.json"
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
        special_tokens=[EOS_TOKEN, PAD_TOKEN, *dict.fromkeys(extra)],
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


#: Largest token id a loaded tokenizer may use (8,388,608 ids: four times the largest
#: vocabularies in use). Ids are checked in the JSON before the Rust library sees them:
#: a tiny file with an id of 4,000,000,000 made it allocate gigabytes later on.
MAX_TOKEN_ID = (1 << 23) - 1
#: Largest tokenizer.json read (the dashboard's upload limit is 100 MB).
MAX_TOKENIZER_BYTES = 256 << 20


def load_tokenizer(source: bytes | str | os.PathLike):
    """Load a ``tokenizer.json`` from bytes (an upload) or a path.

    The JSON is checked before the ``tokenizers`` library parses it: every token id
    (vocabulary, added tokens, post-processor, padding) must be an integer in
    ``[0, MAX_TOKEN_ID]``. Nothing is executed; a bad file is a `TokenizerError`.
    """
    from tokenizers import Tokenizer

    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "the tokenizer file"
    elif isinstance(source, (str, os.PathLike)):
        if isinstance(source, str) and source.lstrip("\ufeff \t\r\n").startswith("{"):
            raise TokenizerError(
                "got JSON text where a path goes: pass the file's bytes "
                "(load_tokenizer(text.encode())) or the path of a tokenizer.json"
            )
        path = Path(source)
        if not path.is_file():
            raise TokenizerError(f"no tokenizer file at {path}")
        if path.stat().st_size > MAX_TOKENIZER_BYTES:
            raise TokenizerError(
                f"{path} is {path.stat().st_size:,} bytes; tokenizer files over "
                f"{MAX_TOKENIZER_BYTES:,} bytes are not read"
            )
        data, name = path.read_bytes(), str(path)
    else:
        raise TypeError(f"load_tokenizer takes bytes or a path, got {type(source).__name__}")
    if not data:
        raise TokenizerError(f"{name} is empty; upload a tokenizer.json")
    if len(data) > MAX_TOKENIZER_BYTES:
        raise TokenizerError(f"{name} is {len(data):,} bytes: too big for a tokenizer.json")
    try:
        text = data.decode("utf-8-sig")  # a byte order mark is not part of the JSON
    except UnicodeDecodeError:
        raise TokenizerError(f"{name} is not UTF-8 JSON; upload a tokenizer.json") from None
    _check_definition(text, name)
    try:
        tok = Tokenizer.from_str(text)
    except Exception as exc:  # the Rust library raises plain Exceptions
        raise TokenizerError(f"{name} is not a valid tokenizer.json ({_first_line(exc)})") from None
    if tok.get_vocab_size() == 0:
        raise TokenizerError(f"{name} has an empty vocabulary")
    if tok.get_vocab_size(with_added_tokens=True) > MAX_TOKEN_ID + 1:
        raise TokenizerError(f"{name} has more than {MAX_TOKEN_ID + 1:,} token ids")
    # truncation would cut documents and padding count pad tokens as text: both off; the
    # declared pad id is kept for pad_token_id
    if tok.padding:
        _DECLARED_PADDING[tok] = dict(tok.padding)
    tok.no_truncation()
    tok.no_padding()
    return tok


def _check_definition(text: str, name: str) -> None:
    """The token ids a tokenizer.json declares, checked before the Rust library sees them."""
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise TokenizerError(f"{name} is not a valid tokenizer.json ({_first_line(exc)})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise TokenizerError(f"{name} is not a valid tokenizer.json (no model object)")
    model = spec["model"]
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        ids = list(vocab.values())
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...], ids are positions
        ids = [len(vocab) - 1] if vocab else []
    else:
        ids = []
    ids += [t.get("id") for t in spec.get("added_tokens") or [] if isinstance(t, dict)]
    ids += _ints(spec.get("post_processor"))
    padding = spec.get("padding")
    if isinstance(padding, dict) and "pad_id" in padding:
        ids.append(padding["pad_id"])
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= MAX_TOKEN_ID:
            raise TokenizerError(
                f"{name} declares the token id {i!r}; ids must be integers from 0 to "
                f"{MAX_TOKEN_ID:,}"
            )


def _ints(tree) -> list:
    """Every integer in a JSON tree (the post-processor names token ids in several shapes)."""
    if isinstance(tree, dict):
        return [i for v in tree.values() for i in _ints(v)]
    if isinstance(tree, list):
        return [i for v in tree for i in _ints(v)]
    return [tree] if isinstance(tree, int) and not isinstance(tree, bool) else []


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _special(tokenizer, candidates) -> int | None:
    tokenizer = _backend(tokenizer)
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
    padding = getattr(_original(tokenizer), "padding", None) or _DECLARED_PADDING.get(
        _original(tokenizer)
    )
    if padding and padding.get("pad_id") is not None:
        return int(padding["pad_id"])
    eos = eos_token_id(tokenizer)
    return 0 if eos is None else eos


#: The padding a loaded tokenizer.json declared (turned off at load; its pad id still counts).
_DECLARED_PADDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Per tokenizer object: its fingerprint, and the text of each id decoded so far. Weak
#: keys: an entry goes with its tokenizer. Serializing a large vocabulary takes seconds,
#: so it happens once per tokenizer, never per call.
_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TOKEN_TEXT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenizer_fingerprint(tokenizer) -> str:
    """A short stable hash of the tokenizer's full definition (computed once per object)."""
    tokenizer = _backend(tokenizer)
    fp = _FINGERPRINTS.get(tokenizer)
    if fp is None:
        fp = hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]
        _FINGERPRINTS[tokenizer] = fp
    return fp


def _original(tokenizer):
    """The ``tokenizers.Tokenizer`` behind a transformers fast tokenizer, or itself."""
    from tokenizers import Tokenizer

    inner = getattr(tokenizer, "backend_tokenizer", None)
    tok = tokenizer if inner is None else inner
    needs = ("encode_batch", "token_to_id", "id_to_token", "decode_batch", "to_str")
    if not isinstance(tok, Tokenizer) and not all(hasattr(tok, n) for n in needs):
        raise TypeError(
            "tokenizer must be a tokenizers.Tokenizer (from pv.load_tokenizer or "
            f"pv.train_tokenizer) or a transformers fast tokenizer, got {type(tokenizer).__name__}"
        )
    return tok


#: Per tokenizer whose truncation or padding is on: (that setting, a copy without it).
_UNTRUNCATED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _backend(tokenizer):
    """The ``tokenizers.Tokenizer`` to encode with: the one behind a transformers fast
    tokenizer, or itself — never truncating or padding. A tokenizer that would (a
    ``tokenizer.json`` saved with those settings, or a transformers tokenizer after a
    ``tok(..., truncation=True)`` call) is encoded by a copy without them, made once per
    setting: truncation would cut documents and padding would count pad tokens as text,
    both silently."""
    tok = _original(tokenizer)
    truncation, padding = getattr(tok, "truncation", None), getattr(tok, "padding", None)
    if not truncation and not padding:
        return tok
    state = (repr(truncation), repr(padding))
    cached = _UNTRUNCATED.get(tok)
    if cached is None or cached[0] != state:
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(tok.to_str())
        plain.no_truncation()
        plain.no_padding()
        cached = _UNTRUNCATED[tok] = (state, plain)
    return cached[1]


def _documents(documents: object) -> list[str]:
    """``documents`` as a list of str, or a TypeError saying what was given instead."""
    if isinstance(documents, (str, bytes)):
        raise TypeError(
            "documents must be a list of strings, one per document; got a single "
            f"{type(documents).__name__} (wrap one document in a list: [text])"
        )
    docs = as_list("documents", documents, "strings, one per document")
    for i, d in enumerate(docs):
        if not isinstance(d, str):
            raise TypeError(f"document {i} is a {type(d).__name__}, not a string")
    return docs


def encode(
    tokenizer,
    documents: Sequence[str],
    *,
    add_eos: bool = True,
    batch_size: int = 4096,
    progress: Callable[[int, int], None] | None = None,
) -> TokenIds:
    """Token ids of every document, batched through ``encode_batch`` (parallel in Rust).

    ``add_eos`` appends the end-of-text token when the tokenizer has one, to every
    document but the empty one ("" stays 0 tokens: an empty document, skipped by `pack`
    and counted by `PackStats.n_empty_docs`).
    ``progress(done, total)`` is called after every batch. A transformers fast tokenizer
    is accepted too (its ``backend_tokenizer`` does the work).
    """
    tokenizer = _backend(tokenizer)
    docs = _documents(documents)
    batch_size = check_int("batch_size", batch_size, least=1)
    eos = eos_token_id(tokenizer) if add_eos else None
    fast = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    chunks: list[np.ndarray] = []
    lengths = np.zeros(len(docs), dtype=np.int64)
    total = len(docs)
    for lo in range(0, total, batch_size):
        batch = docs[lo : lo + batch_size]
        try:
            encs = fast(batch, add_special_tokens=False)
        except Exception as exc:  # the Rust library raises plain Exceptions
            for j, d in enumerate(batch):  # a document that is not text at all?
                check_text(d, f"document {lo + j}")
            raise TokenizerError(
                f"this tokenizer cannot encode the documents ({_first_line(exc)}); "
                "use a complete tokenizer.json (with its unknown/byte fallback tokens) or "
                "train a BPE on the corpus"
            ) from None
        for j, e in enumerate(encs):
            ids = np.array(e.ids, dtype=np.int64)
            if ids.size and int(ids.max()) > MAX_TOKEN_ID:
                raise TokenizerError(
                    f"document {lo + j} encodes to the token id {int(ids.max()):,}, over "
                    f"{MAX_TOKEN_ID:,}; this tokenizer's vocabulary is not usable"
                )
            if eos is not None and batch[j]:  # an empty document has nothing to end
                ids = np.append(ids, eos)
            lengths[lo + j] = ids.size
            chunks.append(ids.astype(np.int32))
        if progress is not None:
            progress(min(lo + batch_size, total), total)
    offsets = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenIds._adopt(values, offsets)


def decode_tokens(tokenizer, ids) -> list[str]:
    """Each id as the text it stands for (special tokens by name), for hover labels.

    Only the distinct ids asked for are decoded (in one batched call), and each
    tokenizer keeps what it decoded: a window of rows costs its own distinct tokens, never
    the whole vocabulary. Ids no token has (negative, or past the vocabulary) show as ``<not a token: id>``.
    """
    tokenizer = _backend(tokenizer)
    ids = as_array("token ids", ids, "integers (a list or an array)").reshape(-1)
    if ids.size and (ids.dtype == bool or ids.dtype.kind not in "iu"):
        raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    known = _TOKEN_TEXT.setdefault(tokenizer, {})
    n = tokenizer.get_vocab_size(with_added_tokens=True)
    distinct, where = np.unique(ids, return_inverse=True)
    missing = [i for i in distinct.tolist() if 0 <= i < n and i not in known]
    if missing:
        try:
            texts = tokenizer.decode_batch([[i] for i in missing], skip_special_tokens=False)
        except Exception:  # a decoder that fails on some lone id: show raw tokens then
            texts = [tokenizer.id_to_token(i) or "" for i in missing]
        known.update(zip(missing, texts, strict=True))
    # an id no vocabulary entry has (negative, -100 from labels, past the vocabulary) is
    # shown as such, never as "" that reads like an empty token
    table = np.array(
        [known.get(i, "") if 0 <= i < n else f"<not a token: {i}>" for i in distinct.tolist()],
        dtype=object,
    )
    return table[where.reshape(-1)].tolist() if ids.size else []
