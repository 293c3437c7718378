"""Documents: built-in corpora, splitting text into documents, and synthetic lengths.

Built-in corpora need no download: the Python documentation topics shipped in the
standard library's ``pydoc_data`` (about 80 documents of real prose, heavy-tailed
lengths) and the standard library's own top-level source files (real code, a few MB).
Both differ between Python versions, so nothing should depend on exact counts. For
fine-tuning, `load_builtin_records` turns the same topics into chats (``messages``) and
prompt/completion records, generated deterministically: a question about a topic, its
paragraphs as answers, follow-up questions for more. User
files are read in `packviz.files`; every problem with a corpus is a `CorpusError` (a
ValueError) with a message a person can act on.

Example:
    >>> split_text("One. Two!\\n\\nThree?", "sentence")
    ['One.', 'Two!', 'Three?']
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import numpy as np

from packviz._args import check_instance
from packviz.choices import DISTRIBUTIONS, SPLITS, Distribution, Split, check_choice

#: Largest synthetic corpus (documents).
MAX_SYNTHETIC_DOCS = 50_000_000

BUILTIN_CORPORA: dict[str, str] = {
    "python-docs": "Python documentation topics (pydoc_data): ~80 documents of prose",
    "python-stdlib": "Python standard library source files: ~170 modules of code",
}


#: Built-in fine-tuning records (`load_builtin_records`).
BUILTIN_RECORDS: dict[str, str] = {
    "python-docs-chat": "Chats about the Python documentation topics (messages): 1-3 turns each",
    "python-docs-qa": "Questions on the same topics, answered once (prompt/completion)",
}
_SYSTEM = "You answer questions about Python from its documentation. Quote it where you can."
_ASK = (
    "What does the Python documentation say about {}?",
    "Can you explain {} to me?",
    "I am reading about {}. Where do I start?",
    "Summarize {}, please.",
)
_MORE = ("Go on.", "Tell me more.", "And then?", "Is there more to it?")


class CorpusError(ValueError):
    """A user file or corpus request that cannot be turned into documents."""


def load_builtin(name: str) -> list[str]:
    """Documents of a built-in corpus (see `BUILTIN_CORPORA`)."""
    check_choice("corpus", name, tuple(BUILTIN_CORPORA), error=CorpusError)
    if name == "python-docs":
        from pydoc_data.topics import topics

        return [topics[k] for k in sorted(topics) if topics[k].strip()]
    if name == "python-stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        files = sorted(root.glob("*.py"))
        docs = [f.read_text(encoding="utf-8", errors="replace") for f in files]
        return [d for d in docs if d.strip()]
    raise AssertionError(name)


def load_builtin_records(name: str) -> list[dict]:
    """Records of a built-in fine-tuning corpus (see `BUILTIN_RECORDS`), made from the
    Python documentation topics: ``python-docs-chat`` gives ``{"messages": [...]}`` with
    a system prompt in every other chat; ``python-docs-qa`` gives ``{"prompt",
    "completion"}`` from each chat's first exchange.

    >>> chat = load_builtin_records("python-docs-chat")[0]["messages"]
    >>> [m["role"] for m in chat]
    ['system', 'user', 'assistant']
    >>> chat[1]["content"]
    'What does the Python documentation say about the "assert" statement?'
    """
    check_choice("corpus", name, tuple(BUILTIN_RECORDS), error=CorpusError)
    from pydoc_data.topics import topics

    records = []
    for i, key in enumerate(k for k in sorted(topics) if topics[k].strip()):
        head, *paragraphs = split_text(topics[key], "paragraph")
        title = head.splitlines()[0].strip()
        title = title[:1].lower() + title[1:] if title[1:2].islower() else title
        messages = [{"role": "system", "content": _SYSTEM}] if i % 2 == 0 else []
        question, used = _ASK[i % len(_ASK)].format(title), 0
        for turn in range(1 + i % 3):
            take = 1 + (i + turn) % 3
            if used >= len(paragraphs):
                break
            answer = "\n\n".join(paragraphs[used : used + take])
            messages += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
            used += take
            question = _MORE[(i + turn) % len(_MORE)]
        if len(messages) < 2:
            continue
        if name == "python-docs-chat":
            records.append({"messages": messages})
        else:
            first = [m["content"] for m in messages if m["role"] != "system"][:2]
            records.append(
                {"prompt": f"Question: {first[0]}\nAnswer:", "completion": " " + first[1]}
            )
    return records


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")


def split_text(text: str, by: Split = "paragraph") -> list[str]:
    """Split text into documents: whole ``file``, blank-line ``paragraph``, ``line``, or
    ``sentence`` (after . ! ?, as in the tutorial). Empty pieces are dropped."""
    check_choice("split", by, SPLITS, error=CorpusError)
    check_instance(text, str, "split_text", "a str")
    if by == "file":
        parts = [text]
    elif by == "paragraph":
        parts = _PARAGRAPH.split(text)
    elif by == "line":
        parts = text.splitlines()
    else:
        parts = _SENTENCE.split(text)
    return [p.strip() for p in parts if p.strip()]


def synthetic_lengths(
    n: int,
    *,
    median: float = 300,
    sigma: float = 1.0,
    max_length: int = 32768,
    distribution: Distribution = "lognormal",
    seed: int = 0,
) -> np.ndarray:
    """Seeded document lengths (int64, clipped to [1, max_length]) for exploring scale.

    ``lognormal`` (median, sigma) is the benchmark workload; ``exponential`` has the given
    median; ``uniform`` spans [1, 2 * median]; ``constant`` is ``median`` everywhere.

    >>> synthetic_lengths(5, seed=0).tolist()
    [340, 262, 569, 333, 175]
    """
    if (
        isinstance(n, bool)
        or not isinstance(n, (int, np.integer))
        or not 1 <= n <= MAX_SYNTHETIC_DOCS
    ):
        raise CorpusError(f"number of documents must be between 1 and {MAX_SYNTHETIC_DOCS:,}")
    for name, x in (("median", median), ("sigma", sigma), ("max_length", max_length)):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise CorpusError(f"{name} must be a number, got {x!r}")
    if not median >= 1 or not max_length >= 1 or not sigma >= 0:
        raise CorpusError("median and max_length must be at least 1, sigma non-negative")
    check_choice("distribution", distribution, DISTRIBUTIONS, error=CorpusError)
    rng = np.random.default_rng(seed)
    if distribution == "lognormal":
        x = rng.lognormal(np.log(median), sigma, n)
    elif distribution == "exponential":
        x = rng.exponential(median / np.log(2), n)
    elif distribution == "uniform":
        x = rng.uniform(1, 2 * median + 1, n)
    else:
        x = np.full(n, float(median))
    return np.clip(x, 1, max_length).astype(np.int64)
