"""Driving the dashboard headless with Streamlit's AppTest, and reading what it shows.

``app()`` starts at ``app.py`` (the router); ``AppTest.switch_page("pages/x.py")`` then
runs that page file on its own, as Streamlit 1.67 does for a ``pages/`` folder — the
path where each page draws its own sidebar (``dashboard.state.page_settings``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

import packviz as pv
from dashboard.state import kept_key

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = [
    "pages/corpus.py",
    "pages/recommend.py",
    "pages/packing.py",
    "pages/masks.py",
    "pages/compare.py",
    "pages/document.py",
    "pages/loss.py",
    "pages/export.py",
    "pages/audit.py",
]
MB = 1_000_000
SYNTH_N = 3000


def app(**settings) -> AppTest:
    """An AppTest of the router with these settings already kept (not yet run)."""
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in settings.items():
        at.session_state[kept_key(name)] = value
    return at


def synthetic(n: int = SYNTH_N, **settings) -> AppTest:
    return app(corpus_source="Synthetic", synth_n=n, **settings)


def synthetic_lengths(n: int = SYNTH_N) -> np.ndarray:
    """The lengths the dashboard's synthetic corpus draws with its defaults."""
    return pv.synthetic_lengths(n, median=300, sigma=1.0, distribution="lognormal", seed=0)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def number(text: str) -> int:
    return int(text.replace(",", ""))


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def payloads(at) -> list[int]:
    return [len(el.proto.spec.encode()) for el in at.get("plotly_chart")]


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def plotly_array(spec) -> np.ndarray:
    """A plotly JSON array: a plain list or a base64 typed array."""
    if isinstance(spec, dict) and "bdata" in spec:
        a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
        return a.reshape([int(x) for x in str(spec.get("shape", a.size)).split(",")])
    return np.asarray(spec)


def wordlevel_tokenizer(vocab: dict[str, int]) -> bytes:
    """A minimal WordLevel tokenizer.json (unknown token ``[UNK]``) over ``vocab``."""
    return json.dumps(
        {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [],
            "normalizer": None,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": None,
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
        }
    ).encode()


#: Loads, but cannot encode a word outside its vocabulary: ``[UNK]`` is not in it.
WORDLEVEL_NO_UNK = wordlevel_tokenizer({"the": 0, "a": 1})
#: A working tokenizer whose pad id is 0 (the trained BPE pads with 1).
WORDLEVEL_PAD_0 = wordlevel_tokenizer({"[PAD]": 0, "[UNK]": 1, "the": 2, "a": 3, "of": 4, "to": 5})


def download_labels(at) -> list[str]:
    return [d.proto.label for d in at.get("download_button")]


def buttons(at) -> dict[str, object]:
    """Buttons by label (the last one wins when labels repeat)."""
    return {b.label: b for b in at.button}


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def records_ids(name: str, train_on: str, *, vocab_size: int = 4096, cache_dir=False):
    """(tokenizer, token ids with trained flags) the dashboard builds for a built-in
    records corpus: a byte-level BPE on the rendered text (ChatML's special tokens for
    chats), then `pv.encode_records`."""
    recs = pv.load_builtin_records(name)
    texts = [r.text for r in pv.render_records(recs, train_on="all")]
    specials = pv.CHATML_SPECIAL_TOKENS if name == "python-docs-chat" else ()
    tok = pv.train_tokenizer(
        texts, vocab_size=vocab_size, cache_dir=cache_dir, extra_special_tokens=specials
    )
    return tok, pv.encode_records(tok, recs, train_on=train_on)


def train_on(at, value: str):
    """Choose **Train on** in the sidebar."""
    at.sidebar.selectbox(key="train_on").set_value(value).run()
    return at
