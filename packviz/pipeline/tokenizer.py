"""The job's tokenizer: a given ``tokenizer.json``, one trained on the first documents, or
none (pre-tokenized input) — and what the manifest and the shards say about it.

A trained tokenizer learns from the first `TRAIN_SAMPLE_CHARS` characters of non-empty
documents in corpus order (the document that crosses the mark is cut there, so the
sample's memory is bounded whatever the documents' sizes) (a fixed amount, never one that depends on the memory budget or
the worker count, so the output does not either). It is trained once: a resumed job
reuses the file saved in the work folder, and the finished job keeps it next to the
shards as ``tokenizer.json``. For a corpus smaller than the sample, this is the
tokenizer the dashboard trains on the same documents.

Example:
    >>> pad_id(None, None), pad_id(7, None)
    (0, 7)
"""

from __future__ import annotations

from pathlib import Path

from packviz.corpus import CorpusError
from packviz.pipeline.files import sha256_file, write_atomic
from packviz.pipeline.manifest import TOKENIZER_FILE
from packviz.pipeline.readers import read_segment

#: Characters of text (the first documents, in order) a ``train_vocab`` tokenizer learns from.
TRAIN_SAMPLE_CHARS = 32 << 20


def check_choice(files, tokenizer, train_vocab) -> str | None:
    """The tokenizer file to use (an absolute path), or None: text needs exactly one of a
    tokenizer and a vocabulary to train; pre-tokenized input takes neither (its ids are
    used as they are). Raises ValueError saying which to drop or give."""
    if files[0].kind == "tokens":
        given = [
            o
            for o, v in (("--tokenizer", tokenizer), ("--train-vocab", train_vocab))
            if v is not None
        ]
        if given:
            raise ValueError(
                f"{files[0].path} is pre-tokenized (an 'input_ids' column): its ids are used as "
                f"they are, so {' and '.join(given)} would do nothing; leave "
                f"{'them' if len(given) > 1 else 'it'} out"
            )
        return None
    if (tokenizer is None) == (train_vocab is None):
        raise ValueError(
            "give a tokenizer (--tokenizer tokenizer.json) or a vocabulary size to train "
            "one on the corpus (--train-vocab N), not both"
            if tokenizer is not None
            else "these inputs hold text: give --tokenizer tokenizer.json or --train-vocab N"
        )
    return None if tokenizer is None else str(Path(tokenizer).resolve())


def file_digest(path: str) -> str:
    """sha256 of a tokenizer file (part of the job's identity)."""
    try:
        return sha256_file(path)
    except OSError as exc:
        from packviz.tokenize import TokenizerError

        raise TokenizerError(f"no tokenizer file at {path} ({exc.strerror or exc})") from None


def trained(work: Path, files, parts, spec: dict, vocab: int, log) -> Path:
    """Train a byte-level BPE of ``vocab`` tokens on the first documents (once)."""
    import packviz as pv

    path = work / TOKENIZER_FILE
    if path.is_file():
        try:
            pv.load_tokenizer(path)
            return path
        except ValueError:
            path.unlink()
    docs = _sample(files, parts, spec)
    chars = sum(map(len, docs))
    if not docs:
        raise CorpusError("no text to train a tokenizer on: every document is empty")
    log(f"training a {vocab:,}-token byte-level BPE on {len(docs):,} documents ({chars:,} chars)")
    tok = pv.train_tokenizer(docs, vocab_size=vocab, cache_dir=False)
    write_atomic(path, [tok.to_str().encode()], durable=False)
    return path


def _sample(files, parts, spec: dict) -> list[str]:
    """The first `TRAIN_SAMPLE_CHARS` characters of non-empty documents, in corpus order
    (the last one cut there): reading stops as soon as the sample is full."""
    docs, chars = [], 0
    for part in parts:
        for i, lo, hi in part.segments:
            for batch in read_segment(
                files[i], lo, hi, text_field=spec["text_field"], split=spec["split"]
            ):
                for d in batch:
                    if d:
                        docs.append(d[: TRAIN_SAMPLE_CHARS - chars])
                        chars += len(docs[-1])
                        if chars >= TRAIN_SAMPLE_CHARS:
                            return docs
    return docs


def pad_id(given: int | None, tok) -> int:
    """The pad id: as given, else the tokenizer's (`packviz.pad_token_id`), else 0."""
    if given is not None:
        return int(given)
    if tok is None:
        return 0
    import packviz as pv

    return int(pv.pad_token_id(tok))


def manifest_entry(out: Path, work: Path, path: str | None, vocab: int | None, tok) -> dict:
    """What the manifest says about the tokenizer; a trained one is copied next to the
    shards."""
    if tok is None:
        return {"source": "pre-tokenized", "fingerprint": None}
    import packviz as pv

    fingerprint = pv.tokenizer_fingerprint(tok)
    if vocab is None:
        return {"source": path, "fingerprint": fingerprint}
    digest = write_atomic(out / TOKENIZER_FILE, [(work / TOKENIZER_FILE).read_bytes()])
    return {
        "source": f"trained: {vocab} tokens",
        "fingerprint": fingerprint,
        "file": TOKENIZER_FILE,
        "sha256": digest,
    }
