"""The Masks view: it opens on the busiest row, shows the plan's padding for any row,
and the memory of each format at the current max length."""

from __future__ import annotations

import numpy as np
from apptest import app, captions, errors, figures, records_ids, synthetic, synthetic_lengths

import packviz as pv


def _row_caption(at) -> str:
    return [c for c in captions(at) if c.startswith("Row ")][0]


def test_masks_page_row_and_memory():
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    mem = dict(zip(table["format"], table["bytes"], strict=True))
    assert mem["dense bool mask [L, L]"] == 1024 * 1024
    assert mem["additive fp32 mask [L, L]"] == 4 * 1024 * 1024
    sizes = dict(zip(table["format"], table["size"], strict=True))
    assert sizes["dense bool mask [L, L]"] == "1.0 MiB"  # formatted for people
    assert len(figures(at)) == 3  # whole row, zoom (1024 > 512 slots), block view
    plan = pv.pack(synthetic_lengths(), 1024)
    busiest = int(np.argmax(np.bincount(plan.row)))
    pieces = int(np.bincount(plan.row)[busiest])
    assert _row_caption(at).startswith(f"Row {busiest:,}: {pieces} pieces")
    at.number_input(key="mask_row").set_value(3).run()
    assert not at.exception
    assert _row_caption(at).startswith(f"Row 3: {int(np.bincount(plan.row)[3])} piece")


def test_masks_page_padding_is_the_plans_row_fill():
    at = synthetic(max_len=1024, mask_row=4).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception
    plan = pv.pack(synthetic_lengths(), 1024)
    pieces = int(plan.pieces_per_row[4])
    assert _row_caption(at).startswith(
        f"Row 4: {pieces} piece{'s' * (pieces != 1)}, "
        f"{1024 - int(plan.row_fill[4]):,} padding slots."
    )


def test_mask_axes_span_the_row_and_labels_do_not_crowd():
    at = synthetic(max_len=4096, synth_median=40).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception
    full, _, block = figures(at)
    plan = pv.pack(pv.synthetic_lengths(3000, median=40, seed=0), 4096)
    assert int(plan.pieces_per_row.max()) > 40  # many pieces in the busiest row
    ticks = full["layout"]["xaxis"]["tickvals"]
    assert 2 <= len(ticks) <= 16
    assert min(b - a for a, b in zip(ticks, ticks[1:], strict=False)) >= 4096 / 16
    lo, hi = block["layout"]["xaxis"]["range"]
    assert lo == 0 and hi >= 4096 - 128 and hi <= 4096 + 128  # not -1000 … 3000


def test_masks_mark_the_rows_trained_tokens():
    at = app(builtin_name="python-docs-chat", max_len=256).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception and not errors(at)
    _, ids = records_ids("python-docs-chat", "assistant")
    plan = pv.pack(ids.lengths, 256)
    r = int(np.argmax(plan.pieces_per_row))
    trained = pv.trained_slots(plan, ids, rows=[r])[0]
    on = np.diff(np.r_[0, trained.astype(np.int8), 0])
    expected = []
    for a, b in zip(np.flatnonzero(on == 1), np.flatnonzero(on == -1), strict=True):
        expected += [a - 0.5, b - 0.5, None]
    bars = [t for t in figures(at)[0]["data"] if t.get("mode") == "lines"]
    assert len(bars) == 6
    assert bars[0]["x"] == expected and bars[1]["y"] == expected
    assert [c for c in captions(at) if c.startswith("Green bars")][0].startswith(
        f"Green bars along the top and left edges: the row's {int(trained.sum()):,} trained"
    )
