"""Document: one document's story — its rows and slots, what was cut, its loss weight (for
fine-tuning records: its trained tokens and targets)."""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, figures, records, state, ui
from dashboard.corpus import current_corpus

FATES = {
    "whole": "placed whole, in one row",
    "split": "split into pieces in different rows",
    "truncated": "truncated: its tail is lost",
    "dropped": "dropped: longer than max length",
    "empty": "empty: nothing to place",
}

s = state.page_settings()
corpus = current_corpus()
st.title("Document")
ui.settings_caption(corpus.label, s)
plan, stats, _ = cached.plan_for(corpus, s)
n_docs = corpus.lengths.size
if n_docs == 0:
    st.info("The corpus has no documents.")
    st.stop()

c = st.columns([1, 2])
if not state.is_set("story_doc"):  # open on the longest document: the one most cut
    state.put("story_doc", int(corpus.lengths.argmax()))
state.put("story_doc", min(int(state.get("story_doc")), n_docs - 1))
if corpus.has_text:
    query = c[1].text_input(
        "Find a document by its text",
        placeholder="a word or phrase",
        **state.bind("story_query"),
    )
    if query:
        hits = pv.find_documents(corpus.documents, query, limit=20)
        if hits.size:
            options = hits.tolist()
            pick = c[1].selectbox(
                f"{hits.size} match{'es' * (hits.size != 1)}"
                + (" (the first 20)" if hits.size == 20 else ""),
                options,
                format_func=lambda i: f"{i}: {corpus.documents[i][:90]!r}",
                key="story_hit",
            )
            state.put("story_doc", int(pick))
        else:
            c[1].caption(f"No document contains {query!r}.")
doc = int(
    c[0].number_input(
        "Document index", min_value=0, max_value=n_docs - 1, step=1, **state.bind("story_doc")
    )
)
flags = corpus.token_ids if corpus.flagged else None  # fine-tuning: trained tokens count
story = pv.document_story(plan, doc, token_ids=flags)

batch = int(state.get("batch_rows"))
token_w = cached.loss_weights(corpus, s, plan, batch, "token")
mean_w = 1 / max(1, int(np.count_nonzero(token_w)))

c = st.columns(6 if flags is not None else 5)
c[0].metric("Tokens", f"{story.length:,}")
if flags is not None:
    targets = int(story.targets.sum())
    ui.metric_note(
        c[5],
        "Trained tokens",
        f"{story.trained_tokens:,}",
        f"{targets:,} target{'s' * (targets != 1)} in its pieces",
        help=f"Tokens of {records.TRAIN_ON_LABELS[corpus.train_on]} (labels not -100); a "
        "target is a trained token after its piece's first slot. Its loss weight counts "
        "these targets only.",
    )
c[1].metric("Pieces", f"{story.n_pieces}")
c[2].metric("Lost tokens", f"{story.lost_tokens:,}")
c[3].metric(
    "Losing context",
    f"{story.fragmented_tokens:,}",
    help="Tokens of its pieces after the first: they cannot attend to the tokens before the cut.",
)
c[4].metric(
    "Loss weight",
    f"{token_w[doc] / mean_w:.2f}×",
    help=f"Times the average document's weight. Its share of the gradient under a token-mean loss over batches of {batch} packed "
    f"rows ({token_w[doc]:.3g}), against the average document's ({mean_w:.3g}). See the "
    "Loss page for the batch size and per-sequence means.",
)
st.markdown(f"Document {doc:,} is **{FATES[story.fate]}**.")

if story.n_pieces:
    ends = story.starts + story.lengths
    table = pd.DataFrame(
        {
            "piece": np.arange(1, story.n_pieces + 1),
            "tokens": [f"{a:,}–{b - 1:,}" for a, b in zip(story.starts, ends, strict=True)],
            "length": story.lengths,
            "row": story.rows,
            "slots": [
                f"{a:,}–{a + n - 1:,}" for a, n in zip(story.offsets, story.lengths, strict=True)
            ],
            "context it cannot see": story.starts,
            **({"trained targets": story.targets} if flags is not None else {}),
        }
    )
    st.dataframe(table, hide_index=True)
    ui.csv_button(table, name=f"document-{doc}")
    rows = np.unique(story.rows)[:64]
    arrays = cached.rows(corpus, s, plan, rows, with_ids=False)
    ui.chart(
        figures.row_heatmap(
            arrays.doc_ids,
            row_index=arrays.row_index,
            highlight=doc,
            title=f"The rows holding document {doc:,} (red) and their other documents",
        ),
        key="story_rows",
        name=f"document-{doc}-rows",
    )
if corpus.has_text and story.fate in ("split", "truncated"):
    st.subheader("Where it was cut")
    ids = np.asarray(corpus.token_ids[doc])
    cuts = story.starts[1:].tolist() if story.fate == "split" else [story.placed_tokens]
    for cut in cuts[:5]:
        before = "".join(pv.decode_tokens(corpus.tokenizer, ids[max(0, cut - 12) : cut].tolist()))
        after = "".join(pv.decode_tokens(corpus.tokenizer, ids[cut : cut + 12].tolist()))
        what = "next piece starts" if story.fate == "split" else "lost from here"
        st.markdown(f"Token {cut:,} ({what}): `…{before!r}` ✂ `{after!r}…`")
