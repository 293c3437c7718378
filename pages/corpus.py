"""Corpus: choose the documents and the tokenizer; see lengths, longest documents, tokens."""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, corpus, figures, state, ui, url

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
    corpus.uploader_shown()
    st.file_uploader(
        "Upload documents (.txt, .md, .jsonl, .csv, .parquet; several at once)",
        type=list(corpus.UPLOAD_TYPES),
        accept_multiple_files=True,
        key="corpus_files",
        on_change=corpus.store_uploads,
    )
    for i, (name, data) in enumerate(corpus.uploads()):
        c = st.columns([6, 1], vertical_alignment="center")
        c[0].markdown(f":material/draft: **{name}** · {figures.bytes_text(len(data))} · in use")
        c[1].button(
            "Remove",
            key=f"remove_upload_{i}",
            on_click=corpus.remove_upload,
            args=(i,),
            icon=":material/delete:",
        )
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
        c[1].select_slider("Vocabulary size", options=url.VOCAB_SIZES, **state.bind("vocab_size"))
    else:
        c[1].file_uploader(
            "tokenizer.json (Hugging Face tokenizers)",
            type=["json"],
            key="tokenizer_file",
            on_change=corpus.store_tokenizer_upload,
        )
        upload = corpus.uploaded_tokenizer()
        if upload is not None:
            t = c[1].columns([4, 1], vertical_alignment="center")
            t[0].markdown(f":material/data_object: **{upload.name}** · in use")
            t[1].button(
                "Remove",
                key="remove_tokenizer",
                on_click=corpus.remove_tokenizer_upload,
                icon=":material/delete:",
            )

current = corpus.current_corpus()
lengths = current.lengths
if current.tokenizer_info is not None:
    info = current.tokenizer_info
    st.markdown(
        f"**Tokenizer in use:** {info.label}, {info.vocab_size:,} tokens · "
        f"**end-of-text:** {info.eos} · **pad:** {info.pad}"
    )
summary = cached.length_summary(current, s.max_len)
st.divider()
c = st.columns(4)
c[0].metric("Documents", f"{summary.n_docs:,}")
c[1].metric("Tokens", ui.count(summary.tokens), help=f"{summary.tokens:,} tokens")
c[2].metric("Median length", f"{summary.median:,.0f}")
c[3].metric(
    f"Longer than {s.max_len:,}",
    f"{summary.over_max_len:,}",
    help=f"{summary.tokens_over_max_len:,} tokens past max length",
)
ui.chart(figures.length_histogram(lengths, s.max_len), key="length_histogram")

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
        figures.token_preview_html(
            pv.decode_tokens(current.tokenizer, np.asarray(ids[:400]).tolist()), total=len(ids)
        )
    )
