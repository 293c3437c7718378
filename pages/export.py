"""Export: pick a format and fields, see the size, download (built only on click)."""

import json

import streamlit as st

import packviz as pv
from dashboard import cached, state
from dashboard.corpus import current_corpus
from dashboard.errors import stop_with

MAX_EXPORT_BYTES = 1 << 30

s = state.page_settings()
corpus = current_corpus()
st.title("Export")
plan, stats = cached.plan_for(corpus, s)

fields_available = [f for f in pv.FIELDS if corpus.has_text or f not in ("input_ids", "labels")]
if not corpus.has_text:
    st.info("Synthetic corpus: no text, so input_ids and labels are not available.")
c = st.columns(2)
fmt = c[0].radio(
    "Format",
    pv.FORMATS,
    horizontal=True,
    format_func=lambda f: "." + f,
    **state.bind("export_format"),
)
chosen = state.get("export_fields")
if chosen is None or not set(chosen) <= set(fields_available):
    state.put("export_fields", list(fields_available))
fields = c[1].multiselect("Fields", fields_available, **state.bind("export_fields"))
if not fields:
    stop_with("Choose at least one field to export.")

size = pv.estimate_bytes(stats.n_rows, s.max_len, fmt, fields)
st.metric(
    "Estimated file size",
    f"{size / 2**20:,.1f} MiB",
    delta=f"{stats.n_rows:,} rows × {s.max_len:,}",
    delta_color="off",
)
if size > MAX_EXPORT_BYTES:
    stop_with(
        f"The file would be about {size / 2**30:.1f} GiB, too big to build in the browser. "
        "Pick fewer fields or a smaller corpus, or export with the library: "
        "`pv.save(pv.materialize(plan, token_ids, pad_id=...), path)`."
    )

# the plan's own settings travel with the arrays (metadata["plan"]); these are the rest
metadata = {
    "statistics": stats.as_dict(),
    "corpus": corpus.label,
    "tokenizer_fingerprint": None
    if corpus.tokenizer is None
    else pv.tokenizer_fingerprint(corpus.tokenizer),
    "pad_id": corpus.pad_id,
}
with st.expander("Metadata written into the file"):
    st.code(json.dumps({"plan": plan.settings(), **metadata}, indent=2), language="json")


def build() -> bytes:
    arrays = pv.materialize(plan, corpus.token_ids, pad_id=corpus.pad_id)
    return pv.to_bytes(arrays, fmt, fields=fields, metadata=metadata)


name = f"packed-{s.strategy}-{s.max_len}.{fmt}"
st.download_button(
    f"Download {name}", data=build, file_name=name, mime="application/octet-stream", type="primary"
)

st.subheader("Load it for training")
st.code(
    f"""import packviz as pv
from torch.utils.data import DataLoader

arrays = pv.load("{name}")
loader = DataLoader(pv.PackedDataset(arrays), batch_size=8, shuffle=True, collate_fn=pv.collate)
for batch in loader:
    ...  # batch["input_ids"], batch["labels"], batch["position_ids"], batch["cu_seqlens"]
""",
    language="python",
)

# The same settings on the whole corpus, from a shell (issue 12): `packviz pack`.
from dashboard.corpus import TOKENIZER_SOURCES, uploaded_tokenizer, uploads  # noqa: E402

uploaded = state.get("corpus_source") == "Upload" and uploads()
by_file = state.get("tokenizer_source") == TOKENIZER_SOURCES[1] and uploaded_tokenizer()
st.subheader("Pack the whole corpus")
st.caption(
    "The same settings on all of your files, from a shell: resumable, in bounded memory, "
    "shards plus a manifest."
    + ("" if uploaded else " Replace `corpus/` with your files, folders or globs.")
)
st.code(
    pv.pack_command(
        [name for name, _ in uploads()] if uploaded else ["corpus/"],
        max_len=s.max_len,
        strategy=s.strategy,
        sort=s.sort,
        overflow=s.overflow,
        seed=s.seed,
        tokenizer=by_file.name if by_file else None,
        train_vocab=None if by_file else int(state.get("vocab_size")),
        text_field=str(state.get("text_field")),
        split=str(state.get("split")),
        format=fmt,
    ),
    language="bash",
)
