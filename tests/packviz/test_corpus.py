"""packviz.corpus: built-in corpora, parsing uploads, and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest

import packviz as pv


@pytest.mark.parametrize("name", list(pv.BUILTIN_CORPORA))
def test_builtin_corpora_are_real_and_heavy_tailed(name):
    docs = pv.load_builtin(name)
    assert len(docs) > 50 and all(d.strip() for d in docs)
    lengths = np.array([len(d) for d in docs])
    assert lengths.max() > 5 * np.median(lengths)


def test_split_text():
    text = "First para. Second sentence!\n\nNext para\nline two?\n\n\n"
    assert pv.split_text(text, "file") == [text.strip()]
    assert pv.split_text(text, "paragraph") == [
        "First para. Second sentence!",
        "Next para\nline two?",
    ]
    assert pv.split_text(text, "line") == ["First para. Second sentence!", "Next para", "line two?"]
    assert pv.split_text(text, "sentence") == [
        "First para.",
        "Second sentence!",
        "Next para\nline two?",
    ]
    with pytest.raises(ValueError, match="file, paragraph, line, sentence"):
        pv.split_text(text, "word")


def test_synthetic_lengths():
    x = pv.synthetic_lengths(100_000, seed=0)
    assert x.dtype == np.int64 and x.min() >= 1 and x.max() <= 32768
    assert 280 < np.median(x) < 320
    assert np.array_equal(x, pv.synthetic_lengths(100_000, seed=0))
    for dist in pv.DISTRIBUTIONS:
        y = pv.synthetic_lengths(10_000, distribution=dist, median=100, max_length=4096)
        assert 60 < np.median(y) < 140, dist
    with pytest.raises(pv.CorpusError, match="between 1 and"):
        pv.synthetic_lengths(0)
    with pytest.raises(pv.CorpusError, match="lognormal"):
        pv.synthetic_lengths(10, distribution="zipf")
