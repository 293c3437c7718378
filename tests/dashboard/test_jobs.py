"""dashboard.jobs without a page: what a download button sends when clicked."""

from __future__ import annotations

import dataclasses

import pytest

from dashboard import jobs


def test_a_built_file_is_sent_as_built_even_when_the_store_dropped_it():
    """A large file built by a job: the click sends those bytes; it never rebuilds the
    file inside the download request (it used to, after an eviction from the store)."""
    calls = []

    def export_file(*args, report=None):
        calls.append(args)
        return b"rebuilt"

    big = jobs.Work("file|x", "Building x.npz", 10.0, export_file, (1, 2))
    assert jobs.deferred(big, b"built")() == b"built" and not calls
    with pytest.raises(ValueError, match="predicted to take 10.0 s: run it first"):
        jobs.deferred(big)
    small = dataclasses.replace(big, seconds=0.1)  # predicted cheap: built when clicked
    data = jobs.deferred(small)
    assert not calls and data() == b"rebuilt" and calls == [(1, 2)]
