"""The Loss view: the gradient shares are the library's, for the plan and batch size."""

from __future__ import annotations

import pytest
from apptest import (
    app,
    captions,
    errors,
    figures,
    markdown,
    metrics,
    plotly_array,
    records_ids,
    synthetic,
    train_on,
)
from apptest import synthetic_lengths as lengths

import packviz as pv


@pytest.mark.parametrize("batch", [8, 64])
def test_longest_tenth_shares_are_the_librarys(batch):
    at = synthetic(max_len=1024, batch_rows=batch).run()
    at.switch_page("pages/loss.py").run()
    assert not at.exception and not errors(at)
    packed = pv.pack(lengths(), 1024)
    padded = pv.pack(lengths(), 1024, strategy="padded")
    token = pv.loss_weights(packed, batch_rows=batch)
    sequence = pv.loss_weights(padded, batch_rows=batch, normalize="sequence")
    m = metrics(at)
    assert m["Token mean, packed (best_fit)"] == f"{pv.longest_share(token, lengths()):.1%}"
    assert m["Per-sequence mean, padded"] == f"{pv.longest_share(sequence, lengths()):.1%}"
    share = pv.longest_share(token, lengths())
    assert f"the longest 10 % of the documents carry {share:.0%} of the gradient" in markdown(at)
    bars = figures(at)[0]["data"]
    assert plotly_array(bars[0]["y"]) == pytest.approx(pv.share_by_length(token, lengths()))
    assert plotly_array(bars[1]["y"]) == pytest.approx(pv.share_by_length(sequence, lengths()))


def test_fine_tuning_weights_count_trained_targets_only():
    """Built-in chats, train on the last assistant turn: the shares are the library's
    with the trained flags, not the token counts (which would weigh the prompts)."""
    at = app(builtin_name="python-docs-chat", max_len=1024).run()
    train_on(at, "last_assistant")
    at.switch_page("pages/loss.py").run()
    assert not at.exception and not errors(at)
    _, ids = records_ids("python-docs-chat", "last_assistant")
    plan = pv.pack(ids.lengths, 1024)
    padded = pv.pack(ids.lengths, 1024, strategy="padded")
    token = pv.loss_weights(plan, batch_rows=8, token_ids=ids)
    sequence = pv.loss_weights(padded, batch_rows=8, normalize="sequence", token_ids=ids)
    every = pv.loss_weights(plan, batch_rows=plan.n_rows, token_ids=ids)
    m = metrics(at)
    assert m["Token mean, packed (best_fit)"] == f"{pv.longest_share(token, ids.lengths):.1%}"
    assert m["Per-sequence mean, padded"] == f"{pv.longest_share(sequence, ids.lengths):.1%}"
    assert m["Their share of the targets"] == f"{pv.longest_share(every, ids.lengths):.1%}"
    untrained = pv.loss_weights(plan, batch_rows=plan.n_rows)
    assert pv.longest_share(every, ids.lengths) != pv.longest_share(untrained, ids.lengths)
    assert any("only trained targets count" in c for c in captions(at))
