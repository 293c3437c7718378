"""Corpus: choose the documents and the tokenizer; see lengths, longest documents, tokens."""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, corpus, figures, state

s = state.page_settings()
st.title("Corpus")

source = st.radio("Source", corpus.SOURCES, horizontal=True, **state.bind("corpus_source"))
if source == "Built-in":
    st.selectbox(
        "Built-in corpus",
        list(pv.BUILTIN_CORPORA),
        format_func=lambda n: f"{n} — {pv.BUILTIN_CORPORA[n]}",
        **state.bind("builtin_name"),
    )
elif source == "Synthetic":
    c = st.columns(4)
    c[0].number_input(
        "Documents", min_value=1, max_value=20_000_000, step=10_000, **state.bind("synth_n")
    )
    c[1].selectbox("Length distribution", pv.DISTRIBUTIONS, **state.bind("synth_distribution"))
    c[2].number_input(
        "Median length", min_value=1, max_value=1 << 20, step=50, **state.bind("synth_median")
    )
    c[3].number_input(
        "Spread (sigma)", min_value=0.0, max_value=4.0, step=0.1, **state.bind("synth_sigma")
    )
    st.caption("Lengths only, to explore scale: there is no text, so token views are empty.")
else:
    st.file_uploader(
        "Upload documents (.txt, .md, .jsonl, .csv, .parquet; several at once)",
        type=list(corpus.UPLOAD_TYPES),
        accept_multiple_files=True,
        key="corpus_files",
        on_change=corpus.store_uploads,
    )
    if corpus.uploads():
        st.caption("Using: " + ", ".join(f"{n} ({len(b):,} bytes)" for n, b in corpus.uploads()))
    c = st.columns(2)
    c[0].selectbox(
        "Documents are",
        pv.SPLITS,
        help="How text becomes documents: one per file, paragraph, line or sentence "
        "(JSONL/CSV/Parquet: one per record).",
        **state.bind("split"),
    )
    c[1].text_input("Text field (JSONL, CSV, Parquet)", **state.bind("text_field"))

if source != "Synthetic":
    c = st.columns(2)
    tok_source = c[0].radio(
        "Tokenizer", corpus.TOKENIZER_SOURCES, horizontal=True, **state.bind("tokenizer_source")
    )
    if tok_source == corpus.TOKENIZER_SOURCES[0]:
        c[1].select_slider(
            "Vocabulary size",
            options=[512, 1024, 2048, 4096, 8192, 16384, 32768],
            **state.bind("vocab_size"),
        )
    else:
        c[1].file_uploader(
            "tokenizer.json (Hugging Face tokenizers)",
            type=["json"],
            key="tokenizer_file",
            on_change=corpus.store_tokenizer_upload,
        )

current = corpus.current_corpus()
lengths = current.lengths
summary = cached.length_summary(current, s.max_len)
st.divider()
c = st.columns(4)
c[0].metric("Documents", f"{summary.n_docs:,}")
c[1].metric("Tokens", f"{summary.tokens:,}")
c[2].metric("Median length", f"{summary.median:,.0f}")
c[3].metric(
    f"Longer than {s.max_len:,}",
    f"{summary.over_max_len:,}",
    help=f"{summary.tokens_over_max_len:,} tokens past max length",
)
st.plotly_chart(figures.length_histogram(lengths, s.max_len), key="length_histogram")

st.subheader("Longest documents")
top = summary.top_docs
table = pd.DataFrame({"document": top, "tokens": lengths[top]})
if current.documents is not None:
    table["start"] = [current.documents[i][:100].replace("\n", " ⏎ ") for i in top]
st.dataframe(table, hide_index=True)

st.subheader("Token preview")
if not current.has_text:
    st.info("The synthetic corpus has lengths but no text: there are no tokens to preview.")
else:
    state.put("doc_index", min(int(state.get("doc_index")), lengths.size - 1))
    i = st.number_input(
        "Document", min_value=0, max_value=lengths.size - 1, step=1, **state.bind("doc_index")
    )
    ids = current.token_ids[int(i)]
    st.caption(f"Document {int(i):,}: {len(ids):,} tokens (the first 400 shown, each boxed).")
    st.html(
        figures.token_preview_html(pv.decode_tokens(current.tokenizer, np.asarray(ids).tolist()))
    )
