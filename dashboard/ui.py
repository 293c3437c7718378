"""Small pieces every view uses the same way: charts with a PNG button, visible CSV
buttons, numbers for people.

Why one place: every chart must be downloadable as a PNG (plotly's camera button, always
shown, saving at twice the screen resolution) and every table that people copy into a
report must have a visible CSV button beside it — the table toolbar's own download only
shows on hover. Doing both here keeps the views short and consistent.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import figures


def chart(fig, *, key: str, name: str | None = None) -> None:
    """Show a plotly figure; its modebar's camera button saves ``<name>.png``."""
    st.plotly_chart(fig, key=key, config=figures.png_config(f"packviz-{name or key}"))


def csv_button(table: pd.DataFrame, *, name: str, label: str = "Download CSV") -> None:
    """A visible download button with the table as CSV (``packviz-<name>.csv``)."""
    st.download_button(
        label,
        data=table.to_csv(index=False).encode(),
        file_name=f"packviz-{name}.csv",
        mime="text/csv",
        key=f"csv|{name}",
        icon=":material/download:",
        on_click="ignore",  # downloading changes nothing on the page: no rerun
    )


def metric_note(where, label: str, value: str, note: str, *, help: str | None = None) -> None:
    """A metric with a grey note under it (no arrow: the note is context, not a change)."""
    where.metric(label, value, delta=note, delta_color="off", delta_arrow="off", help=help)


def kept_upload(where, label: str, *, key: str, on_change, kept, remove_key: str, on_remove):
    """A JSON file uploader, and under it the kept file (it stays in use across pages,
    while the widget empties) with a Remove button."""
    where.file_uploader(label, type=["json"], key=key, on_change=on_change)
    if kept is not None:
        t = where.columns([4, 1], vertical_alignment="center")
        t[0].markdown(f":material/data_object: **{kept.name}** · in use")
        t[1].button("Remove", key=remove_key, on_click=on_remove, icon=":material/delete:")


def count(n: int) -> str:
    """A count that fits a metric: '12,345', '1.23 M' past ten million.

    >>> count(12345), count(123_456_789)
    ('12,345', '123.5 M')
    """
    return f"{n / 1e6:,.1f} M" if abs(n) >= 10_000_000 else f"{n:,}"


def versus(diff: float, text: str, *, ref: str, lower_is_better: bool = True) -> dict:
    """``st.metric`` delta arguments for a difference against a reference value: the
    arrow follows the sign of ``diff``, green when it is better; an equal value reads
    "same as <ref>" in grey, with no arrow.

    >>> versus(0, "0", ref="padding")["delta"], versus(-3, "-3", ref="padding")["delta_color"]
    ('same as padding', 'inverse')
    """
    if diff == 0:
        return {"delta": f"same as {ref}", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": f"{text} vs {ref}", "delta_color": "inverse" if lower_is_better else "normal"}


def settings_caption(label: str, s) -> None:
    """The caption under a page title: the corpus and the settings in use."""
    st.caption(
        f"{label} · max length {s.max_len:,} · {s.strategy}, sort {s.sort}, overflow {s.overflow}"
    )
