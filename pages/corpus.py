"""Corpus: choose the documents (or fine-tuning records) and the tokenizer; see lengths,
longest documents, and tokens (trained ones highlighted)."""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, corpus, figures, records, state, ui, url

s = state.page_settings()
st.title("Corpus")

source = st.radio("Source", corpus.SOURCES, horizontal=True, **state.bind("corpus_source"))
BUILTIN = {**pv.BUILTIN_CORPORA, **pv.BUILTIN_RECORDS}
if source == "Built-in":
    st.selectbox(
        "Built-in corpus",
        list(BUILTIN),
        format_func=lambda n: f"{n} — {BUILTIN[n]}",
        help="python-docs-chat and python-docs-qa are fine-tuning records (chats, and "
        "prompt/completion pairs) made from the same topics: see **Train on** in the sidebar.",
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
    st.caption(
        "JSONL, CSV and Parquet records with `messages` (chats: `role`, `content`) or "
        "`prompt` and `completion` are read as fine-tuning records (see **Train on** in the "
        "sidebar); other records give one document each from the text field."
    )

kinds = corpus.record_kinds() if source != "Synthetic" else None
if kinds and "chat" in kinds:
    c = st.columns(2)
    tpl_source = c[0].radio(
        "Chat template",
        records.TEMPLATE_SOURCES,
        horizontal=True,
        help="How chats become text: the built-in ChatML (assistant turns marked with "
        "generation blocks), or the chat_template of a Hugging Face tokenizer_config.json "
        "(only parsed as JSON; the template runs in a sandbox).",
        **state.bind("template_source"),
    )
    if tpl_source == records.TEMPLATE_SOURCES[1]:
        ui.kept_upload(
            c[1],
            "tokenizer_config.json (with a chat_template)",
            key="template_file",
            on_change=records.store_template_upload,
            kept=records.uploaded_template(),
            remove_key="remove_template",
            on_remove=records.remove_template_upload,
        )

if source != "Synthetic":
    c = st.columns(2)
    tok_source = c[0].radio(
        "Tokenizer", corpus.TOKENIZER_SOURCES, horizontal=True, **state.bind("tokenizer_source")
    )
    if tok_source == corpus.TOKENIZER_SOURCES[0]:
        c[1].select_slider("Vocabulary size", options=url.VOCAB_SIZES, **state.bind("vocab_size"))
    else:
        ui.kept_upload(
            c[1],
            "tokenizer.json (Hugging Face tokenizers)",
            key="tokenizer_file",
            on_change=corpus.store_tokenizer_upload,
            kept=corpus.uploaded_tokenizer(),
            remove_key="remove_tokenizer",
            on_remove=corpus.remove_tokenizer_upload,
        )

current = corpus.current_corpus()
lengths = current.lengths
if current.has_records:
    st.markdown(
        f"**Records:** {records.kinds_text(current.kinds)} · **train on:** "
        f"{records.TRAIN_ON_LABELS[current.train_on]} (sidebar)"
        + (f" · **chat template:** {current.template}" if current.template else "")
    )
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
    tid, i = current.token_ids, int(i)
    trained = tid.trained[tid.offsets[i] : tid.offsets[i + 1]] if current.flagged else None
    st.caption(
        f"{'Record' if current.has_records else 'Document'} {int(i):,}: {len(ids):,} tokens "
        "(the first 400 shown, each boxed)"
        + (
            f"; {int(trained.sum()):,} trained ({records.TRAIN_ON_LABELS[current.train_on]}): "
            "green, the others grey."
            if trained is not None
            else "."
        )
    )
    st.html(
        figures.token_preview_html(
            pv.decode_tokens(current.tokenizer, np.asarray(ids[:400]).tolist()),
            total=len(ids),
            trained=None if trained is None else trained[:400],
        )
    )
