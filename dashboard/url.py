"""Settings in the URL: written whenever a setting changes, read on a session's first run.

A link then reopens the same view with the same corpus choice and settings, and a reload
keeps them. Only values that differ from the defaults are written (short links), and
every value read back is checked like a widget would check it: a bad one is ignored and
named in a warning, never a traceback (`parse` never raises, whatever the query string).
Values that a page sets itself after its settings were written (a default row, a search
result) reach the URL too: `dashboard.state.put` writes it again (`sync`), so the URL
always shows the settings as the run leaves them. Uploaded files cannot travel in a URL:
a link to an uploaded corpus opens the upload view, which asks for the files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

import packviz as pv
from dashboard import state

_LOADED = "url.loaded"
_WARNINGS = "url.warnings"


def _bounded(kind: Callable[[str], float], lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        v = kind(text)
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:,} and {hi:,}")
        return v

    return parse


def _int(lo: int, hi: int) -> Callable[[str], int]:
    return _bounded(int, lo, hi)


def _float(lo: float, hi: float) -> Callable[[str], float]:
    return _bounded(float, lo, hi)


def _choice(options) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"choose one of {', '.join(map(str, options))}")
        return text

    return parse


def _pin(text: str) -> tuple:
    m, strategy, sort, overflow, seed = text.split(",")
    return (
        _int(1, state.DASHBOARD_MAX_LEN)(m),
        _choice(pv.STRATEGIES)(strategy),
        _choice(pv.SORTS)(sort),
        _choice(pv.OVERFLOWS)(overflow),
        _int(0, state.MAX_SEED)(seed),
    )


def _weights(text: str) -> dict:
    out = {}
    for part in text.split(","):
        name, value = part.split(":")
        out[_choice(pv.CRITERIA)(name)] = _float(0.0, 100.0)(value)
    return out


def _sorts(text: str) -> list:
    return list(dict.fromkeys(_choice(pv.SORTS)(x) for x in text.split(",")))  # once each


VOCAB_SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768)


def _vocab(text: str) -> int:
    return _choice(VOCAB_SIZES)(int(text))


#: Setting name -> parser of its URL text (the same name is the URL parameter).
PARSERS: dict[str, Callable[[str], object]] = {
    "max_len": _int(0, pv.MAX_LEN_LIMIT),
    "strategy": _choice(pv.STRATEGIES),
    "sort": _choice(pv.SORTS),
    "overflow": _choice(pv.OVERFLOWS),
    "seed": _int(0, state.MAX_SEED),
    "corpus_source": _choice(("Built-in", "Synthetic", "Upload")),
    "builtin_name": _choice((*pv.BUILTIN_CORPORA, *pv.BUILTIN_RECORDS)),
    "split": _choice(pv.SPLITS),
    "text_field": str,
    "synth_n": _int(1, 20_000_000),
    "synth_median": _int(1, 1 << 20),
    "synth_sigma": _float(0.0, 4.0),
    "synth_distribution": _choice(pv.DISTRIBUTIONS),
    "tokenizer_source": _choice(("Train byte-level BPE", "Upload tokenizer.json")),
    "vocab_size": _vocab,
    "row_pick": _choice(pv.ROW_PICKS),
    "window_rows": _int(1, 64),
    "first_row": _int(0, 2**40),
    "mask_row": _int(0, 2**40),
    "preset": _choice(pv.PRESETS),
    "weights": _weights,
    "rank_sorts": _sorts,
    "batch_rows": _int(1, 4096),
    "story_doc": _int(0, 2**40),
    "export_format": _choice(pv.FORMATS),
    "pin": _pin,
    "train_on": _choice(pv.TRAIN_ON),
    "template_source": _choice(("Built-in ChatML", "Upload tokenizer_config.json")),
}


def _number(v: float) -> str:
    """Short when that is exact ('1', '2.5'), else every digit: a link gives back the
    value typed."""
    short = f"{v:g}"
    return short if float(short) == v else repr(float(v))


def _text(name: str, value) -> str:
    if name == "pin":
        return ",".join(map(str, value))
    if name == "weights":
        return ",".join(f"{k}:{_number(v)}" for k, v in value.items())
    if name == "rank_sorts":
        return ",".join(value)
    return str(value)


def parse(params: Mapping[str, str]) -> tuple[dict[str, object], list[str]]:
    """The settings a query string carries, checked, and what was ignored (``name=text
    (reason)``). Never raises: unknown names are not settings, and a value its parser
    refuses (whatever the exception) is left out and named.

    >>> parse({"max_len": "512", "strategy": "magic", "utm_source": "x"})
    ({'max_len': 512}, ['`strategy=magic` (choose one of next_fit, first_fit, best_fit, wrapped, padded)'])
    """
    values, bad = {}, []
    for name, read in PARSERS.items():
        text = params.get(name)
        if text is None:
            continue
        try:
            values[name] = read(text)
        except Exception as exc:  # noqa: BLE001 - any bad text is a warning, never a traceback
            said = str(exc) if isinstance(exc, ValueError) else ""
            reason = said if "must" in said or "choose" in said else "not valid"
            bad.append(f"`{name}={text}` ({reason})")
    return values, bad


def load_once() -> None:
    """On a session's first run, take the settings the URL carries (checked)."""
    if st.session_state.get(_LOADED):
        return
    values, bad = parse({k: st.query_params.get(k) for k in st.query_params})
    for name, value in values.items():
        state.put(name, value)
    st.session_state[_WARNINGS] = bad
    st.session_state[_LOADED] = True  # from now on every state.put writes the URL (sync)


def warnings() -> list[str]:
    """URL settings that were ignored on this session's first run."""
    return st.session_state.get(_WARNINGS) or []


def current() -> dict[str, str]:
    """The URL parameters for the settings as they are now (non-defaults only)."""
    out = {}
    for name in PARSERS:
        value = state.get(name)
        if value is not None and value != state.DEFAULTS.get(name):
            out[name] = _text(name, value)
    return out


def sync() -> None:
    """Write the settings to the URL when they changed (no rerun is triggered). Called
    by `dashboard.state.put` once the URL was read, so the URL follows every change."""
    if not st.session_state.get(_LOADED):
        return  # still reading the URL: writing now would drop the parameters not read yet
    want = current()
    have = {k: st.query_params.get(k) for k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)


def save() -> None:
    """Write the settings to the URL when they changed, and say once which values of
    the link were ignored."""
    sync()
    bad = warnings()
    if bad:
        st.warning("Ignored in the link: " + "; ".join(bad) + ".")
        st.session_state[_WARNINGS] = []
