"""The corpus the pages work on: built-in, synthetic or uploaded, and its tokenizer.

Uploads are kept in session state as (name, bytes) with a digest computed once when the
files arrive, so reruns and page changes never hash 100 MB again. Everything heavy is
cached under plain strings (content digests, settings), never under objects:
``st.cache_data`` for documents and ids, ``st.cache_resource`` for tokenizers.

Fine-tuning records (the built-in chats and Q&A, or uploaded JSONL/CSV/Parquet files with
``messages`` or ``prompt``/``completion``) are rendered to text by a chat template and
encoded with per-token trained flags for the **Train on** setting (`dashboard.records`);
their encoding is work with a predicted time, like a plan (`dashboard.jobs`).

A corpus the dashboard cannot use (no files yet, a bad file, a tokenizer that cannot
encode it, more text than works interactively) stops the page with a message that says
what to do (`dashboard.errors.stop_with`).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import packviz as pv
from dashboard import jobs, records, state, work
from dashboard.errors import DashboardError, stop_with

#: Most tokens the dashboard tokenizes interactively (bigger: the synthetic corpus or the library).
MAX_INTERACTIVE_TOKENS = 5_000_000
MAX_INTERACTIVE_CHARS = 4 * MAX_INTERACTIVE_TOKENS
CACHE_DIR = Path(__file__).resolve().parents[1] / ".packviz-cache"
UPLOAD_TYPES = ("txt", "md", "jsonl", "csv", "parquet")
SOURCES = ("Built-in", "Synthetic", "Upload")
TOKENIZER_SOURCES = ("Train byte-level BPE", "Upload tokenizer.json")

_FILES, _FILES_DIGEST, _TOKENIZER = "uploads.files", "uploads.digest", "uploads.tokenizer"
_WIDGET_IDS = "uploads.widget"


# ----------------------------------------------------------------------------- uploads


def digest(*parts: bytes | str) -> str:
    """A short content digest of strings and bytes (a cache key)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class UploadedFile:
    """A small uploaded file kept across pages (a tokenizer, a tokenizer config)."""

    name: str
    data: bytes
    digest: str


def store_uploads() -> None:
    """on_change of the corpus uploader: keep its files (name, bytes) and their digest.

    The uploader widget empties when the user visits another page, while the kept files
    stay (listed with a Remove button). So the kept list is merged with the widget: a
    file added to the widget is appended, a file taken out of the widget (its ✕) is
    removed, and files kept from before are left alone."""
    files = st.session_state.get("corpus_files") or []
    now = {f.file_id: f for f in files}
    before = st.session_state.get(_WIDGET_IDS) or {}
    removed = {before[i] for i in before.keys() - now.keys()}
    kept = [(n, b) for n, b in uploads() if (n, len(b)) not in removed]
    for i in now.keys() - before.keys():
        kept.append((now[i].name, now[i].getvalue()))
    st.session_state[_WIDGET_IDS] = {i: (f.name, f.size) for i, f in now.items()}
    st.session_state[_FILES] = kept
    st.session_state[_FILES_DIGEST] = digest(*(p for f in kept for p in f)) if kept else ""


def store_tokenizer_upload() -> None:
    """on_change of the tokenizer uploader: keep the file across pages."""
    f = st.session_state.get("tokenizer_file")
    data = None if f is None else f.getvalue()
    st.session_state[_TOKENIZER] = None if f is None else UploadedFile(f.name, data, digest(data))


def uploads() -> list[tuple[str, bytes]]:
    """The uploaded corpus files, (name, bytes)."""
    return st.session_state.get(_FILES) or []


def uploader_shown() -> None:
    """Call before drawing the corpus uploader: when Streamlit has dropped its state (the
    user was on another page), the widget starts empty, and so must its record here."""
    if "corpus_files" not in st.session_state:
        st.session_state[_WIDGET_IDS] = {}


def remove_upload(index: int) -> None:
    """on_click of a file's Remove button: forget that upload (kept across pages until
    then; the uploader widget itself empties when the page changes)."""
    kept = list(uploads())
    if 0 <= index < len(kept):
        del kept[index]
    st.session_state[_FILES] = kept
    st.session_state[_FILES_DIGEST] = digest(*(p for f in kept for p in f)) if kept else ""


def remove_tokenizer_upload() -> None:
    """on_click of the tokenizer's Remove button."""
    st.session_state[_TOKENIZER] = None


def uploaded_tokenizer() -> UploadedFile | None:
    return st.session_state.get(_TOKENIZER)


# ----------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class TokenizerInfo:
    """What the dashboard tells about the tokenizer in use."""

    label: str
    vocab_size: int
    eos: str
    pad: str


@dataclass(frozen=True)
class Corpus:
    """What the pages work on: lengths always; documents and tokens when there is text."""

    key: str
    label: str
    lengths: np.ndarray
    documents: list[str] | None = None
    token_ids: pv.TokenIds | None = None
    tokenizer: object | None = None
    tokenizer_key: str = ""
    pad_id: int = 0
    tokenizer_info: TokenizerInfo | None = None
    #: Fine-tuning records: how many of each kind (None: a corpus of documents).
    kinds: dict | None = None
    train_on: str = "all"
    #: The chat template the records were rendered with (None without chats).
    template: str | None = None

    @property
    def has_text(self) -> bool:
        return self.token_ids is not None

    @property
    def has_records(self) -> bool:
        return self.kinds is not None

    @property
    def flagged(self) -> bool:
        """Its token ids carry trained flags (records, Train on other than all tokens)."""
        return self.token_ids is not None and self.token_ids.trained is not None


@st.cache_data(max_entries=4, show_spinner=False)
def _builtin_documents(name: str) -> list[str]:
    return pv.load_builtin(name)


@st.cache_data(max_entries=4, show_spinner=False)
def _uploaded_documents(key: str, split: str, text_field: str, _files) -> list[str]:
    docs: list[str] = []
    for name, data in _files:
        docs.extend(pv.read_documents(name, data, split=split, text_field=text_field))
    return docs


@st.cache_data(max_entries=8, show_spinner=False)
def _synthetic(n: int, median: int, sigma: float, distribution: str, seed: int) -> np.ndarray:
    return pv.synthetic_lengths(n, median=median, sigma=sigma, distribution=distribution, seed=seed)


@st.cache_resource(max_entries=4, show_spinner=False)
def _trained_tokenizer(corpus_key: str, vocab_size: int, specials: tuple, _documents):
    return pv.train_tokenizer(
        _documents, vocab_size=vocab_size, cache_dir=CACHE_DIR, extra_special_tokens=specials
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def _loaded_tokenizer(key: str, _data: bytes):
    return pv.load_tokenizer(_data)


@st.cache_data(max_entries=4, show_spinner=False)
def _encoded(corpus_key: str, tokenizer_key: str, _tokenizer, _documents):
    return pv.encode(_tokenizer, _documents)


def _upload_records_key() -> str:
    return "records-upload:" + digest(
        st.session_state.get(_FILES_DIGEST, ""), str(state.get("split"))
    )


def record_kinds() -> dict | None:
    """Records per kind of the selected corpus; None for documents (or uploads that cannot
    be read: the page says why). Cheap once read: the sidebar's **Train on** asks for it
    before the page loads the corpus."""
    source = state.get("corpus_source")
    try:
        if source == "Built-in" and state.get("builtin_name") in pv.BUILTIN_RECORDS:
            return records.builtin(str(state.get("builtin_name"))).kinds
        if source == "Upload" and uploads():
            found = records.uploaded(_upload_records_key(), str(state.get("split")), uploads())
            return None if found is None else found.kinds
    except ValueError:
        return None
    return None


def current_corpus() -> Corpus:
    """Load the selected corpus (cached), tokenize it, and return it; stop on bad input.

    ``Corpus.key`` names everything that determines the lengths: the documents *and*, for
    text corpora, the tokenizer. Plans, statistics and row windows are cached under it,
    so a new vocabulary size or tokenizer file never reuses a plan made for other lengths.
    """
    try:
        return _current_corpus()
    except (ValueError, DashboardError) as exc:  # CorpusError, TokenizerError are ValueErrors
        stop_with(str(exc))


def _current_corpus() -> Corpus:
    source = state.get("corpus_source")
    if source == "Synthetic":
        n, median = int(state.get("synth_n")), int(state.get("synth_median"))
        sigma, dist = float(state.get("synth_sigma")), str(state.get("synth_distribution"))
        with st.spinner(f"Drawing {n:,} synthetic document lengths…"):
            lengths = _synthetic(n, median, sigma, dist, 0)
        return Corpus(
            key=f"synthetic:{n}:{median}:{sigma}:{dist}",
            label=f"synthetic: {n:,} documents ({dist}, median {median})",
            lengths=np.asarray(lengths),
        )
    if source == "Upload":
        files = uploads()
        if not files:
            raise DashboardError(
                "No files uploaded yet. On the **Corpus** page, upload .txt, .md, .jsonl, "
                ".csv or .parquet files, or choose the built-in or synthetic corpus."
            )
        split, field = str(state.get("split")), str(state.get("text_field"))
        label = f"upload: {', '.join(n for n, _ in files)}"
        with st.spinner("Reading the uploaded files…"):
            found = records.uploaded(_upload_records_key(), split, files)
            if found is not None:
                return _records_corpus(_upload_records_key(), label, found)
            docs_key = "upload:" + digest(st.session_state.get(_FILES_DIGEST, ""), split, field)
            docs = _uploaded_documents(docs_key, split, field, files)
    else:
        name = str(state.get("builtin_name"))
        docs_key = f"builtin:{name}"
        label = f"built-in: {name}"
        if name in pv.BUILTIN_RECORDS:
            return _records_corpus(docs_key, label, records.builtin(name))
        with st.spinner(f"Loading the built-in corpus {name}…"):
            docs = _builtin_documents(name)
    chars = sum(map(len, docs))
    if chars > MAX_INTERACTIVE_CHARS:
        raise DashboardError(_too_big(f"{chars:,} characters"))
    tokenizer, tok_key, ids = _tokenize(docs_key, docs)
    if ids.n_tokens > MAX_INTERACTIVE_TOKENS:
        raise DashboardError(_too_big(f"{ids.n_tokens:,} tokens"))
    return _corpus(f"{docs_key}|{tok_key}", label, docs, tokenizer, tok_key, ids)


def _corpus(key, label, docs, tokenizer, tok_key, ids, specials=(), **records_fields) -> Corpus:
    pad_id = int(pv.pad_token_id(tokenizer))
    return Corpus(
        key=key,
        label=label,
        lengths=np.asarray(ids.lengths),
        documents=docs,
        token_ids=ids,
        tokenizer=tokenizer,
        tokenizer_key=tok_key,
        pad_id=pad_id,
        tokenizer_info=_tokenizer_info(tokenizer, pad_id, specials),
        **records_fields,
    )


def _records_corpus(docs_key: str, label: str, found: records.RecordSet) -> Corpus:
    """Render the records, train (or load) the tokenizer on their text, and encode them
    with the trained flags of **Train on** (offered with its predicted time when slow)."""
    tpl = records.template(str(state.get("template_source"))) if "chat" in found.kinds else None
    text_key = f"{docs_key}|{tpl.key if tpl else 'no-chat'}"
    with st.spinner(f"Rendering {len(found.records):,} records…"):
        docs = records.rendered_texts(text_key, found.records, tpl and tpl.template)
    chars = sum(map(len, docs))
    if chars > MAX_INTERACTIVE_CHARS:
        raise DashboardError(_too_big(f"{chars:,} characters"))
    specials = tpl.special_tokens if tpl else ()
    tokenizer, tok_key = _tokenizer(text_key, docs, specials)
    train_on = records.effective_train_on(state.get("train_on"), found.kinds)
    key = f"records|{text_key}|{tok_key}|{train_on}"
    ids = jobs.cached(key)
    if ids is None:
        ids = jobs.run(
            jobs.Work(
                key=key,
                label=f"Encoding {len(found.records):,} records "
                f"(train on {records.TRAIN_ON_LABELS[train_on]})",
                seconds=records.encode_seconds(docs),
                fn=work.encode_records,
                args=(tokenizer, found.records, train_on, tpl and tpl.template),
            ),
            action="Encode the records",
        )
        if ids is None:
            st.stop()
    if ids.n_tokens > MAX_INTERACTIVE_TOKENS:
        raise DashboardError(_too_big(f"{ids.n_tokens:,} tokens"))
    return _corpus(
        key,
        f"{label} · train on {records.TRAIN_ON_LABELS[train_on]}",
        docs,
        tokenizer,
        tok_key,
        ids,
        specials,
        kinds=dict(found.kinds),
        train_on=train_on,
        template=tpl.name if tpl else None,
    )


def _token_text(tokenizer, i: int) -> str:
    t = tokenizer.id_to_token(int(i))
    return "(no text)" if t is None else t


def _tokenizer_info(tokenizer, pad_id: int, specials: tuple = ()) -> TokenizerInfo:
    if state.get("tokenizer_source") == TOKENIZER_SOURCES[1]:
        upload = uploaded_tokenizer()
        label = f"uploaded {upload.name}" if upload else "uploaded tokenizer.json"
    else:
        label = "byte-level BPE trained on this corpus"
        if specials:
            label += f" (special tokens {', '.join(specials)})"
    eos = pv.eos_token_id(tokenizer)
    if eos is None:
        eos_text = "none (documents are not separated by a token: avoid wrapped)"
    else:
        eos_text = f"{_token_text(tokenizer, eos)} (id {eos}), appended to every document"
    pad_text = f"{_token_text(tokenizer, pad_id)} (id {pad_id})"
    if eos is not None and pad_id == eos:
        pad_text += (
            ": the end-of-text token, as there is no pad token (safe: padding is neither "
            "attended to nor trained on)"
        )
    return TokenizerInfo(
        label=label, vocab_size=int(tokenizer.get_vocab_size()), eos=eos_text, pad=pad_text
    )


@st.cache_data(max_entries=8, show_spinner=False)
def _fingerprint(tokenizer_key: str, _tokenizer) -> str:
    return pv.tokenizer_fingerprint(_tokenizer)


def fingerprint(corpus: Corpus) -> str | None:
    """The tokenizer's fingerprint (computed once per tokenizer), None without text."""
    if corpus.tokenizer is None:
        return None
    return _fingerprint(corpus.tokenizer_key, corpus.tokenizer)


_TOKENIZER_FIX = (
    "Upload a complete tokenizer.json (one that can encode any text: a byte-level BPE, or "
    "a model with an unknown token such as `[UNK]` in its vocabulary), or choose "
    "**Train byte-level BPE** on the **Corpus** page."
)


def _tokenizer(docs_key: str, docs: list[str], specials: tuple = ()):
    """(tokenizer, tokenizer key): the uploaded one, or a byte-level BPE trained on
    ``docs`` (with ``specials`` as special tokens); DashboardError when there is none."""
    if state.get("tokenizer_source") == TOKENIZER_SOURCES[1]:
        upload = uploaded_tokenizer()
        if upload is None:
            raise DashboardError(
                "Upload a tokenizer.json on the **Corpus** page, or choose to train a "
                "byte-level BPE on the corpus."
            )
        tok_key = "file:" + upload.digest
        with _tokenizer_errors():
            return _loaded_tokenizer(tok_key, upload.data), tok_key
    vocab = int(state.get("vocab_size"))
    tok_key = f"bpe:{docs_key}:{vocab}" + "".join(f":{t}" for t in specials)
    with st.spinner(f"Training a byte-level BPE tokenizer ({vocab:,} tokens)…"):
        with _tokenizer_errors():
            return _trained_tokenizer(docs_key, vocab, tuple(specials), docs), tok_key


@contextmanager
def _tokenizer_errors():
    """A tokenizer that cannot be loaded or cannot encode (say, a WordLevel model without
    its unknown token) is reported with what to do, never as a traceback: packviz raises
    ``pv.TokenizerError`` (a ValueError), and anything else the ``tokenizers`` library
    raises is caught here as a last resort."""
    try:
        yield
    except DashboardError:
        raise
    except ValueError as exc:  # pv.TokenizerError
        raise DashboardError(f"The tokenizer cannot be used: {exc}. {_TOKENIZER_FIX}") from None
    except Exception as exc:  # noqa: BLE001 - the tokenizers library raises bare Exception
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise DashboardError(
            f"The tokenizer failed on this corpus ({first}). {_TOKENIZER_FIX}"
        ) from None


def _tokenize(docs_key: str, docs: list[str]):
    """(tokenizer, tokenizer key, token ids) for the documents; DashboardError on failure."""
    tokenizer, tok_key = _tokenizer(docs_key, docs)
    with st.spinner(f"Tokenizing {len(docs):,} documents…"), _tokenizer_errors():
        ids = _encoded(docs_key, tok_key, tokenizer, docs)
    return tokenizer, tok_key, ids


def _too_big(what: str) -> str:
    return (
        f"This corpus has {what}, more than the dashboard works with interactively "
        f"({MAX_INTERACTIVE_TOKENS:,} tokens). Explore its scale with the **Synthetic** "
        "corpus (lengths only, millions of documents), or pack it with the library: "
        "`pv.pack(lengths, max_len)` then `pv.materialize` and `pv.save`."
    )
