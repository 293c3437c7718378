"""The named options of the API: one ``Literal`` type per kind of choice, its values as a
tuple, and the one check that turns a wrong value into a message listing the right ones.

The tuples are derived from the ``Literal`` types, so a type checker and the runtime
check can never disagree about what is allowed.

    >>> STRATEGIES
    ('next_fit', 'first_fit', 'best_fit', 'wrapped', 'padded')
    >>> check_choice("sort", "up", SORTS)
    Traceback (most recent call last):
    ...
    ValueError: unknown sort 'up'; choose one of desc, asc, none, random
"""

from __future__ import annotations

from typing import Literal, get_args

Strategy = Literal["next_fit", "first_fit", "best_fit", "wrapped", "padded"]
Sort = Literal["desc", "asc", "none", "random"]
Overflow = Literal["split", "truncate", "drop"]
Format = Literal["npz", "pt", "parquet"]
Field = Literal["input_ids", "labels", "position_ids", "doc_ids"]
Split = Literal["file", "paragraph", "line", "sentence"]
Distribution = Literal["lognormal", "exponential", "uniform", "constant"]
#: How packed rows reach a model in `packviz.auditing` (``seq_idx``: models with state layers).
AuditPath = Literal[
    "dense_additive", "dense_bool", "flattened", "position_ids", "flex", "causal", "seq_idx"
]
#: transformers' ``attn_implementation`` values an audit runs.
AttnImplementation = Literal["eager", "sdpa", "flex_attention"]
TrainOn = Literal["all", "completion", "assistant", "last_assistant"]
RecordKind = Literal["chat", "prompt_completion", "text"]
#: What `packviz.collate` hands the model ("varlen" is an alias of "flattened").
CollateMode = Literal["dense", "flattened", "flex", "varlen"]
#: Rows of `packviz.to_hf_dataset`: full padded rows, or the real tokens only.
HFLayout = Literal["padded", "unpadded"]
Preset = Literal["pretraining", "fine-tuning", "long context"]
Criterion = Literal["compute", "padding", "lost", "fragmented", "attention", "mask_memory"]
LossNormalization = Literal["token", "sequence"]
RowPick = Literal["spread", "most_pieces", "least_full", "first", "last"]
#: What `packviz.PackedIterableDataset` does with the rows that do not divide evenly
#: among the ranks: leave them out of the epoch, or even the shares with padding rows.
UnevenSplit = Literal["drop", "pad"]
#: The blocked value of an additive attention mask: ``-inf``, or the dtype's lowest
#: finite value (``finfo(dtype).min``, what Hugging Face models write).
MaskFill = Literal["-inf", "min"]

STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
SORTS: tuple[Sort, ...] = get_args(Sort)
OVERFLOWS: tuple[Overflow, ...] = get_args(Overflow)
FORMATS: tuple[Format, ...] = get_args(Format)
FIELDS: tuple[Field, ...] = get_args(Field)
SPLITS: tuple[Split, ...] = get_args(Split)
DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)
AUDIT_PATHS: tuple[AuditPath, ...] = get_args(AuditPath)
ATTN_IMPLEMENTATIONS: tuple[AttnImplementation, ...] = get_args(AttnImplementation)
TRAIN_ON: tuple[TrainOn, ...] = get_args(TrainOn)
RECORD_KINDS: tuple[RecordKind, ...] = get_args(RecordKind)
COLLATE_MODES: tuple[CollateMode, ...] = get_args(CollateMode)
HF_LAYOUTS: tuple[HFLayout, ...] = get_args(HFLayout)
PRESETS: tuple[Preset, ...] = get_args(Preset)
CRITERIA: tuple[Criterion, ...] = get_args(Criterion)
LOSS_NORMALIZATIONS: tuple[LossNormalization, ...] = get_args(LossNormalization)
ROW_PICKS: tuple[RowPick, ...] = get_args(RowPick)
UNEVEN_SPLITS: tuple[UnevenSplit, ...] = get_args(UnevenSplit)
MASK_FILLS: tuple[MaskFill, ...] = get_args(MaskFill)


def check_choice(name: str, value: object, choices, *, error: type[Exception] = ValueError):
    """Return ``value`` if it is one of ``choices``; else raise ``error`` naming them all."""
    if not isinstance(value, str) or value not in choices:
        raise error(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value
