"""Shared settings and cached calls into packviz for the dashboard pages (not a page).

Why this module: every page needs the same sidebar settings and the same corpus → plan
chain, and each page must also work when Streamlit runs its file on its own (AppTest's
``switch_page`` does that). So:

- Settings live in *permanent* session keys (``_keep_<name>``) copied into the widget
  key before each render and back on change: widget state is dropped by Streamlit when a
  widget is not drawn in a run, the permanent copy is not, so values survive page changes.
- ``page_settings()`` draws the sidebar itself when the router (``app.py``) did not.
- Heavy results are cached by plain strings (content digests and settings), never by
  objects: ``st.cache_data`` for arrays, ``st.cache_resource`` for tokenizers.
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import packviz as pv

QUICK_MAX_LENS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
#: Longest row the dashboard works with interactively (the library goes to pv.MAX_LEN_LIMIT).
DASHBOARD_MAX_LEN = 1 << 17
#: Most tokens the dashboard tokenizes interactively (bigger: the synthetic corpus or the library).
MAX_INTERACTIVE_TOKENS = 5_000_000
MAX_INTERACTIVE_CHARS = 4 * MAX_INTERACTIVE_TOKENS
CACHE_DIR = Path(__file__).resolve().parent / ".packviz-cache"
UPLOAD_TYPES = ("txt", "md", "jsonl", "csv", "parquet")
SOURCES = ("Built-in", "Synthetic", "Upload")
TOKENIZER_SOURCES = ("Train byte-level BPE", "Upload tokenizer.json")

DEFAULTS: dict[str, object] = {
    "max_len": 2048,
    "strategy": "best_fit",
    "sort": "desc",
    "overflow": "split",
    "seed": 0,
    "corpus_source": "Built-in",
    "builtin_name": "python-docs",
    "split": "paragraph",
    "text_field": "text",
    "synth_n": 100_000,
    "synth_median": 300,
    "synth_sigma": 1.0,
    "synth_distribution": "lognormal",
    "tokenizer_source": TOKENIZER_SOURCES[0],
    "vocab_size": 4096,
    "window_rows": 8,
    "first_row": 0,
    "mask_row": 0,
    "mask_start": 0,
    "mask_force_cpu": False,
    "export_format": "npz",
    "export_fields": None,
    "doc_index": 0,
}


# True while app.py runs a page: then the router has drawn the sidebar. A context variable,
# not session state, so a run stopped half-way (st.stop) cannot leave it set.
_ROUTED: ContextVar[bool] = ContextVar("packviz_routed", default=False)


def run_routed(page) -> None:
    """Run a ``st.navigation`` page from the router (``app.py``)."""
    token = _ROUTED.set(True)
    try:
        page.run()
    finally:
        _ROUTED.reset(token)


class DashboardError(Exception):
    """A user-facing problem: shown with st.error, never as a traceback."""


# ----------------------------------------------------------------------------- state


def get(name: str):
    """Current value of a shared setting (its permanent copy, or the default)."""
    return st.session_state.get("_keep_" + name, DEFAULTS.get(name))


def put(name: str, value) -> None:
    st.session_state["_keep_" + name] = value


def _keep(name: str) -> None:
    st.session_state["_keep_" + name] = st.session_state[name]


def bind(name: str) -> dict:
    """Prepare the widget key ``name`` from its permanent copy; returns widget kwargs.

    Use as ``st.selectbox("Label", options, **bind("strategy"))``.
    """
    st.session_state[name] = get(name)
    return {"key": name, "on_change": _keep, "args": (name,)}


def _pick_max_len() -> None:
    v = st.session_state.get("max_len_pick")
    if v:
        put("max_len", int(v))


def sidebar() -> None:
    """The shared packing settings (drawn by app.py, or by a page run on its own)."""
    sb = st.sidebar
    sb.header("Packing settings")
    sb.number_input(
        "Max length",
        min_value=0,
        step=1,
        help="Token slots per packed row. Type any value, or use a quick pick below.",
        **bind("max_len"),
    )
    st.session_state["max_len_pick"] = get("max_len") if get("max_len") in QUICK_MAX_LENS else None
    sb.pills(
        "Quick picks",
        QUICK_MAX_LENS,
        key="max_len_pick",
        on_change=_pick_max_len,
        format_func=lambda v: f"{v // 1024}k" if v >= 1024 else str(v),
        label_visibility="collapsed",
    )
    sb.selectbox(
        "Strategy",
        pv.STRATEGIES,
        help="next_fit: one open row; first_fit: first row with room; best_fit: tightest "
        "row with room; wrapped: concatenate and cut; padded: one piece per row (baseline).",
        **bind("strategy"),
    )
    sb.selectbox(
        "Sort",
        pv.SORTS,
        help="Order the pieces are offered in: longest first (desc), shortest first, input "
        "order (none) or shuffled with the seed (random).",
        **bind("sort"),
    )
    sb.selectbox(
        "Overflow",
        pv.OVERFLOWS,
        help="Documents longer than max length: split into max-length chunks (nothing lost), "
        "truncate (keep the head) or drop.",
        **bind("overflow"),
    )
    sb.number_input("Seed", min_value=0, step=1, help="Seed of sort=random.", **bind("seed"))


@dataclass(frozen=True)
class Settings:
    max_len: int
    strategy: str
    sort: str
    overflow: str
    seed: int

    def key(self) -> str:
        return f"{self.max_len}|{self.strategy}|{self.sort}|{self.overflow}|{self.seed}"

    def key_all_strategies(self) -> str:
        return f"{self.max_len}|*|{self.sort}|{self.overflow}|{self.seed}"


def page_settings() -> Settings:
    """Settings for a page; draws the sidebar when the page runs without the router.

    Stops the page with an st.error when the max length cannot be used.
    """
    if not _ROUTED.get():
        _leave_legacy_multipage()
        sidebar()
    s = Settings(
        int(get("max_len")),
        str(get("strategy")),
        str(get("sort")),
        str(get("overflow")),
        int(get("seed")),
    )
    if s.max_len < 1:
        st.error(
            "Max length must be at least 1 token. Type a positive number in **Max length** "
            "or click one of the quick picks (256 … 32k)."
        )
        st.stop()
    if s.max_len > DASHBOARD_MAX_LEN:
        st.error(
            f"Max length {s.max_len:,} is over the dashboard's limit of {DASHBOARD_MAX_LEN:,} "
            "slots per row (row views and masks would not fit in memory). Pick a smaller "
            f"value; the library (`pv.pack`) accepts up to {pv.MAX_LEN_LIMIT:,}."
        )
        st.stop()
    return s


def _leave_legacy_multipage() -> None:
    """Hand a page that Streamlit ran on its own back to the router (``app.py``).

    Streamlit 1.67 keeps a server-wide flag: when the first request after start is for a
    page URL (say ``/packing``), it runs ``pages/packing.py`` alone through its legacy
    ``pages/`` folder support, and keeps doing so for every session (file-name page list,
    no router). Clearing the flag and rerunning lets ``app.py`` and ``st.navigation``
    take over for the same URL. Internal API: without it the page still works alone.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - other Streamlit versions
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def show_error(exc: Exception) -> None:
    st.error(str(exc))
    st.stop()


# ----------------------------------------------------------------------------- uploads


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:20]


def store_uploads() -> None:
    """on_change of the corpus uploader: keep the files (name, bytes) across pages.

    The files' digest is computed here, once per upload (up to 100 MB each), and kept
    beside them: reruns use the stored digest instead of hashing the bytes again.
    """
    files = st.session_state.get("corpus_files") or []
    kept = [(f.name, f.getvalue()) for f in files]
    st.session_state["_uploads"] = kept
    st.session_state["_uploads_digest"] = digest(*(p for f in kept for p in f)) if kept else ""


def store_tokenizer_upload() -> None:
    """on_change of the tokenizer uploader: keep (name, bytes, digest) across pages."""
    f = st.session_state.get("tokenizer_file")
    if f is None:
        st.session_state["_tokenizer_upload"] = None
    else:
        data = f.getvalue()
        st.session_state["_tokenizer_upload"] = (f.name, data, digest(data))


def uploads() -> list[tuple[str, bytes]]:
    return st.session_state.get("_uploads") or []


def uploads_digest() -> str:
    """Digest of the uploaded corpus files (computed once, in `store_uploads`)."""
    d = st.session_state.get("_uploads_digest")
    if d is None and uploads():  # state from before the digest was kept
        d = digest(*(p for f in uploads() for p in f))
        st.session_state["_uploads_digest"] = d
    return d or ""


# ----------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Corpus:
    """What the pages work on: lengths always; documents and tokens when there is text."""

    key: str
    label: str
    lengths: np.ndarray
    documents: list[str] | None = None
    token_ids: object | None = None  # pv.TokenIds
    tokenizer: object | None = None
    tokenizer_key: str = ""
    pad_id: int = 0

    @property
    def has_text(self) -> bool:
        return self.token_ids is not None


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
def _trained_tokenizer(corpus_key: str, vocab_size: int, _documents):
    return pv.train_tokenizer(_documents, vocab_size=vocab_size, cache_dir=CACHE_DIR)


@st.cache_resource(max_entries=4, show_spinner=False)
def _uploaded_tokenizer(key: str, _data: bytes):
    return pv.load_tokenizer(_data)


@st.cache_data(max_entries=4, show_spinner=False)
def _encoded(corpus_key: str, tokenizer_key: str, _tokenizer, _documents):
    return pv.encode(_tokenizer, _documents)


def current_corpus() -> Corpus:
    """Load the selected corpus (cached), tokenize it, and return it; stop on bad input.

    ``Corpus.key`` names everything that determines the lengths: the documents *and*, for
    text corpora, the tokenizer. Plans, statistics and row windows are cached under it,
    so a new vocabulary size or tokenizer file never reuses a plan made for other lengths.
    """
    source = get("corpus_source")
    try:
        if source == "Synthetic":
            n, median, sigma = (
                int(get("synth_n")),
                int(get("synth_median")),
                float(get("synth_sigma")),
            )
            dist = str(get("synth_distribution"))
            with st.spinner(f"Drawing {n:,} synthetic document lengths…"):
                lengths = _synthetic(n, median, sigma, dist, 0)
            key = f"synthetic:{n}:{median}:{sigma}:{dist}"
            label = f"synthetic: {n:,} documents ({dist}, median {median})"
            return Corpus(key=key, label=label, lengths=np.asarray(lengths))
        if source == "Upload":
            files = uploads()
            if not files:
                raise DashboardError(
                    "No files uploaded yet. On the **Corpus** page, upload .txt, .md, .jsonl, "
                    ".csv or .parquet files, or choose the built-in or synthetic corpus."
                )
            split, field = str(get("split")), str(get("text_field"))
            docs_key = "upload:" + digest(uploads_digest(), split, field)
            with st.spinner("Reading the uploaded files…"):
                docs = _uploaded_documents(docs_key, split, field, files)
            label = f"upload: {', '.join(n for n, _ in files)}"
        else:
            name = str(get("builtin_name"))
            docs_key = f"builtin:{name}"
            with st.spinner(f"Loading the built-in corpus {name}…"):
                docs = _builtin_documents(name)
            label = f"built-in: {name}"
        if not docs:
            raise DashboardError(
                "The corpus has no documents. Upload files with text in them, or choose "
                "another split or text field."
            )
        chars = sum(map(len, docs))
        if chars > MAX_INTERACTIVE_CHARS:
            raise DashboardError(_too_big(f"{chars:,} characters"))
        tokenizer, tok_key, ids = _tokenize(docs_key, docs)
        n_tokens = int(np.asarray(ids.lengths).sum())
        if n_tokens > MAX_INTERACTIVE_TOKENS:
            raise DashboardError(_too_big(f"{n_tokens:,} tokens"))
        return Corpus(
            key=f"{docs_key}|{tok_key}",
            label=label,
            lengths=np.asarray(ids.lengths),
            documents=docs,
            token_ids=ids,
            tokenizer=tokenizer,
            tokenizer_key=tok_key,
            pad_id=int(pv.pad_token_id(tokenizer)),
        )
    except (ValueError, DashboardError) as exc:  # CorpusError, TokenizerError are ValueErrors
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop raises


_TOKENIZER_FIX = (
    "Upload a complete tokenizer.json (one that can encode any text: a byte-level BPE, or "
    "a model with an unknown token such as `[UNK]` in its vocabulary), or choose "
    "**Train byte-level BPE** on the **Corpus** page."
)


def _tokenize(docs_key: str, docs: list[str]):
    """(tokenizer, tokenizer key, token ids) for the documents; DashboardError on failure.

    A tokenizer that loads but cannot encode (say, a WordLevel model without its unknown
    token) is reported with what to do, never as a traceback: ``pv.encode`` raises
    ``pv.TokenizerError`` (a ValueError), and anything else the ``tokenizers`` library
    raises is caught here as a last resort.
    """
    try:
        tok = st.session_state.get("_tokenizer_upload")
        if get("tokenizer_source") == TOKENIZER_SOURCES[1]:
            if tok is None:
                raise DashboardError(
                    "Upload a tokenizer.json on the **Corpus** page, or choose to train a "
                    "byte-level BPE on the corpus."
                )
            data = tok[1]
            tok_key = "file:" + (tok[2] if len(tok) > 2 else digest(data))
            tokenizer = _uploaded_tokenizer(tok_key, data)
        else:
            vocab = int(get("vocab_size"))
            tok_key = f"bpe:{docs_key}:{vocab}"
            with st.spinner(f"Training a byte-level BPE tokenizer ({vocab:,} tokens)…"):
                tokenizer = _trained_tokenizer(docs_key, vocab, docs)
        with st.spinner(f"Tokenizing {len(docs):,} documents…"):
            ids = _encoded(docs_key, tok_key, tokenizer, docs)
    except DashboardError:
        raise
    except ValueError as exc:  # pv.TokenizerError
        raise DashboardError(f"The tokenizer cannot be used: {exc}. {_TOKENIZER_FIX}") from None
    except Exception as exc:  # noqa: BLE001 - the tokenizers library raises bare Exception
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise DashboardError(
            f"The tokenizer failed on this corpus ({first}). {_TOKENIZER_FIX}"
        ) from None
    return tokenizer, tok_key, ids


def _too_big(what: str) -> str:
    return (
        f"This corpus has {what}, more than the dashboard works with interactively "
        f"({MAX_INTERACTIVE_TOKENS:,} tokens). Explore its scale with the **Synthetic** "
        "corpus (lengths only, millions of documents), or pack it with the library: "
        "`pv.pack(lengths, max_len)` then `pv.materialize` and `pv.save`."
    )


# ----------------------------------------------------------------------------- plans


@st.cache_data(max_entries=24, show_spinner=False)
def _plan(corpus_key: str, settings_key: str, _lengths, _s: Settings):
    plan = pv.pack(
        _lengths, _s.max_len, strategy=_s.strategy, sort=_s.sort, overflow=_s.overflow, seed=_s.seed
    )
    return plan, plan.stats()


def plan_for(corpus: Corpus, s: Settings):
    """(PackPlan, PackStats) for the corpus and settings, cached; stops on bad settings."""
    try:
        return _plan(corpus.key, s.key(), corpus.lengths, s)
    except ValueError as exc:
        st.error(f"Cannot pack with these settings: {exc}")
        st.stop()
        raise


#: Above this many documents, Compare leaves out the strategies that are slow with
#: ``sort`` none/random (online first-fit: an O(N log N) Python segment tree, ~5 s per
#: million documents; next-fit: O(rows) Python); desc/asc stay within the 1.5 s target.
COMPARE_ONLINE_LIMIT = 1_000_000
SLOW_ONLINE_STRATEGIES = ("first_fit", "next_fit")


def compare_strategies_for(corpus: Corpus, s: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(strategies Compare runs, strategies it leaves out) for this corpus and sort."""
    slow = s.sort in ("none", "random") and corpus.lengths.size > COMPARE_ONLINE_LIMIT
    skipped = tuple(x for x in pv.STRATEGIES if slow and x in SLOW_ONLINE_STRATEGIES)
    return tuple(x for x in pv.STRATEGIES if x not in skipped), skipped


@st.cache_data(max_entries=24, show_spinner=False)
def _compare(
    corpus_key: str, settings_key: str, strategies: tuple[str, ...], _lengths, _s: Settings
) -> list:
    return pv.compare_strategies(
        _lengths,
        _s.max_len,
        strategies=strategies,
        sort=_s.sort,
        overflow=_s.overflow,
        seed=_s.seed,
    )


def compare(corpus: Corpus, s: Settings, strategies: tuple[str, ...] = pv.STRATEGIES) -> list:
    """``PackStats`` of each strategy for the other settings (cached without the strategy)."""
    return _compare(corpus.key, s.key_all_strategies(), tuple(strategies), corpus.lengths, s)


@st.cache_data(max_entries=16, show_spinner=False)
def _sweep(
    corpus_key: str,
    sweep_key: str,
    max_lens: tuple[int, ...],
    strategies: tuple[str, ...],
    _lengths,
    _s: Settings,
    _progress,
) -> list[dict]:
    stats = pv.sweep(
        _lengths,
        max_lens,
        strategies=strategies,
        sort=_s.sort,
        overflow=_s.overflow,
        seed=_s.seed,
        progress=_progress,
    )
    return [x.as_dict() for x in stats]


def sweep(corpus: Corpus, s: Settings, max_lens, strategies, progress=None) -> list[dict]:
    """``pv.sweep`` over ``max_lens`` × ``strategies`` (cached; ``progress`` runs on a miss).

    ``progress(done, total, max_len, strategy)`` may update a Streamlit element made
    outside (a progress bar): it runs in the context copied here, outside the cached
    call, so the update is not recorded for replay (replaying it on a cache hit would
    fail, the bar being gone by then).
    """
    report = None
    if progress is not None:
        outside = contextvars.copy_context()

        def report(*args) -> None:
            outside.run(progress, *args)

    key = f"{s.sort}|{s.overflow}|{s.seed}"
    return _sweep(corpus.key, key, tuple(max_lens), tuple(strategies), corpus.lengths, s, report)


@st.cache_data(max_entries=16, show_spinner=False)
def _length_summary(corpus_key: str, max_len: int, _lengths):
    return pv.length_summary(_lengths, max_len)


def length_summary(corpus: Corpus, max_len: int):
    """``pv.length_summary`` of the corpus (cached)."""
    return _length_summary(corpus.key, max_len, corpus.lengths)


@st.cache_data(max_entries=16, show_spinner=False)
def _rows_window(
    corpus_key: str,
    settings_key: str,
    lo: int,
    hi: int,
    with_ids: bool,
    pad_id: int,
    _plan,
    _token_ids,
):
    return pv.materialize(
        _plan, _token_ids if with_ids else None, pad_id=pad_id, rows=np.arange(lo, hi)
    )


def rows_window(corpus: Corpus, s: Settings, plan, lo: int, hi: int, *, with_ids: bool = True):
    """Materialize only rows [lo, hi) of the plan (cached).

    ``with_ids=False`` skips ``input_ids`` (a mask needs only ``doc_ids``); the cache key
    says which, so a window cached without ids is never handed to a page that needs them.
    The corpus key names the tokenizer too.
    """
    with_ids = bool(with_ids and corpus.has_text)
    pad_id = corpus.pad_id if with_ids else 0
    return _rows_window(corpus.key, s.key(), lo, hi, with_ids, pad_id, plan, corpus.token_ids)


def decoded_rows(corpus: Corpus, input_ids: np.ndarray) -> list[list[str]]:
    """Per-slot token strings of materialized rows (for hover)."""
    return _decoded(corpus.tokenizer_key, input_ids.tobytes(), input_ids.shape, corpus.tokenizer)


@st.cache_data(max_entries=16, show_spinner=False)
def _decoded(tokenizer_key: str, ids_bytes: bytes, shape: tuple, _tokenizer) -> list[list[str]]:
    ids = np.frombuffer(ids_bytes, dtype=np.int32).reshape(shape)
    flat = pv.decode_tokens(_tokenizer, ids.ravel().tolist())
    w = shape[1]
    return [flat[i * w : (i + 1) * w] for i in range(shape[0])]


class Timer:
    """``with Timer() as t: ...``; then ``t.seconds``."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        return False
