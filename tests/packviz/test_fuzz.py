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


# --- every public callable × hostile arguments ------------------------------------------
# One valid call per callable of packviz.__all__ (built lazily: a tokenizer, a plan, ...);
# each of its arguments is then replaced by each hostile value, in turn. The outcome is a
# result or a ValueError / TypeError whose message is the library's own — never another
# exception, never Python's or numpy's words for a wrong type.

#: Phrases of Python / numpy errors that mean a wrong argument got past the checks.
RAW_PHRASES = (
    "object has no attribute",
    "object is not iterable",
    "object is not subscriptable",
    "object is not callable",
    "string indices must be",
    "unsupported operand",
    "not supported between instances",
    "could not convert",
    "invalid literal",
    "int() argument",
    "unhashable type",
    "Cannot cast",
    "setting an array element",
    "only integer scalar",
    "must be real number",
    "expected str, bytes or os.PathLike",
    "division by zero",
    "list index out of range",
)

HOSTILE = (
    None,
    True,
    1.5,
    float("nan"),
    float("inf"),
    -1,
    0,
    2**70,
    -(2**70),
    "x",
    "",
    b"x",
    {"a": 1},
    {1, 2},
    frozenset({"best_fit"}),
    [],
    [[1, 2], [3]],
    ["x"],
    [None],
    np.zeros((2, 2, 2)),
    np.array([1.5]),
    np.array([2**40]),
    np.int64(-5),
    object(),
)

#: Public names that are not functions to call with user data: Literal types, exception
#: classes, result records (built by the library, plain frozen data), the default device,
#: and `audit` (tested in tests/packviz/auditing).
NOT_FUZZED = {
    "AttnImplementation", "AuditPath", "Distribution", "Field", "Format", "Overflow",
    "Sort", "Split", "Strategy", "RecordKind", "TrainOn", "CollateMode", "HFLayout",
    "MaskFill", "UnevenSplit", "Criterion", "LossNormalization", "Preset", "RowPick",
    "CorpusError", "TokenizerError", "ChatTemplateError",
    "AuditResult", "MaskGrids", "LengthSummary", "PackStats", "PackedArrays", "PackPlan",
    "RenderedRecord", "SFTStats", "DocumentStory", "Fragmentation", "PlanCost", "Ranking",
    "Reason", "Tradeoffs",
    "default_device", "audit",
}  # fmt: skip


def _valid_calls(tmp: str) -> dict:
    """name -> (args, kwargs) of one valid call."""
    tok = pv.train_tokenizer(
        ["the quick brown fox", "jumps over"] * 5, vocab_size=280, cache_dir=False
    )
    plan = pv.pack([3, 5, 2], 8)
    ids = pv.TokenIds.from_sequences([[1] * 3, [2] * 5, [3] * 2])
    arrays = pv.materialize(plan, ids, pad_id=0)
    ranking = pv.recommend([3, 5, 2], max_lens=[8, 16])
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    return {
        "mask_grids": ((arrays.doc_ids[0],), {}),
        "overview_grid": ((plan.row, plan.offset, plan.length, plan.n_rows, 8), {}),
        "piece_marks": ((arrays.doc_ids[0],), {}),
        "PackedDataset": ((arrays,), {}),
        "PackedFile": ((None, "npz", pv.to_bytes(arrays, "npz")), {}),
        "TokenIds": ((np.array([1, 2], np.int32), np.array([0, 2])), {}),
        "additive_mask": ((pv.document_mask(arrays.doc_ids, device="cpu"),), {}),
        "block_layout": ((arrays.doc_ids,), {"block_size": 4, "device": "cpu"}),
        "causal_mask": ((4,), {"device": "cpu"}),
        "collate": (([pv.PackedDataset(arrays)[0]],), {}),
        "collate_with": (("flattened",), {}),
        "compare_strategies": (([3, 5, 2], 8), {}),
        "cu_seqlens_from_doc_ids": ((arrays.doc_ids,), {}),
        "decode_tokens": ((tok, [1, 2]), {}),
        "document_mask": ((arrays.doc_ids,), {"device": "cpu"}),
        "encode": ((tok, ["a b"]), {}),
        "eos_token_id": ((tok,), {}),
        "estimate_bytes": ((2, 8, "npz"), {}),
        "flex_block_mask": ((arrays.doc_ids,), {"device": "cpu", "block_size": 4}),
        "from_bytes": ((pv.to_bytes(arrays, "npz"), "npz"), {}),
        "load": ((f"{tmp}/missing.npz",), {}),
        "load_builtin": ((next(iter(pv.BUILTIN_CORPORA)),), {}),
        "length_summary": (([3, 5, 2], 8), {}),
        "load_tokenizer": ((tok.to_str().encode(),), {}),
        "mask_memory": ((8, 2), {}),
        "materialize": ((plan, ids), {"pad_id": 0}),
        "pack": (([3, 5, 2], 8), {}),
        "pack_command": ((["--help-not-a-flag"],), {}),
        "pack_corpus": (([f"{tmp}/missing.txt"], f"{tmp}/out"), {"workers": 1}),
        "pad_token_id": ((tok,), {}),
        "piece_starts": ((arrays.doc_ids,), {"device": "cpu"}),
        "read_documents": (("a.txt", b"hello"), {}),
        "read_records": (("a.jsonl", b'{"text": "x"}'), {}),
        "save": ((arrays, f"{tmp}/out.npz"), {}),
        "split_text": (("a\n\nb",), {}),
        "sweep": (([3, 5, 2], [8]), {}),
        "synthetic_lengths": ((5,), {}),
        "to_bytes": ((arrays, "npz"), {}),
        "tokenizer_fingerprint": ((tok,), {}),
        "train_tokenizer": ((["ab cd"] * 3,), {"vocab_size": 270, "cache_dir": False}),
        "ChatTemplate": ((pv.CHATML,), {}),
        "encode_records": ((tok, [{"prompt": "a", "completion": "b"}]), {"train_on": "completion"}),
        "load_builtin_records": ((next(iter(pv.BUILTIN_RECORDS)),), {}),
        "load_chat_template": ((b'{"chat_template": "{{ messages[0].content }}"}',), {}),
        "record_kind": (({"prompt": "a", "completion": "b"},), {}),
        "render_chat": ((chat,), {}),
        "render_records": (([{"messages": chat}],), {"train_on": "assistant"}),
        "rendering_settings": ((tok,), {"train_on": "all"}),
        "sft_stats": ((plan, ids), {"warn": False}),
        "trained_row_fill": ((plan, ids), {}),
        "trained_slots": ((plan, ids), {}),
        "check_arrays": ((arrays,), {}),
        "to_hf_dataset": ((arrays,), {}),
        "arrays_bytes": ((2, 8), {}),
        "context_fragmentation": ((plan,), {}),
        "count_pieces": (([3, 5, 2], 8), {}),
        "covering_max_lens": (([3, 5, 2],), {}),
        "default_max_lens": ((64,), {}),
        "document_story": ((plan, 1), {}),
        "estimate_file_bytes": ((plan, ids, "npz"), {}),
        "evaluate": (([3, 5, 2], 8), {}),
        "find_documents": ((["abc", "bcd"], "b"), {}),
        "length_groups": (([3, 5, 2],), {}),
        "length_order": (([3, 5, 2],), {}),
        "longest_share": ((np.ones(3) / 3, [3, 5, 2]), {}),
        "loss_weights": ((plan,), {"batch_rows": 1}),
        "pick_rows": ((plan, 1), {}),
        "plan_cost": (([3, 5, 2], 8), {}),
        "preset_weights": (("pretraining",), {}),
        "rank": ((list(ranking.ranked), pv.preset_weights("pretraining")), {}),
        "recommend": (([3, 5, 2],), {"max_lens": [8, 16]}),
        "share_by_length": ((np.ones(3) / 3, [3, 5, 2]), {}),
        "smallest_max_len": (([3, 5, 2], 4), {}),
        "sweep_tradeoffs": (([3, 5, 2], [8]), {}),
        "tradeoffs": ((plan,), {}),
        "why": ((ranking,), {}),
    }


@pytest.fixture(scope="module")
def valid_calls(tmp_path_factory):
    """The table, called from a scratch folder: a hostile ``cache_dir="x"`` or ``""`` is
    a valid relative folder, written there and not into the repository."""
    import os

    folder = tmp_path_factory.mktemp("fuzz")
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield _valid_calls(str(folder))
    finally:
        os.chdir(before)


def _slots(fn, args, kwargs) -> list:
    """Every argument of a call: its positions, its keywords, and the keyword-only
    options it leaves at their defaults (callbacks excepted)."""
    import inspect

    out = [("arg", i) for i in range(len(args))] + [("kw", k) for k in kwargs]
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.KEYWORD_ONLY and p.name not in kwargs and p.name != "progress":
            out.append(("kw", p.name))
    return out


def _call_with(name, fn, args, kwargs, slot, value):
    a, k = list(args), dict(kwargs)
    if slot[0] == "arg":
        a[slot[1]] = value
    else:
        k[slot[1]] = value
    try:
        fn(*a, **k)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        where = f"{name}({slot[1]}={value!r:.40}) -> {type(exc).__name__}: {msg[:200]}"
        assert msg.strip(), where
        assert not any(p in msg for p in RAW_PHRASES), where
    except Exception as exc:  # noqa: BLE001 - the point of the test
        raise AssertionError(
            f"{name}({slot[1]}={value!r:.40}) raised {type(exc).__name__}: {exc}"
        ) from exc


def test_every_public_callable_is_in_the_table(valid_calls):
    callables = {n for n in pv.__all__ if callable(getattr(pv, n))}
    assert callables - NOT_FUZZED == set(valid_calls)


PUBLIC = sorted(n for n in pv.__all__ if callable(getattr(pv, n)) and n not in NOT_FUZZED)


@pytest.mark.parametrize("name", PUBLIC)
def test_hostile_arguments_give_clear_errors(valid_calls, name):
    import warnings

    args, kwargs = valid_calls[name]
    fn = getattr(pv, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for slot in _slots(fn, args, kwargs):
            for value in HOSTILE:
                _call_with(name, fn, args, kwargs, slot, value)


@FUZZ
@given(data=st.data(), value=anything)
def test_hostile_arguments_hypothesis(valid_calls, data, value):
    """The same with hypothesis' values (arrays of every dtype and shape, nested lists
    and dicts) in a random argument of a random callable."""
    import warnings

    name = data.draw(st.sampled_from([n for n in PUBLIC if n not in ("train_tokenizer",)]))
    args, kwargs = valid_calls[name]
    fn = getattr(pv, name)
    slot = data.draw(st.sampled_from(_slots(fn, args, kwargs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _call_with(name, fn, args, kwargs, slot, value)
