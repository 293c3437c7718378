"""Export: pick a format and fields, see the size, download (built only on click)."""

import json

import streamlit as st

import packviz as pv
from dashboard import cached, jobs, state, work
from dashboard.corpus import current_corpus, fingerprint
from dashboard.errors import stop_with
from packviz.budget import estimate_file_slots
from packviz.limits import format_bytes

#: Largest export the dashboard builds (the arrays in memory, and the file).
MAX_EXPORT_BYTES = 1 << 30
#: Seconds per slot and field of materialize + serialize (this machine, rounded up: 49M
#: slots × 2 fields took 1.8–2.2 s, 9.9M × 4 fields 0.4–0.8 s, in every format).
EXPORT_SECONDS_PER_SLOT = 2.5e-8

s = state.page_settings()
corpus = current_corpus()
st.title("Export")
plan, stats, _ = cached.plan_for(corpus, s)

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

memory = pv.arrays_bytes(stats.n_rows, s.max_len, n_fields=4 if corpus.has_text else 2)
if memory > MAX_EXPORT_BYTES:
    stop_with(
        f"Building this file means {stats.n_rows:,} rows × {s.max_len:,} slots: "
        f"{format_bytes(memory)} of arrays, more than the dashboard builds "
        f"({format_bytes(MAX_EXPORT_BYTES)}). Export a smaller corpus here, or write "
        "the file with the library: `pv.save(pv.materialize(plan, token_ids, pad_id=...), "
        "path)` (or `packviz pack` for a whole corpus)."
    )

# the plan's own settings travel with the arrays (metadata["plan"]); these are the rest
metadata = {
    "statistics": stats.as_dict(),
    "corpus": corpus.label,
    "tokenizer_fingerprint": fingerprint(corpus),
    "pad_id": corpus.pad_id,
}
if corpus.has_records:  # labels are -100 off the trained tokens: say which, and what it gives
    metadata["train_on"] = corpus.train_on
    metadata["sft"] = cached.sft_stats(corpus, s, plan).as_dict()
    if corpus.template:
        metadata["chat_template"] = corpus.template
what = f"{corpus.key}|{s.key()}|{fmt}|{','.join(fields)}"
per_slot = EXPORT_SECONDS_PER_SLOT * max(2, len(fields))
size = jobs.run(  # measured on a sample of rows: its cost follows the sample, not the plan
    jobs.Work(
        key="size|" + what,
        label="Measuring the file size",
        seconds=per_slot * estimate_file_slots(stats.n_rows, s.max_len),
        fn=work.file_size,
        args=(plan, corpus.token_ids, corpus.pad_id, fmt, tuple(fields), metadata),
    ),
    action="Measure the file size",
)
if size is None:
    st.stop()
st.metric(
    "File size",
    format_bytes(size),
    delta=f"{stats.n_rows:,} rows × {s.max_len:,}",
    delta_color="off",
    delta_arrow="off",
    help=f"{size:,} bytes, measured: the file is built for a sample of evenly spaced rows "
    "and scaled to all rows (exact for small plans).",
)
if size > MAX_EXPORT_BYTES:
    stop_with(
        f"The file would be about {format_bytes(size)}, too big to build in the "
        "browser. Pick fewer fields or a smaller corpus, or export with the library: "
        "`pv.save(pv.materialize(plan, token_ids, pad_id=...), path)`."
    )
with st.expander("Metadata written into the file"):
    st.code(json.dumps({"plan": plan.settings(), **metadata}, indent=2), language="json")

name = f"packed-{s.strategy}-{s.max_len}.{fmt}"
build = jobs.Work(
    key="file|" + what,
    label=f"Building {name}",
    seconds=per_slot * stats.n_rows * s.max_len,
    fn=work.export_file,
    args=(plan, corpus.token_ids, corpus.pad_id, fmt, tuple(fields), metadata),
)
built = None  # predicted under AUTO_SECONDS: built when clicked, in the download request
if build.seconds > jobs.AUTO_SECONDS:  # else built first, by a job; the click sends it
    built = jobs.run(build, action="Build the file")
    if built is None:
        st.stop()
st.download_button(  # no rerun on click: a rerun would replace the deferred file mid-download
    f"Download {name}",
    data=jobs.deferred(build, built),
    file_name=name,
    mime="application/octet-stream",
    type="primary",
    on_click="ignore",
)

st.subheader("Load it for training")
st.code(
    f"""import packviz as pv
from torch.utils.data import DataLoader

arrays = pv.load("{name}")
loader = DataLoader(
    pv.PackedDataset(arrays), batch_size=8, shuffle=True, collate_fn=pv.collate_with("flattened")
)
for batch in loader:
    loss = model(**batch).loss  # exact at the model's defaults: README, "Training"
""",
    language="python",
)

# The same settings on the whole corpus, from a shell (issue 12): `packviz pack`.
from dashboard import records  # noqa: E402
from dashboard.corpus import TOKENIZER_SOURCES, uploaded_tokenizer, uploads  # noqa: E402

uploaded = state.get("corpus_source") == "Upload" and uploads()
by_file = state.get("tokenizer_source") == TOKENIZER_SOURCES[1] and uploaded_tokenizer()
# Records need the model's tokenizer (a BPE trained on them fits no model), and name
# their chat template: the uploaded config's file, or chatml for the built-in one.
model_tokenizer = by_file.name if by_file else ("tokenizer.json" if corpus.has_records else None)
template_file = None
if corpus.has_records and corpus.template is not None:
    upload = (
        records.uploaded_template() if corpus.template != records.BUILTIN_TEMPLATE.name else None
    )
    template_file = upload.name if upload else "chatml"
st.subheader("Pack the whole corpus")
st.caption(
    "The same settings on all of your files, from a shell: resumable, in bounded memory, "
    "shards plus a manifest."
    + ("" if uploaded else " Replace `corpus/` with your files, folders or globs.")
    + (
        " Fine-tuning records are encoded with your model's tokenizer: replace "
        "`tokenizer.json` with its path (the dashboard's tokenizer, trained on these "
        "records, fits no model)."
        if corpus.has_records and not by_file
        else ""
    )
)
st.code(
    pv.pack_command(
        [name for name, _ in uploads()] if uploaded else ["corpus/"],
        max_len=s.max_len,
        strategy=s.strategy,
        sort=s.sort,
        overflow=s.overflow,
        seed=s.seed,
        tokenizer=model_tokenizer,
        train_vocab=None if model_tokenizer else int(state.get("vocab_size")),
        text_field=str(state.get("text_field")),
        split=str(state.get("split")),
        format=fmt,
        train_on=corpus.train_on if corpus.has_records else None,
        chat_template=template_file,
    ),
    language="bash",
)
