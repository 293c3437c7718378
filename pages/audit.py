"""Audit: does any document see another when the plan's rows reach a model?"""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, devices, figures, jobs, state, work
from dashboard.corpus import current_corpus
from dashboard.errors import stop_with
from packviz.auditing import ARCHITECTURES, ATOL, TINY_VOCAB, default_paths

#: Longest rows audited here (eager attention holds [rows, heads, L, L] floats per layer).
AUDIT_MAX_LEN = 8192
#: Largest tiny-model vocabulary; bigger tokenizers' ids are folded into it.
AUDIT_MAX_VOCAB = 8192
#: Seconds to start a worker that imports torch and transformers (this machine).
AUDIT_START_SECONDS = 5.0
#: Seconds per path and row: a fixed part, and per squared slot (eager attention is the
#: slowest: 2 rows of 2,048 slots took 2 s with sdpa, 8 rows 47 s with eager, 5 paths).
AUDIT_ROW_SECONDS = 0.05
AUDIT_SLOT2_SECONDS = {"eager": 3e-7}
AUDIT_SLOT2_DEFAULT = 5e-8
SETTINGS = {
    "audit_arch": "llama",
    "audit_attn": "sdpa",
    "audit_rows": 2,
    "audit_budget": 60,
    "audit_seed": 0,
}


def audit_seconds(paths: list, n_rows: int, max_len: int, attn: str, budget: int) -> float:
    """Predicted seconds of the audit job: the worker's start, then every path on every
    row, up to the time budget (paths not started by then are not run)."""
    per_row = AUDIT_ROW_SECONDS + max_len**2 * AUDIT_SLOT2_SECONDS.get(attn, AUDIT_SLOT2_DEFAULT)
    return AUDIT_START_SECONDS + min(float(budget), len(paths) * n_rows * per_row)


s = state.page_settings()
corpus = current_corpus()
st.title("Audit")
st.caption(
    "A tiny random model (seeded) runs the plan's busiest rows through each way packed rows "
    "reach a model, and every piece alone. A path is exact when neither a logit nor the loss "
    "moves by more than 1e-4; otherwise one document sees another, and the table gives the fix."
)
plan, stats, _ = cached.plan_for(corpus, s)
if stats.n_rows == 0:
    st.info("The plan has no rows.")
    st.stop()
if s.max_len > AUDIT_MAX_LEN:
    stop_with(
        f"The audit view runs rows of up to {AUDIT_MAX_LEN:,} slots (max length is "
        f"{s.max_len:,}). Pick a smaller max length, or audit a saved file with "
        "`packviz audit --model llama --packed rows.npz --rows 0`."
    )
for name, value in SETTINGS.items():
    if not state.is_set(name):
        state.put(name, value)
c = st.columns(5)
arch = c[0].selectbox(
    "Architecture",
    ARCHITECTURES,
    help="Attention models (llama … gpt2) and models with state layers (mamba2, hybrids).",
    **state.bind("audit_arch"),
)
attn = c[1].selectbox(
    "Attention",
    pv.ATTN_IMPLEMENTATIONS,
    help="transformers' attn_implementation. flex_attention compiles for seconds on a CPU.",
    **state.bind("audit_attn"),
)
state.put("audit_rows", min(int(state.get("audit_rows")), stats.n_rows, 8))
n_rows = int(
    c[2].number_input(
        "Rows", min_value=1, max_value=min(stats.n_rows, 8), step=1, **state.bind("audit_rows")
    )
)
budget = int(
    c[3].number_input(
        "Time budget (s)", min_value=5, max_value=600, step=5, **state.bind("audit_budget")
    )
)
seed = int(c[4].number_input("Seed", min_value=0, step=1, **state.bind("audit_seed")))
device_names = ["cuda", "cpu"] if devices.cuda_available() else ["cpu"]
device = st.radio("Device", device_names, horizontal=True, key="audit_device")

# the busiest rows (most pieces; ties: lowest row): a leak needs two pieces in a row
rows = np.sort(np.argsort(-plan.pieces_per_row, kind="stable")[:n_rows])
arrays = pv.materialize(plan, corpus.token_ids, pad_id=corpus.pad_id, rows=rows)
vocab = corpus.tokenizer.get_vocab_size() if corpus.has_text else TINY_VOCAB
if vocab > AUDIT_MAX_VOCAB:  # fold ids into the tiny vocabulary: leaks do not depend on them
    arrays.input_ids %= AUDIT_MAX_VOCAB
    arrays.labels[arrays.labels >= 0] %= AUDIT_MAX_VOCAB
    vocab = AUDIT_MAX_VOCAB
try:
    model = cached.tiny_model(arch, attn, seed, vocab, max(s.max_len, 1024), device)
except ValueError as exc:
    stop_with(f"Cannot build a tiny {arch} with {attn} attention: {exc}")
except ImportError as exc:  # transformers missing: requirements.txt installs packviz[hf]
    stop_with(f"{exc}.")
pieces = plan.pieces_per_row[rows]
st.caption(
    f"Rows {', '.join(f'{r:,}' for r in rows)} ({', '.join(map(str, pieces))} pieces) · "
    f"{type(model).__name__}, vocabulary {vocab:,}"
    + ("" if corpus.has_text else " · synthetic corpus: random token ids (seeded)")
)
paths = st.multiselect(
    "Input paths",
    pv.AUDIT_PATHS,
    default=list(default_paths(model)),
    help="flex is left out on a CPU by default (it compiles for seconds); seq_idx is the "
    "state-layer path (flattened + seq_idx + use_cache=False).",
    key=f"audit_paths:{arch}:{device}",
)

if not paths:
    st.info("Choose at least one input path.")
    st.stop()
# it runs in a worker (Run, progress, Stop), never in this script: up to the time budget
results = jobs.run(
    jobs.Work(
        key="audit|"
        + "|".join(map(str, (corpus.key, s.key(), arch, attn, rows.tolist(), budget, seed)))
        + f"|{device}|{','.join(paths)}",
        label=f"Auditing {n_rows} row{'s' * (n_rows != 1)} with a tiny {arch} ({attn})",
        seconds=audit_seconds(paths, n_rows, s.max_len, attn, budget),
        fn=work.audit,
        args=(arrays, arch, attn, seed, vocab, max(s.max_len, 1024), device, tuple(paths), budget),
    ),
    action="Run the audit",
)
if results is None:
    st.stop()
table = pd.DataFrame(results)
exact, leaks = (table["verdict"] == "exact").sum(), (table["verdict"] == "leaks").sum()
st.subheader(f"{exact} exact, {leaks} leaking")
st.plotly_chart(figures.audit_figure(results, atol=ATOL), key="audit_bars")
st.dataframe(
    table[["path", "verdict", "max_logit_diff", "loss_diff", "fix", "note", "seconds"]],
    hide_index=True,
    column_config={
        "max_logit_diff": st.column_config.NumberColumn("max |Δ logit|", format="%.1e"),
        "loss_diff": st.column_config.NumberColumn("|Δ loss|", format="%.1e"),
        "seconds": st.column_config.NumberColumn("s", format="%.2f"),
    },
)
