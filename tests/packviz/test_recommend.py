"""packviz.recommend: penalties against a plainly written computation, rankings that
follow their weights, presets that decide as their names say, and the max-length range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz.recommend import SHARE_CRITERIA, criterion_values, penalties

LENGTHS = pv.synthetic_lengths(3000, median=300, sigma=1.0, seed=0)


def plain_penalties(candidates):
    """Points behind the best, criterion by criterion, candidate by candidate."""
    out = []
    for t in candidates:
        row = []
        for c in pv.CRITERIA:
            best = min(criterion_values(u)[c] for u in candidates)
            v = criterion_values(t)[c]
            if c in SHARE_CRITERIA:
                row.append(100 * (v - best))
            else:
                row.append(100 * math.log(v / best) if best > 0 else 0.0)
        out.append(row)
    return out


candidate_sets = st.lists(
    st.tuples(
        st.sampled_from([8, 16, 64]),
        st.sampled_from(pv.STRATEGIES),
        st.sampled_from(pv.SORTS),
        st.sampled_from(pv.OVERFLOWS),
    ),
    min_size=1,
    max_size=6,
)


@given(st.lists(st.integers(1, 80), min_size=1, max_size=25), candidate_sets)
def test_penalties_and_scores_match_a_plain_computation(lengths, settings):
    cands = [pv.evaluate(lengths, m, strategy=x, sort=s, overflow=o) for m, x, s, o in settings]
    assert np.allclose(penalties(cands), plain_penalties(cands))
    weights = {c: float(i + 1) for i, c in enumerate(pv.CRITERIA)}
    r = pv.rank(cands, weights)
    plain = [
        sum(w * p for w, p in zip(weights.values(), row, strict=True))
        for row in plain_penalties(list(r.ranked))
    ]
    assert np.allclose(r.score, plain)
    assert (np.diff(r.score) >= -1e-9).all()  # best first
    assert (r.penalty.min(axis=0) >= -1e-9).all()
    # the order does not change when every weight is scaled
    r2 = pv.rank(cands, {c: 3 * w for c, w in weights.items()})
    assert [id(t) for t in r2.ranked] == [id(t) for t in r.ranked]


def test_a_single_weight_ranks_by_that_criterion():
    cands = pv.sweep_tradeoffs(LENGTHS, [256, 1024, 4096], strategies=["best_fit", "wrapped"])
    by_frag = pv.rank(cands, {"fragmented": 1})
    assert by_frag.best.fragmented_tokens == min(t.fragmented_tokens for t in cands)
    by_mem = pv.rank(cands, {"mask_memory": 1})
    assert by_mem.best.max_len == 256


def test_presets_decide_as_their_names_say():
    ranking = {
        p: pv.recommend(
            LENGTHS,
            max_lens=pv.default_max_lens(2048),
            strategies=pv.STRATEGIES,
            weights=pv.preset_weights(p),
        ).best
        for p in pv.PRESETS
    }
    for best in ranking.values():
        assert best.strategy in ("best_fit", "first_fit")  # never padded or next_fit
    assert ranking["long context"].max_len >= ranking["pretraining"].max_len
    assert ranking["fine-tuning"].fragmented_share <= 0.01
    assert ranking["fine-tuning"].lost_tokens == 0


def test_why_names_what_decided():
    cands = [pv.evaluate(LENGTHS, 2048, strategy=x) for x in ("wrapped", "best_fit")]
    r = pv.rank(cands, {"fragmented": 1.0, "padding": 1.0})
    assert r.best.strategy == "best_fit"
    reasons = pv.why(r)
    assert reasons[0].criterion == "fragmented" and reasons[0].points > 0
    assert reasons[0].winner_value < reasons[0].other_value
    assert sum(x.points for x in reasons) == pytest.approx(r.score[1] - r.score[0])
    with pytest.raises(ValueError, match="not both in a ranking of 2"):
        pv.why(r, other=5)


def test_ranking_table_and_position():
    r = pv.recommend(LENGTHS, max_lens=[512, 1024], strategies=["best_fit", "padded"])
    table = r.table()
    assert [row["rank"] for row in table] == [1, 2, 3, 4]
    assert r.position(1024, "padded", "desc") is not None
    assert r.position(999, "padded", "desc") is None
    assert {"score", "fragmented_share", "penalty_compute"} <= set(table[0])


@pytest.mark.parametrize(
    ("weights", "says"),
    [
        ({"speed": 1}, "unknown criterion 'speed'"),
        ({"compute": -1}, "must be finite and non-negative"),
        ({"compute": "1"}, "must be a number"),
    ],
)
def test_bad_weights_say_what_is_wrong(weights, says):
    with pytest.raises(ValueError, match=says):
        pv.rank([pv.evaluate([3], 4)], weights)


def test_unknown_preset():
    with pytest.raises(ValueError, match="choose one of pretraining, fine-tuning, long context"):
        pv.preset_weights("chat")


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (2048, [128, 256, 512, 1024, 2048, 4096, 8192]),
        (131072, [2048, 4096, 8192, 16384, 32768, 65536, 131072]),
        (1, [1, 16, 32, 64, 128, 256, 512, 1024]),
        (8, [8, 16, 32, 64, 128, 256, 512, 1024]),
        (3000, [128, 256, 512, 1024, 2048, 3000, 4096, 8192]),
    ],
)
def test_default_max_lens_follow_the_current_one(current, expected):
    assert pv.default_max_lens(current) == expected


@given(st.integers(1, pv.MAX_LEN_LIMIT))
def test_default_max_lens_hold_the_current_one_and_two_powers_above(current):
    out = pv.default_max_lens(current)
    assert current in out and out == sorted(set(out))  # always there, so it can be marked
    powers = [m for m in out if m != current]
    assert all(16 <= m <= 131_072 and m & (m - 1) == 0 for m in powers)
    above = [m for m in powers if m > current]
    if 512 <= current <= 32_768:  # room for the rest below, and for two above
        assert above == [2 ** (current.bit_length() + i) for i in (0, 1)]
    elif current > 32_768:  # clipped at 131,072
        assert above == [m for m in (65_536, 131_072) if m > current]


def test_empty_ranking():
    r = pv.rank([], {"compute": 1})
    assert r.ranked == () and r.score.size == 0
    with pytest.raises(ValueError, match="no candidates"):
        _ = r.best


@given(st.lists(st.integers(0, 300_000), min_size=1, max_size=40))
def test_covering_max_lens_hold_the_documents_whole(lengths):
    out = pv.covering_max_lens(lengths)
    longest = max(lengths)
    if longest <= 131_072:
        m = out[-1]
        assert m >= longest and (m == 16 or m // 2 < longest)  # the smallest power of two
        assert pv.evaluate(lengths, m).split_docs == 0
    assert all(16 <= m <= 131_072 and m & (m - 1) == 0 for m in out)


def test_why_compares_with_the_runner_up_by_default():
    """first_fit and best_fit tie here; why() explains the win over the first candidate
    that scores worse, not over a tie (which has no reasons)."""
    r = pv.rank(
        [pv.evaluate([5, 3, 6], 8, strategy=s) for s in ("best_fit", "first_fit", "padded")],
        pv.preset_weights("pretraining"),
    )
    assert r.score[0] == r.score[1] and r.runner_up() == 2
    assert pv.why(r, other=1) == []
    assert [x.criterion for x in pv.why(r)] == [x.criterion for x in pv.why(r, other=2)] != []


def test_rank_and_why_refuse_the_wrong_objects():
    with pytest.raises(TypeError, match=r"for a preset pass preset_weights\('pretraining'\)"):
        pv.rank([pv.evaluate([3], 8)], "pretraining")
    with pytest.raises(TypeError, match=r"rank \(candidate 0\) takes Tradeoffs"):
        pv.rank(["x"], {"compute": 1})
    with pytest.raises(TypeError, match="why takes a Ranking"):
        pv.why(None)
