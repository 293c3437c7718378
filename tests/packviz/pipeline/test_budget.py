"""The memory budget: sizes people write, and what fits."""

from __future__ import annotations

import pytest

from packviz.pipeline.budget import (
    MIN_BATCH_BYTES,
    SHARD_BYTES_PER_SLOT,
    TOKENIZE_BYTES_PER_BYTE,
    TOKENIZE_FIXED,
    parse_bytes,
    plan_memory,
)

MB = 2**20


@pytest.mark.parametrize(
    ("text", "value"),
    [("2GB", 2 * 10**9), ("1.5G", 15 * 10**8), ("512 MiB", 512 * MB), ("300", 300), (7, 7)],
)
def test_sizes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("bad", ["", "2 parsecs", "-1GB", "0", True, "1e9"])
def test_bad_sizes_say_what_is_expected(bad):
    with pytest.raises(ValueError, match="memory budget must be a size like 2GB"):
        parse_bytes(bad)


def test_fewer_workers_when_all_do_not_fit_and_everything_stays_inside():
    base, slots = 100 * MB, 1 << 20
    plan = plan_memory(600 * MB, workers=8, base=base, shard_slots=slots)
    assert plan.workers < 8
    processes = plan.workers + 3  # the driver, the fork server, the resource tracker
    assert processes * base + plan.shards_at_once * slots * SHARD_BYTES_PER_SLOT <= 600 * MB
    batch = TOKENIZE_FIXED + plan.batch_bytes * TOKENIZE_BYTES_PER_BYTE
    assert processes * base + plan.workers * batch <= 600 * MB
    least = max(
        slots * SHARD_BYTES_PER_SLOT, TOKENIZE_FIXED + MIN_BATCH_BYTES * TOKENIZE_BYTES_PER_BYTE
    )
    one = plan_memory(base + least, workers=8, base=base, shard_slots=slots)
    assert (one.workers, one.shards_at_once) == (1, 1)  # in the driver itself


def test_a_budget_below_one_worker_is_refused_with_what_would_fit():
    with pytest.raises(
        ValueError,
        match=r"--memory-budget 150 MiB is too small: one worker needs about 260 MiB \(100 MiB to start, then 49 MiB to tokenize or 160 MiB per shard of 4,194,304 token slots\); raise the budget or lower --rows-per-shard",
    ):
        plan_memory(150 * MB, workers=2, base=100 * MB, shard_slots=1 << 22)
