"""Recommend: (max length, strategy, sort) ranked by weighted trade-offs, and why."""

import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, figures, state, ui
from dashboard.corpus import current_corpus
from packviz.limits import format_bytes
from packviz.recommend import PREFERENCE

PRESET_HELP = {
    "pretraining": "compute, lost tokens and cut context first",
    "fine-tuning": "never lose or cut an example",
    "long context": "keep documents whole",
}


def weights_now() -> dict:
    """The preset's weights, with the ones edited (or given in a link) over them: a link
    may carry only some criteria (``?weights=compute:1``)."""
    return {**pv.preset_weights(str(state.get("preset"))), **(state.get("weights") or {})}


def on_preset() -> None:
    p = st.session_state.get("preset")
    if p is not None:
        state.put("preset", p)
        state.put("weights", None)  # a preset sets the weights


def on_weight(name: str) -> None:
    w = weights_now()
    w[name] = float(st.session_state[f"w_{name}"])
    state.put("weights", w)


def value_text(criterion: str, v: float) -> str:
    if criterion == "compute":
        return f"{v:,.0f} slots"
    if criterion in ("padding", "lost", "fragmented"):
        return f"{v:.2%}"
    if criterion == "attention":
        return f"{v:,.0f} pairs per token"
    return format_bytes(v) + " per row"


def label(t: pv.Tradeoffs) -> str:
    return f"max length {t.max_len:,} · {t.strategy} · sort {t.sort}"


s = state.page_settings()
corpus = current_corpus()
st.title("Recommend")
st.caption(
    f"{corpus.label} · overflow {s.overflow}. Every candidate is packed for real: max "
    "lengths around the current one, and the ones that keep 99 % and all of the documents "
    "whole; the weights say what matters for your job."
)

c = st.columns([2, 3])
st.session_state["preset"] = state.get("preset")
c[0].segmented_control(
    "Preset",
    pv.PRESETS,
    key="preset",
    on_change=on_preset,
    help="; ".join(f"**{k}**: {v}" for k, v in PRESET_HELP.items()),
)
sorts_default = list(dict.fromkeys(["desc", s.sort]))
if not state.get("rank_sorts"):
    state.put("rank_sorts", sorts_default)
sorts = c[1].multiselect(
    "Sort orders to try",
    pv.SORTS,
    help="desc/asc pack tightest and fastest; none/random place documents online "
    "(looser, and seconds per million documents).",
    **state.bind("rank_sorts"),
) or ["desc"]
weights = weights_now()
with st.expander("Weights (points per criterion; a preset sets them)"):
    cols = st.columns(len(pv.CRITERIA))
    for col, name in zip(cols, pv.CRITERIA, strict=True):
        st.session_state[f"w_{name}"] = float(weights[name])
        col.number_input(
            name.replace("_", " "),
            min_value=0.0,
            max_value=100.0,
            step=0.1,
            key=f"w_{name}",
            on_change=on_weight,
            args=(name,),
            help=pv.CRITERION_LABELS[name],
        )
    st.caption(
        "A candidate's score is Σ weight × points behind the best candidate: for shares "
        "(padding, lost, fragmented) the difference in percentage points; for costs "
        "(slots, attention per token, mask bytes) 100 · ln(value / best), about percent "
        "worse. Lowest score wins."
    )

# around the current max length, plus the lengths that keep 99 % and all of the documents
# whole (a fine-tuning or long-context choice may lie far from the current one)
max_lens = sorted(
    {*pv.default_max_lens(s.max_len, upper=state.DASHBOARD_MAX_LEN)}
    | {*pv.covering_max_lens(corpus.lengths, upper=state.DASHBOARD_MAX_LEN)}
)
points = cached.evaluate_points(
    corpus,
    [(m, x, o) for m in max_lens for x in PREFERENCE for o in sorts],
    s.overflow,
    s.seed,
    label="Ranking the candidates",
    action="Rank",
)
if points.left_out:
    st.caption(points.left_out)
if not points.complete:
    st.stop()
ranking = pv.rank(points.tradeoffs(), weights)
best = ranking.best

st.success(f"**Use {label(best)}.**", icon=":material/thumb_up:")
here = ranking.position(s.max_len, s.strategy, s.sort)
is_current = here == 0
st.button(
    "These are the current settings" if is_current else "Use these settings",
    on_click=state.apply_settings,
    args=(state.Settings(best.max_len, best.strategy, best.sort, s.overflow, s.seed),),
    disabled=is_current,
    type="primary",
    icon=":material/check:",
)


def explain(other: int, title: str) -> None:
    reasons = pv.why(ranking, other=other)
    wins = [r for r in reasons if r.points > 0]
    pays = [r for r in reasons if r.points < 0]
    lines = [f"**{title}** (score {ranking.score[0]:.1f} vs {ranking.score[other]:.1f}):"]
    for r in wins[:3]:
        lines.append(
            f"- better on **{pv.CRITERION_LABELS[r.criterion]}**: "
            f"{value_text(r.criterion, r.winner_value)} vs "
            f"{value_text(r.criterion, r.other_value)} ({r.points:+.1f} points)"
        )
    for r in pays[:2]:
        lines.append(
            f"- pays on **{pv.CRITERION_LABELS[r.criterion]}**: "
            f"{value_text(r.criterion, r.winner_value)} vs "
            f"{value_text(r.criterion, r.other_value)} ({r.points:+.1f} points)"
        )
    if len(lines) == 1:
        lines.append("- they tie on every weighted criterion.")
    st.markdown("\n".join(lines))


c = st.columns(2)
with c[0]:
    other = ranking.runner_up()
    if other is None:
        st.markdown("Every candidate scores the same with these weights.")
    else:
        n_ties = other - 1
        ties = f" ({n_ties} other{'s tie' if n_ties > 1 else ' ties'} with it)" if n_ties else ""
        explain(other, f"Why it beats the next choice, {label(ranking.ranked[other])}{ties}")
with c[1]:
    if here is None:
        st.markdown(
            f"Your current settings ({s.max_len:,} · {s.strategy} · sort {s.sort}) are not "
            "among the candidates (add their sort order above)."
        )
    elif here > 0:
        explain(here, f"Why it beats your current settings (ranked {here + 1})")

ui.chart(figures.score_bars(ranking.table(), ranking.weights), key="score_bars", name="ranking")
table = pd.DataFrame(ranking.table())
table.insert(1, "candidate", [figures.candidate_label(t) for t in ranking.table()])
shown = table[
    [
        "rank",
        "candidate",
        "score",
        "n_rows",
        "slots",
        "padding_share",
        "lost_share",
        "fragmented_share",
        "attention_per_token",
        "dense_mask_bytes",
    ]
].copy()
shown["dense_mask_bytes"] = [format_bytes(v) for v in shown["dense_mask_bytes"]]
whole = st.column_config.NumberColumn
st.dataframe(
    shown,
    hide_index=True,
    column_config={
        "rank": whole("Rank", width="small"),
        "candidate": st.column_config.TextColumn("Max length · strategy · sort"),
        "score": whole("Score", format="%.1f"),
        "n_rows": whole("Rows", format="localized"),
        "slots": whole("Slots", format="localized"),
        "padding_share": whole("Padding", format="percent"),
        "lost_share": whole("Lost", format="percent"),
        "fragmented_share": whole("Context lost", format="percent"),
        "attention_per_token": whole("Attn / token", format="%.0f"),
        "dense_mask_bytes": "Mask / row",
    },
)
ui.csv_button(table, name="recommendation")
st.caption(
    "Ties keep the order best_fit, first_fit, next_fit, wrapped, padded. Context lost: "
    "tokens in a piece that does not begin their document. Mask / row: a dense bool "
    "[L, L] mask (varlen kernels and FlexAttention need far less; see Masks)."
)
