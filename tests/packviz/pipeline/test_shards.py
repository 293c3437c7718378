"""A shard built straight from the token store is ``materialize`` of the global plan's
rows, field for field and dtype for dtype, whatever the plan, the parts and the flags."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import packviz as pv
from packviz.choices import OVERFLOWS, SORTS, STRATEGIES
from packviz.pipeline import shards, store
from packviz.pipeline.store import PartWriter, TokenStore

FIELDS = ("input_ids", "labels", "position_ids", "doc_ids", "cu_seqlens", "row_index")


def _store(folder, docs, flags, cuts, flagged_parts):
    """The documents written as store parts split at ``cuts``; flags only in some parts."""
    records, bounds = [], [0, *cuts, len(docs)]
    for p, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        w = PartWriter(folder, p)
        for d, f in zip(docs[a:b], flags[a:b], strict=True):
            w.add(np.array(d, np.int32), np.array([len(d)]), f if p in flagged_parts else None)
        records.append(w.commit({"segments": []}))
    return TokenStore(folder, records)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    max_len=st.integers(1, 24),
    strategy=st.sampled_from(STRATEGIES),
    sort=st.sampled_from(SORTS),
    overflow=st.sampled_from(OVERFLOWS),
    data=st.data(),
)
def test_a_shard_is_materialize_of_its_rows(
    tmp_path_factory, lengths, max_len, strategy, sort, overflow, data
):
    if not any(lengths):
        lengths[0] = 1
    rng = np.random.default_rng(len(lengths) * 31 + max_len)
    docs = [rng.integers(0, 1000, n).tolist() for n in lengths]
    flags = [rng.random(n) < 0.6 for n in lengths]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(docs)), max_size=3))) - {len(docs)})
    flagged = set(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    s = _store(tmp_path_factory.mktemp("s"), docs, flags, cuts, flagged)
    part_of = np.searchsorted(s.doc_starts, np.arange(len(docs)), side="right") - 1
    trained = [f if part_of[i] in flagged else np.ones(len(f), bool) for i, f in enumerate(flags)]
    ids = pv.TokenIds.from_sequences(docs, trained if flagged & set(part_of) else None)

    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=5)
    if plan.n_rows == 0:  # every document dropped
        return
    r0 = data.draw(st.integers(0, plan.n_rows - 1))
    r1 = data.draw(st.integers(r0 + 1, plan.n_rows))
    p0, p1 = int(plan.row_starts[r0]), int(plan.row_starts[r1])
    pieces = {k: getattr(plan, k)[p0:p1] for k in shards.PIECE_ARRAYS}
    got = shards.shard_arrays(pieces, s, r0, r1, max_len=max_len, pad_id=7,
                              n_docs=len(docs), settings=plan.settings())  # fmt: skip
    want = pv.materialize(plan, ids, pad_id=7, rows=np.arange(r0, r1))
    for name in FIELDS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert got.max_seqlen == want.max_seqlen
    assert got.metadata == want.metadata


def test_pieces_are_copied_the_same_in_small_blocks(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 50, n).tolist() for n in rng.integers(0, 30, 60)]
    s = _store(tmp_path, docs, [np.ones(len(d), bool) for d in docs], [20, 45], set())
    doc = rng.integers(0, len(docs), 80)
    start = np.array([rng.integers(0, len(docs[d]) + 1) for d in doc])
    length = np.array(
        [rng.integers(0, len(docs[d]) - a + 1) for d, a in zip(doc, start, strict=True)]
    )
    want = s.pieces(doc, start, length)
    monkeypatch.setattr(store, "_COPY_BLOCK", 7)
    got = s.pieces(doc, start, length)
    assert np.array_equal(got.values, want.values) and np.array_equal(got.offsets, want.offsets)
    for i, (d, a, n) in enumerate(zip(doc, start, length, strict=True)):
        assert got[i].tolist() == docs[d][a : a + n]
