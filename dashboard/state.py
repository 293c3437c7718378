"""The dashboard's shared settings: defaults, kept values, the sidebar and `Settings`.

Why kept values. Streamlit drops a widget's state when the widget is not drawn in a run,
so a value typed on one page would be lost on the next. Each setting therefore lives
under a permanent session key (`kept_key`), is copied into the widget before it is drawn
(`bind`) and back when the user changes it. Views read settings through `get` and
`is_set`, never through the keys themselves.

Why `page_settings`. Streamlit runs a page file on its own, without ``app.py``, when the
first request after the server starts is a page URL (its support for a ``pages/``
folder). Every page starts with `page_settings()`, which draws the same page config and
sidebar itself when the router did not, so a page shows the same settings, defaults
and numbers either way — through public Streamlit APIs only.

Why the URL. Settings that differ from the defaults are written to the page's query
parameters (``st.query_params``) on every run, and read back on a session's first run
(`configure_page`), so a view can be shared as a link and survives a reload. Values are
checked as they are read; a bad one is ignored with a warning that names it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

import streamlit as st

import packviz as pv
from dashboard.errors import stop_with

QUICK_MAX_LENS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
#: Longest row the dashboard works with interactively (the library goes to pv.MAX_LEN_LIMIT).
DASHBOARD_MAX_LEN = 1 << 17

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
    "tokenizer_source": "Train byte-level BPE",
    "vocab_size": 4096,
    "window_rows": 8,
    "first_row": 0,
    "mask_row": 0,
    "mask_start": 0,
    "mask_force_cpu": False,
    "export_format": "npz",
    "export_fields": None,
    "doc_index": 0,
    "row_pick": "spread",
    "preset": "pretraining",
    "weights": None,
    "rank_sorts": None,
    "batch_rows": 8,
    "story_doc": 0,
    "story_query": "",
    "pin": None,
    "train_on": None,  # None: what the corpus' records train by default (dashboard.records)
    "template_source": "Built-in ChatML",
}

# True while app.py runs a page: then the router has drawn the sidebar. A context variable,
# not session state, so a run stopped half-way (st.stop) cannot leave it set.
_ROUTED: ContextVar[bool] = ContextVar("packviz_routed", default=False)


def configure_page() -> None:
    """Page title, icon and wide layout (the router's, or a page's run on its own); on a
    session's first run, the settings in the URL."""
    st.set_page_config(page_title="packviz", page_icon=":material/view_week:", layout="wide")
    from dashboard import url  # here: url imports this module

    url.load_once()


def run_routed(page) -> None:
    """Run a ``st.navigation`` page from the router (``app.py``)."""
    token = _ROUTED.set(True)
    try:
        page.run()
    finally:
        _ROUTED.reset(token)


# ----------------------------------------------------------------------------- kept values


def kept_key(name: str) -> str:
    """The session key holding a setting's permanent copy."""
    return "keep:" + name


def get(name: str):
    """Current value of a setting (its kept copy, or the default)."""
    return st.session_state.get(kept_key(name), DEFAULTS.get(name))


def put(name: str, value) -> None:
    st.session_state[kept_key(name)] = value


def is_set(name: str) -> bool:
    """True once the user (or a page on their behalf) has given the setting a value."""
    return kept_key(name) in st.session_state


def _keep(name: str) -> None:
    value = st.session_state[name]
    if value is None and DEFAULTS.get(name) is not None:
        return  # a deselected segmented control keeps its last choice
    put(name, value)


def bind(name: str) -> dict:
    """Prepare the widget key ``name`` from its kept copy; returns widget kwargs.

    Use as ``st.selectbox("Label", options, **bind("strategy"))``.
    """
    st.session_state[name] = get(name)
    return {"key": name, "on_change": _keep, "args": (name,)}


# ----------------------------------------------------------------------------- sidebar


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
    _train_on(sb)


def _train_on(sb) -> None:
    """**Train on**: the choices the corpus' record kinds allow; disabled for documents."""
    from dashboard import corpus, records  # here: both import this module

    kinds = corpus.record_kinds()
    choices = records.train_on_choices(kinds)
    st.session_state["train_on"] = records.effective_train_on(get("train_on"), kinds)
    sb.selectbox(
        "Train on",
        choices,
        format_func=records.TRAIN_ON_LABELS.get,
        disabled=len(choices) == 1,
        help="Which tokens are trained (the others get label -100): every token, the "
        "completions of prompt/completion records, every assistant turn of chats, or only "
        "the last one. "
        + (
            f"This corpus: {records.kinds_text(kinds)}."
            if kinds
            else "Documents train every token: choose a built-in chat or Q&A corpus, or "
            "upload records with `messages` or `prompt`/`completion`."
        ),
        key="train_on",
        on_change=_keep,
        args=("train_on",),
    )


@dataclass(frozen=True)
class Settings:
    """The packing settings every page shares."""

    max_len: int
    strategy: pv.Strategy
    sort: pv.Sort
    overflow: pv.Overflow
    seed: int

    def key(self) -> str:
        return f"{self.max_len}|{self.strategy}|{self.sort}|{self.overflow}|{self.seed}"

    def key_all_strategies(self) -> str:
        return f"{self.max_len}|*|{self.sort}|{self.overflow}|{self.seed}"


def current_settings() -> Settings:
    """The shared packing settings as they are kept now."""
    return Settings(
        int(get("max_len")),
        str(get("strategy")),
        str(get("sort")),
        str(get("overflow")),
        int(get("seed")),
    )


def apply_settings(s: Settings) -> None:
    """Make ``s`` the current settings (use as a button's ``on_click``: the sidebar is
    drawn before the page body, so it must change before the next run starts)."""
    for name in ("max_len", "strategy", "sort", "overflow", "seed"):
        put(name, getattr(s, name))


def pinned() -> Settings | None:
    """The settings pinned as "A" for an A/B comparison, or None."""
    p = get("pin")
    return None if p is None else Settings(*p)


def pin(s: Settings | None) -> None:
    """Pin ``s`` as "A" (None: unpin)."""
    put("pin", None if s is None else (s.max_len, s.strategy, s.sort, s.overflow, s.seed))


def page_settings() -> Settings:
    """Settings for a page; draws the page config and sidebar when the page runs without
    the router, and writes the settings to the URL. Stops the page with an error box when
    the max length cannot be used."""
    if not _ROUTED.get():
        configure_page()
        sidebar()
    from dashboard import url

    url.save()
    s = current_settings()
    if s.max_len < 1:
        stop_with(
            "Max length must be at least 1 token. Type a positive number in **Max length** "
            "or click one of the quick picks (256 … 32k)."
        )
    if s.max_len > DASHBOARD_MAX_LEN:
        stop_with(
            f"Max length {s.max_len:,} is over the dashboard's limit of {DASHBOARD_MAX_LEN:,} "
            "slots per row (row views and masks would not fit in memory). Pick a smaller "
            f"value; the library (`pv.pack`) accepts up to {pv.MAX_LEN_LIMIT:,}."
        )
    return s
