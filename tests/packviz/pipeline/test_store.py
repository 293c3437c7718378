"""The token store: what goes in comes back (by piece, across parts), and a damaged part
is never taken for finished."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz.pipeline.store import PartWriter, TokenStore, finished_part


def _write(folder, parts, trained_parts=()):
    records = []
    for p, docs in enumerate(parts):
        w = PartWriter(folder, p)
        for d in docs:
            flags = np.array([t % 2 == 0 for t in d], bool) if p in trained_parts else None
            w.add(np.array(d, np.int32), np.array([len(d)]), flags)
        records.append(w.commit({"segments": []}))
    return records


@given(
    parts=st.lists(
        st.lists(st.lists(st.integers(0, 1000), max_size=6), max_size=4), min_size=1, max_size=4
    ),
    data=st.data(),
)
def test_pieces_are_the_slices_of_the_documents(tmp_path_factory, parts, data):
    folder = tmp_path_factory.mktemp("s")
    trained_parts = set(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    store = TokenStore(folder, _write(folder, parts, trained_parts))
    docs = [d for part in parts for d in part]
    assert store.lengths().tolist() == [len(d) for d in docs]
    if not docs:
        return
    k = data.draw(st.integers(0, 8))
    doc = np.array(data.draw(st.lists(st.integers(0, len(docs) - 1), min_size=k, max_size=k)))
    start = np.array([data.draw(st.integers(0, len(docs[d]))) for d in doc], dtype=np.int64)
    length = np.array(
        [data.draw(st.integers(0, len(docs[d]) - s)) for d, s in zip(doc, start, strict=True)],
        dtype=np.int64,
    )
    ids = store.pieces(doc, start, length)
    assert isinstance(ids, pv.TokenIds)
    for i, (d, s, n) in enumerate(zip(doc, start, length, strict=True)):
        assert ids[i].tolist() == docs[d][s : s + n]
    part_of = [p for p, part in enumerate(parts) for _ in part]
    if trained_parts & {part_of[d] for d in doc}:
        flags = [
            (t % 2 == 0) if part_of[d] in trained_parts else True
            for d, s, n in zip(doc, start, length, strict=True)
            for t in docs[d][s : s + n]
        ]
        assert ids.trained.tolist() == flags


def test_a_damaged_or_half_written_part_is_not_finished(tmp_path):
    _write(tmp_path, [[[1, 2, 3], [4]]])
    assert finished_part(tmp_path, 0)["n_docs"] == 2
    (tmp_path / "part-000000.ids").write_bytes(b"\x00" * 16)
    assert finished_part(tmp_path, 0) is None
    assert finished_part(tmp_path, 1) is None  # never written
