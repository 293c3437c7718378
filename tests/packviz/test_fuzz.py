"""Every public entry point, fuzzed: random types, dtypes, shapes and values. The outcome
is either a correct result (checked against the invariants) or a ValueError / TypeError
with a message — never another exception, never a crash."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import packviz as pv

DTYPES = [bool, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float16, np.float64]
DTYPES += [np.complex64, "U3"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=6),
)
arrays = hnp.arrays(
    dtype=st.sampled_from(DTYPES),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)
anything = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=8,
)
small_lengths = st.lists(st.integers(0, 40), max_size=12)
doc_ids_rows = st.lists(
    st.lists(st.integers(-1, 3), min_size=0, max_size=20), min_size=1, max_size=3
).map(lambda rows: [(r + [-1] * 20)[: max(len(x) for x in rows)] for r in rows])

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@contextlib.contextmanager
def clean_errors():
    """Let through only ValueError / TypeError, and only with a message."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"


def either(valid, wild=anything):
    """Mostly wild values, often valid ones, so results get checked too."""
    return st.one_of(valid, wild)


def check_plan(plan, max_len):
    assert isinstance(plan, pv.PackPlan)
    assert (plan.row_fill <= max_len).all()
    s = plan.stats()
    assert s.packed_tokens + s.lost_tokens == s.input_tokens


@FUZZ
@given(
    lengths=either(small_lengths),
    max_len=either(st.integers(1, 64)),
    strategy=either(st.sampled_from(pv.STRATEGIES)),
    sort=either(st.sampled_from(pv.SORTS)),
    overflow=either(st.sampled_from(pv.OVERFLOWS)),
    seed=either(st.integers(0, 5)),
)
def test_pack(lengths, max_len, strategy, sort, overflow, seed):
    plan = None
    with clean_errors():
        plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
    if plan is not None:
        check_plan(plan, int(max_len))


@FUZZ
@given(
    lengths=either(small_lengths),
    max_len=either(st.integers(1, 64)),
    top=either(st.integers(0, 5)),
    max_lens=either(st.lists(st.integers(1, 64), max_size=3)),
)
def test_statistics_entry_points(lengths, max_len, top, max_lens):
    with clean_errors():
        s = pv.length_summary(lengths, max_len, top=top)
        assert s.n_docs == len(lengths) and s.tokens == sum(lengths)
    with clean_errors():
        stats = pv.compare_strategies(lengths, max_len)
        assert [x.strategy for x in stats] == list(pv.STRATEGIES)
    with clean_errors():
        points = pv.sweep(lengths, max_lens, strategies=["best_fit"])
        assert [p.max_len for p in points] == list(max_lens)


@FUZZ
@given(
    plan_lengths=small_lengths,
    token_ids=anything,
    pad_id=either(st.integers(0, 9)),
    rows=either(st.none() | st.lists(st.integers(0, 3), max_size=3)),
)
def test_materialize(plan_lengths, token_ids, pad_id, rows):
    plan = pv.pack(plan_lengths, 16)
    with clean_errors():
        a = pv.materialize(plan, token_ids, pad_id=pad_id, rows=rows)
        assert a.doc_ids.shape[1] == 16
        if a.labels is not None:
            assert ((a.labels == -100) | (a.labels == a.input_ids)).all()
    with clean_errors():
        pv.materialize(token_ids, None, pad_id=0)


@FUZZ
@given(values=anything, offsets=anything, trained=anything)
def test_token_ids(values, offsets, trained):
    with clean_errors():
        ids = pv.TokenIds(values, offsets)
        assert ids.values.dtype == np.int32 and (ids.values >= 0).all()
        assert ids.offsets[0] == 0 and ids.offsets[-1] == ids.values.size
    with clean_errors():
        ids = pv.TokenIds.from_sequences(values, trained=trained if trained else None)
        assert len(ids) == len(values)
    with clean_errors():
        pv.TokenIds.coerce(values)


@FUZZ
@given(doc_ids=either(doc_ids_rows), block=either(st.integers(1, 8)))
def test_masks(doc_ids, block):
    with clean_errors():
        mask = pv.document_mask(doc_ids, device="cpu")
        assert mask.dtype == torch.bool and bool(mask.any(dim=-1).all())  # no empty row
        scores = torch.zeros(mask.shape) + pv.additive_mask(mask)
        if mask.numel():
            assert torch.isfinite(scores.softmax(-1)).all()
    with clean_errors():
        full, partial = pv.block_layout(doc_ids, block_size=block, device="cpu")
        assert not (full & partial).any()
    with clean_errors():
        pv.flex_block_mask(doc_ids, block_size=block, device="cpu")
    with clean_errors():
        starts = pv.piece_starts(doc_ids, device="cpu")
        assert (starts <= torch.arange(starts.shape[-1])).all()
    with clean_errors():
        cu, longest = pv.cu_seqlens_from_doc_ids(doc_ids)
        assert (
            cu[0] == 0 and (np.diff(cu) >= 1).all() and longest == int(np.diff(cu).max(initial=0))
        )


@FUZZ
@given(a=anything, b=anything, c=anything)
def test_mask_helpers(a, b, c):
    with clean_errors():
        m = pv.causal_mask(a, device="cpu")
        assert m.shape == (int(a), int(a))
    with clean_errors():
        pv.additive_mask(a, dtype=b)
    with clean_errors():
        mem = pv.mask_memory(a, b, batch=1, block_size=128)
        assert all(v >= 0 for v in mem.values())
    with clean_errors():
        pv.mask_grids(a, start=0, stop=None, max_size=8)
    with clean_errors():
        pv.piece_marks(a, max_marks=4)
    with clean_errors():
        pv.overview_grid(a, b, c, 2, 8)


@FUZZ
@given(
    name=st.sampled_from(["a.txt", "b.jsonl", "c.csv", "d.parquet", "e.md", "f.bin"]),
    data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    field=anything,
)
def test_reading_files(name, data, field):
    with clean_errors():
        docs = pv.read_documents(name, data)
        assert all(isinstance(d, str) for d in docs)
    with clean_errors():
        pv.read_documents(name, data, text_field=field, split=field)
    with clean_errors():
        pv.read_records(name, data)
    with clean_errors():
        pv.split_text(field, field)


@FUZZ
@given(data=anything)
def test_loading_tokenizers(data):
    with clean_errors():
        pv.load_tokenizer(data)
    with clean_errors():
        pv.load_tokenizer(data.encode() if isinstance(data, str) else b"{}")


@pytest.fixture(scope="module")
def tokenizer():
    return pv.train_tokenizer(
        ["the quick brown fox", "jumps over"] * 5, vocab_size=280, cache_dir=False
    )


@FUZZ
@given(documents=anything, ids=anything)
def test_encoding_and_decoding(tokenizer, documents, ids):
    with clean_errors():
        encoded = pv.encode(tokenizer, documents)
        assert len(encoded) == len(documents)
    with clean_errors():
        texts = pv.decode_tokens(tokenizer, ids)
        assert len(texts) == np.asarray(ids).size
    with clean_errors():
        pv.train_tokenizer(documents, vocab_size=280, cache_dir=False)


@FUZZ
@given(n=anything, median=anything, name=anything)
def test_corpus_helpers(n, median, name):
    with clean_errors():
        x = pv.synthetic_lengths(n, median=median)
        assert x.size == n and x.min() >= 1
    with clean_errors():
        pv.load_builtin(name)
