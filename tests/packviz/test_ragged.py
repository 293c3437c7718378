"""packviz.ragged: a `TokenIds` indexes like the list of documents it stands for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv

docs = st.lists(st.lists(st.integers(0, 2**31 - 1), max_size=5), max_size=6)


@given(docs, st.integers(-8, 8))
def test_indexing_is_a_lists(sequences, i):
    ids = pv.TokenIds.from_sequences(sequences)
    if -len(sequences) <= i < len(sequences):
        assert ids[i].tolist() == sequences[i]
        assert ids[np.int64(i)].tolist() == sequences[i]
    else:
        with pytest.raises(IndexError, match=f"document {i} out of range for {len(sequences)}"):
            ids[i]
    assert [d.tolist() for d in ids] == sequences  # iteration stops at the end


@pytest.mark.parametrize("index", [0.0, 1.5, True, slice(0, 1), "0"])
def test_an_index_that_is_not_an_integer_is_refused(index):
    ids = pv.TokenIds.from_sequences([[1, 2], [3]])
    with pytest.raises(TypeError, match="a document index must be an integer, got"):
        ids[index]


def test_token_ids_keep_private_copies_of_the_callers_arrays():
    """Like a plan, TokenIds built from the caller's arrays do not change when the caller
    later writes to them."""
    values, offsets = np.array([5, 6, 7], np.int32), np.array([0, 1, 3])
    trained = np.array([True, False, True])
    ids = pv.TokenIds(values, offsets, trained)
    values[0], offsets[1], trained[0] = 9, 2, False
    assert ids.values.tolist() == [5, 6, 7] and ids.offsets.tolist() == [0, 1, 3]
    assert ids.trained.tolist() == [True, False, True]


def test_sets_and_mappings_are_not_documents():
    with pytest.raises(ValueError, match="one entry per document, got set"):
        pv.TokenIds.from_sequences({(1, 2), (3,)})
    with pytest.raises(ValueError, match="one entry per document, got dict"):
        pv.TokenIds.from_sequences({"a": [1]})
