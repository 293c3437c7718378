"""The Loss view: the gradient shares are the library's, for the plan and batch size."""

from __future__ import annotations

import pytest
from apptest import errors, figures, markdown, metrics, plotly_array, synthetic
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
