"""Corpus: choose the documents and the tokenizer; see lengths, longest documents, tokens."""

import numpy as np
import pandas as pd
import streamlit as st

import dashboard_state as ds
import packviz as pv
from packviz import figures

s = ds.page_settings()
st.title("Corpus")

source = st.radio("Source", ds.SOURCES, horizontal=True, **ds.bind("corpus_source"))
if source == "Built-in":
    st.selectbox(
        "Built-in corpus",
        list(pv.BUILTIN_CORPORA),
        format_func=lambda n: f"{n} — {pv.BUILTIN_CORPORA[n]}",
        **ds.bind("builtin_name"),
    )
elif source == "Synthetic":
    c = st.columns(4)
    c[0].number_input(
        "Documents", min_value=1, max_value=20_000_000, step=10_000, **ds.bind("synth_n")
    )
    c[1].selectbox("Length distribution", pv.DISTRIBUTIONS, **ds.bind("synth_distribution"))
    c[2].number_input(
        "Median length", min_value=1, max_value=1 << 20, step=50, **ds.bind("synth_median")
    )
    c[3].number_input(
        "Spread (sigma)", min_value=0.0, max_value=4.0, step=0.1, **ds.bind("synth_sigma")
    )
    st.caption("Lengths only, to explore scale: there is no text, so token views are empty.")
else:
    st.file_uploader(
        "Upload documents (.txt, .md, .jsonl, .csv, .parquet; several at once)",
        type=list(ds.UPLOAD_TYPES),
        accept_multiple_files=True,
        key="corpus_files",
        on_change=ds.store_uploads,
    )
    if ds.uploads():
        st.caption("Using: " + ", ".join(f"{n} ({len(b):,} bytes)" for n, b in ds.uploads()))
    c = st.columns(2)
    c[0].selectbox(
        "Documents are",
        pv.SPLITS,
        help="How text becomes documents: one per file, paragraph, line or sentence "
        "(JSONL/CSV/Parquet: one per record).",
        **ds.bind("split"),
    )
    c[1].text_input("Text field (JSONL, CSV, Parquet)", **ds.bind("text_field"))

if source != "Synthetic":
    c = st.columns(2)
    tok_source = c[0].radio(
        "Tokenizer", ds.TOKENIZER_SOURCES, horizontal=True, **ds.bind("tokenizer_source")
    )
    if tok_source == ds.TOKENIZER_SOURCES[0]:
        c[1].select_slider(
            "Vocabulary size",
            options=[512, 1024, 2048, 4096, 8192, 16384, 32768],
            **ds.bind("vocab_size"),
        )
    else:
        c[1].file_uploader(
            "tokenizer.json (Hugging Face tokenizers)",
            type=["json"],
            key="tokenizer_file",
            on_change=ds.store_tokenizer_upload,
        )

corpus = ds.current_corpus()
lengths = corpus.lengths
summary = ds.length_summary(corpus, s.max_len)
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
if corpus.documents is not None:
    table["start"] = [corpus.documents[i][:100].replace("\n", " ⏎ ") for i in top]
st.dataframe(table, hide_index=True)

st.subheader("Token preview")
if not corpus.has_text:
    st.info("The synthetic corpus has lengths but no text: there are no tokens to preview.")
else:
    ds.put("doc_index", min(int(ds.get("doc_index")), lengths.size - 1))
    i = st.number_input(
        "Document", min_value=0, max_value=lengths.size - 1, step=1, **ds.bind("doc_index")
    )
    ids = corpus.token_ids[int(i)]
    st.caption(f"Document {int(i):,}: {len(ids):,} tokens (the first 400 shown, each boxed).")
    st.html(
        figures.token_preview_html(pv.decode_tokens(corpus.tokenizer, np.asarray(ids).tolist()))
    )
