"""Headless dashboard tests with Streamlit's AppTest: every page, settings, uploads, errors.

Pages are run two ways: through the router (``app.py``) and on their own
(``switch_page`` runs a file from ``pages/`` alone in Streamlit 1.67); both must work,
because ``dashboard_state.page_settings()`` draws the sidebar when the router did not.
Numbers shown are compared with the library's own results on the same corpus.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import packviz as pv

PAGES = [
    "pages/corpus.py",
    "pages/packing.py",
    "pages/masks.py",
    "pages/compare.py",
    "pages/export.py",
]
MB = 1_000_000
APP = str(Path(__file__).resolve().parents[1] / "app.py")
SYNTH_N = 3000


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in state.items():
        at.session_state["_keep_" + k] = v
    return at


def _synthetic(n=SYNTH_N, **more) -> AppTest:
    return _app(corpus_source="Synthetic", synth_n=n, **more)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _arr(spec):
    """A plotly JSON array: plain list or base64 typed array."""
    if isinstance(spec, dict) and "bdata" in spec:
        a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
        return a.reshape([int(x) for x in str(spec.get("shape", a.size)).split(",")])
    return np.asarray(spec)


def _payloads(at) -> list[int]:
    return [len(el.proto.spec.encode()) for el in at.get("plotly_chart")]


def _ds():
    """The ``dashboard_state`` module the app imported (after a first ``run()``)."""
    return sys.modules["dashboard_state"]


def _lengths(n=SYNTH_N):
    return pv.synthetic_lengths(n, median=300, sigma=1.0, distribution="lognormal", seed=0)


# ---------------------------------------------------------------- defaults


def test_app_opens_on_builtin_corpus():
    at = _app().run()
    assert not at.exception
    assert at.title[0].value == "Corpus"
    m = _metrics(at)
    assert _int(m["Documents"]) > 10
    assert _int(m["Tokens"]) > 1000
    assert len(_figures(at)) == 1  # length histogram
    assert at.sidebar.number_input(key="max_len").value == 2048
    assert not _errors(at)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_defaults_alone(page):
    at = _app().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not _errors(at)
    assert at.sidebar.number_input(key="max_len").value == 2048
    assert all(p < 2 * MB for p in _payloads(at))


@pytest.mark.parametrize("page", PAGES[1:])
def test_every_page_renders_on_synthetic_corpus(page):
    at = _synthetic().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not _errors(at)


# ---------------------------------------------------------------- settings change numbers


def test_packing_numbers_follow_max_len_and_strategy():
    lengths = _lengths()
    at = _synthetic().run()
    at.switch_page("pages/packing.py").run()
    expected = pv.pack(lengths, 2048).stats()
    m = _metrics(at)
    assert _int(m["Rows"]) == expected.n_rows
    assert _int(m["Lower bound"]) == expected.lower_bound_rows
    assert m["Efficiency"] == f"{expected.efficiency:.2%}"

    at.sidebar.number_input(key="max_len").set_value(512).run()
    expected = pv.pack(lengths, 512).stats()
    m = _metrics(at)
    assert _int(m["Rows"]) == expected.n_rows
    assert _int(m["Split documents"]) == expected.split_docs > 0

    at.sidebar.selectbox(key="strategy").set_value("padded").run()
    padded = pv.pack(lengths, 512, strategy="padded").stats()
    m = _metrics(at)
    assert _int(m["Rows"]) == padded.n_rows > expected.n_rows
    assert _int(m["Padding tokens"]) == padded.padding_tokens

    at.sidebar.selectbox(key="overflow").set_value("truncate").run()
    truncated = pv.pack(lengths, 512, strategy="padded", overflow="truncate").stats()
    assert _int(_metrics(at)["Lost tokens"]) == truncated.lost_tokens > 0


def test_settings_survive_page_changes_through_the_router():
    at = _synthetic().run()
    at.sidebar.number_input(key="max_len").set_value(1024).run()
    at.sidebar.selectbox(key="strategy").set_value("first_fit").run()
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception
        assert at.sidebar.number_input(key="max_len").value == 1024
        assert at.sidebar.selectbox(key="strategy").value == "first_fit"


def test_quick_pick_sets_max_len():
    at = _synthetic().run()
    at.switch_page("pages/packing.py").run()
    at.sidebar.button_group(key="max_len_pick").set_value(4096).run()
    assert at.sidebar.number_input(key="max_len").value == 4096
    assert _int(_metrics(at)["Rows"]) == pv.pack(_lengths(), 4096).stats().n_rows


def test_row_window_and_heatmaps():
    at = _synthetic().run()
    at.switch_page("pages/packing.py").run()
    figs = _figures(at)
    assert [f["data"][0]["type"] for f in figs] == ["heatmap", "heatmap"]
    rows_fig = figs[0]["data"][0]
    assert "document %{customdata}" in rows_fig["hovertemplate"]
    at.number_input(key="first_row").set_value(5).run()
    trace = _figures(at)[0]["data"][0]
    assert _arr(trace["y"]).tolist() == list(range(5, 13))
    rows = pv.materialize(pv.pack(_lengths(), 2048), None, pad_id=0, rows=np.arange(5, 13))
    assert _arr(trace["customdata"]).tolist() == rows.doc_ids.tolist()
    assert "Showing rows 5–12" in " ".join(c.value for c in at.caption)


def test_builtin_row_heatmap_hover_has_decoded_tokens():
    at = _app(max_len=256).run()
    at.switch_page("pages/packing.py").run()
    assert not at.exception
    rows_fig = _figures(at)[0]["data"][0]
    assert "token" in rows_fig["hovertemplate"] or any(
        "token " in t for row in rows_fig["text"] for t in row
    )


def test_compare_matches_library():
    lengths = _lengths()
    at = _synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    expected = {s.strategy: s for s in pv.compare_strategies(lengths, 1024)}
    bars = _figures(at)[0]["data"][0]
    assert bars["x"] == list(pv.STRATEGIES)
    assert _arr(bars["y"]).tolist() == [expected[s].n_rows for s in pv.STRATEGIES]
    assert _int(_metrics(at)["Rows"]) == expected["best_fit"].n_rows
    assert len(_figures(at)) == 2  # bars + sweep (small corpus: automatic)
    sweep = _figures(at)[1]
    assert len(sweep["data"]) == 15


def test_masks_page_row_and_memory():
    at = _synthetic(max_len=1024).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    mem = dict(zip(table["format"], table["bytes"], strict=True))
    assert mem["dense_bool"] == 1024 * 1024
    assert mem["additive_fp32"] == 4 * 1024 * 1024
    figs = _figures(at)
    assert len(figs) == 3  # full row (1024 > 512 → zoom too) … mask, zoom, block view
    plan = pv.pack(_lengths(), 1024)
    busiest = int(np.argmax(np.bincount(plan.row)))
    pieces = int(np.bincount(plan.row)[busiest])
    caption = [c.value for c in at.caption if c.value.startswith("Row ")][0]
    assert caption.startswith(f"Row {busiest:,}: {pieces} pieces")  # starts on the busiest row
    at.number_input(key="mask_row").set_value(3).run()
    assert not at.exception
    pieces3 = int(np.bincount(plan.row)[3])
    caption = [c.value for c in at.caption if c.value.startswith("Row ")][0]
    assert caption.startswith(f"Row 3: {pieces3} piece")


def test_corpus_summary_matches_library():
    at = _synthetic(max_len=512).run()
    assert not at.exception
    summary = pv.length_summary(_lengths(), 512)
    m = _metrics(at)
    assert _int(m["Documents"]) == summary.n_docs
    assert _int(m["Tokens"]) == summary.tokens
    assert m["Median length"] == f"{summary.median:,.0f}"
    assert _int(m["Longer than 512"]) == summary.over_max_len > 0
    table = at.dataframe[0].value
    assert table["document"].tolist() == summary.top_docs.tolist()


def test_compare_attention_saved_is_the_library_value():
    at = _synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    expected = {s.strategy: s for s in pv.compare_strategies(_lengths(), 1024)}
    metric = [m for m in at.metric if m.label == "Attention work saved"][0]
    assert metric.value == f"{expected['best_fit'].attention_saved:.1%}"
    assert f"{expected['padded'].attention_saved:.1%}" in metric.proto.delta


def test_masks_page_padding_is_the_plans_row_fill():
    at = _synthetic(max_len=1024, mask_row=4).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception
    plan = pv.pack(_lengths(), 1024)
    caption = [c.value for c in at.caption if c.value.startswith("Row ")][0]
    pieces = int(plan.pieces_per_row[4])
    assert caption == (
        f"Row 4: {pieces} piece{'s' * (pieces != 1)}, "
        f"{1024 - int(plan.row_fill[4]):,} padding slots."
    )


# ---------------------------------------------------------------- caches follow the tokenizer


def test_vocabulary_change_repacks_and_materializes():
    """A new vocabulary size gives new lengths: plans, stats and row windows follow."""
    at = _app(max_len=256, vocab_size=4096).run()
    tokens_big_vocab = _int(_metrics(at)["Tokens"])
    at.switch_page("pages/packing.py").run()
    assert not at.exception, at.exception
    rows_big_vocab = _int(_metrics(at)["Rows"])

    at.switch_page("pages/corpus.py").run()
    at.select_slider(key="vocab_size").set_value(512).run()
    assert not at.exception, at.exception
    tokens = _int(_metrics(at)["Tokens"])
    assert tokens > tokens_big_vocab  # a smaller vocabulary needs more tokens

    at.switch_page("pages/packing.py").run()
    assert not at.exception, at.exception
    assert not _errors(at)
    rows = _int(_metrics(at)["Rows"])
    assert rows > rows_big_vocab
    at.number_input(key="first_row").set_value(3).run()  # materializes with the new ids
    assert not at.exception, at.exception
    assert _arr(_figures(at)[0]["data"][0]["y"]).tolist() == list(range(3, 11))

    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    meta = json.loads(at.expander[0].code[0].value)
    assert meta["statistics"]["input_tokens"] == tokens
    assert meta["statistics"]["n_rows"] == rows


def test_mask_row_window_is_not_reused_without_token_ids():
    """Masks materializes a row without ids (pad 0); Packing must not get it for hover."""
    at = _app(
        tokenizer_source="Upload tokenizer.json", mask_row=0, first_row=0, window_rows=1
    ).run()
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", WORDLEVEL_PAD_0, "application/json"
    ).run()
    assert not at.exception and not _errors(at)
    at.switch_page("pages/masks.py").run()
    assert not at.exception, at.exception
    at.switch_page("pages/packing.py").run()
    assert not at.exception, at.exception
    trace = _figures(at)[0]["data"][0]
    assert _arr(trace["y"]).tolist() == [0]
    assert any(t.startswith("position 0<br>token ") for t in trace["text"][0])


def test_upload_digest_is_computed_once(monkeypatch):
    at = _upload_page(vocab_size=512)
    real, hashed = _ds().digest, []

    def counting(*parts):
        hashed.append(sum(len(p) for p in parts))
        return real(*parts)

    monkeypatch.setattr(_ds(), "digest", counting)
    at = _upload(at, "notes.txt", TEXT.encode())
    assert not at.exception and not _errors(at)
    big = len(TEXT.encode())
    assert sum(n >= big for n in hashed) == 1  # once, when the file arrived
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    at.run()
    assert sum(n >= big for n in hashed) == 1  # reruns and page changes reuse it


# ---------------------------------------------------------------- scale guard


def test_compare_leaves_out_slow_online_strategies_on_huge_unsorted_corpora(monkeypatch):
    at = _synthetic(sort="none", strategy="first_fit").run()
    monkeypatch.setattr(_ds(), "COMPARE_ONLINE_LIMIT", SYNTH_N - 1)  # a "huge" corpus
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert not _errors(at)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert "`next_fit` and `first_fit`" in warnings[0] and "**desc**" in warnings[0]
    bars, sweep = _figures(at)
    assert bars["data"][0]["x"] == ["best_fit", "wrapped", "padded"]
    assert {t["name"] for t in sweep["data"]} == {"best_fit", "wrapped", "padded"}
    assert at.subheader[0].value == "Padding vs packing (best_fit)"

    at.sidebar.selectbox(key="sort").set_value("desc").run()  # desc: every strategy
    assert not at.exception and not at.warning
    assert _figures(at)[0]["data"][0]["x"] == list(pv.STRATEGIES)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [0, 1_000_000])
def test_bad_max_len_shows_error_not_traceback(bad):
    at = _synthetic().run()
    at.switch_page("pages/packing.py").run()
    at.sidebar.number_input(key="max_len").set_value(bad).run()
    assert not at.exception
    errors = _errors(at)
    assert len(errors) == 1 and "Max length" in errors[0]
    # the stopped run leaves the sidebar in place, and a good value recovers
    at.sidebar.number_input(key="max_len").set_value(512).run()
    assert not _errors(at)
    assert _int(_metrics(at)["Rows"]) == pv.pack(_lengths(), 512).stats().n_rows


def _upload_page(**state):
    at = _app(corpus_source="Upload", **state).run()
    assert not at.exception
    return at


def _upload(at, name, data, mime="text/plain"):
    at.file_uploader(key="corpus_files").upload(name, data, mime).run()
    return at


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", bytes(range(256)) * 8, "binary"),
        ("latin1.txt", "café olé ñ".encode("latin-1") * 50, "utf-8"),
        ("bad.jsonl", b'{"text": "ok"}\nthis is not json\n', "not valid json"),
        ("nofield.jsonl", b'{"body": "no text field here"}\n', "no field 'text'"),
    ],
)
def test_bad_uploads_show_error(name, data, needle):
    at = _upload(_upload_page(), name, data)
    assert not at.exception, at.exception
    errors = _errors(at)
    assert len(errors) == 1
    assert name in errors[0]  # the message names the file …
    assert needle in errors[0].lower()  # … and what is wrong with it


def test_malformed_tokenizer_shows_error():
    at = _app(tokenizer_source="Upload tokenizer.json").run()
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", b'{"model": 3', "application/json"
    ).run()
    assert not at.exception
    assert len(_errors(at)) == 1


def _wordlevel(vocab: dict[str, int]) -> bytes:
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
WORDLEVEL_NO_UNK = _wordlevel({"the": 0, "a": 1})
#: A working tokenizer whose pad id is 0 (the trained BPE pads with 1).
WORDLEVEL_PAD_0 = _wordlevel({"[PAD]": 0, "[UNK]": 1, "the": 2, "a": 3, "of": 4, "to": 5})


def test_tokenizer_that_cannot_encode_shows_error():
    at = _app(tokenizer_source="Upload tokenizer.json").run()
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", WORDLEVEL_NO_UNK, "application/json"
    ).run()
    assert not at.exception, at.exception
    errors = _errors(at)
    assert len(errors) == 1
    assert "tokenizer" in errors[0].lower() and "[UNK]" in errors[0]  # what is wrong
    assert "Train byte-level BPE" in errors[0]  # and what to do
    for page in PAGES[1:]:  # every page stops with the same message
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert _errors(at) == errors


def test_tokenizer_library_exception_shows_error(monkeypatch):
    """The tokenizers library raises bare ``Exception``: still a message, not a traceback."""

    def failing_encode(*args, **kwargs):
        raise Exception("WordLevel error: Missing [UNK] token from the vocabulary")

    monkeypatch.setattr(pv, "encode", failing_encode)
    at = _app().run()
    assert not at.exception, at.exception
    errors = _errors(at)
    assert len(errors) == 1
    assert "Missing [UNK] token" in errors[0] and "Train byte-level BPE" in errors[0]


def test_no_upload_yet_says_what_to_do():
    at = _upload_page()
    errors = _errors(at)
    assert len(errors) == 1 and "upload" in errors[0].lower()


# ---------------------------------------------------------------- upload → export


TEXT = "\n\n".join(
    f"Paragraph {i}: " + " ".join(f"word{j % 37}" for j in range(5 + 13 * (i % 9)))
    for i in range(60)
)


def test_upload_flows_through_to_export(tmp_path):
    at = _upload(_upload_page(max_len=128, vocab_size=512), "notes.txt", TEXT.encode())
    assert not at.exception, at.exception
    assert not _errors(at)
    m = _metrics(at)
    assert _int(m["Documents"]) == 60
    tokens = _int(m["Tokens"])

    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    meta = json.loads(at.expander[0].code[0].value)
    assert meta["corpus"] == "upload: notes.txt"
    assert meta["settings"]["max_len"] == 128
    assert meta["statistics"]["input_tokens"] == tokens
    assert meta["statistics"]["packed_tokens"] == tokens
    assert meta["tokenizer_fingerprint"]

    # the download's bytes are not exposed by AppTest: build the same file the page does
    docs = pv.read_documents("notes.txt", TEXT.encode(), split="paragraph")
    tok = pv.train_tokenizer(docs, vocab_size=512, cache_dir=str(tmp_path))
    ids = pv.encode(tok, docs)
    plan = pv.pack(ids.lengths, 128)
    assert meta["statistics"]["n_rows"] == plan.n_rows
    arrays = pv.materialize(plan, ids, pad_id=pv.pad_token_id(tok))
    data = pv.to_bytes(arrays, "npz", metadata=meta)
    path = tmp_path / "x.npz"
    path.write_bytes(data)
    back = pv.load(path)
    assert np.array_equal(back.input_ids, arrays.input_ids)
    assert int((back.doc_ids >= 0).sum()) == tokens

    size = at.metric[0].value
    assert size.endswith("MiB")


def test_upload_jsonl_text_field():
    lines = "\n".join(json.dumps({"body": f"record {i} " * (i + 1)}) for i in range(20))
    at = _upload_page(text_field="body", vocab_size=512)
    at = _upload(at, "data.jsonl", lines.encode(), "application/json")
    assert not at.exception and not _errors(at)
    assert _int(_metrics(at)["Documents"]) == 20


def test_upload_csv_and_parquet():
    import pandas as pd

    df = pd.DataFrame({"text": [f"row {i} " * (i + 2) for i in range(15)]})
    at = _upload_page(vocab_size=512)
    at = _upload(at, "t.csv", df.to_csv(index=False).encode(), "text/csv")
    assert not _errors(at) and _int(_metrics(at)["Documents"]) == 15
    buf = io.BytesIO()
    df.to_parquet(buf)
    at = _upload_page(vocab_size=512)
    at = _upload(at, "t.parquet", buf.getvalue(), "application/octet-stream")
    assert not at.exception and not _errors(at)
    assert _int(_metrics(at)["Documents"]) == 15


# ---------------------------------------------------------------- scale


@pytest.mark.parametrize("page", ["pages/packing.py", "pages/compare.py"])
def test_million_document_pages_render_small_figures(page):
    """A million documents render, react to settings, and no figure exceeds 2 MB.
    (Re-render times are measured in benchmarks/bench_dashboard.py, not asserted here.)"""
    at = _synthetic(n=1_000_000).run()
    at.switch_page(page).run()
    assert not at.exception
    at.sidebar.number_input(key="max_len").set_value(8192).run()
    at.sidebar.selectbox(key="strategy").set_value("first_fit").run()
    assert not at.exception and not _errors(at)
    assert max(_payloads(at)) < 2 * MB
