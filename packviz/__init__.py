"""packviz: exact sequence packing for causal LM training data.

Plan from lengths (`pack`), build the arrays (`materialize`), the masks
(`document_mask`, `flex_block_mask`), the statistics (`PackPlan.stats`) and the files
(`save`, `load`). See the README for a tour.
"""

from __future__ import annotations

__version__ = "0.1.0"

from packviz.auditing import AuditResult, audit
from packviz.blockmask import block_layout, flex_block_mask
from packviz.budget import (
    PlanCost,
    arrays_bytes,
    count_pieces,
    estimate_file_bytes,
    plan_cost,
    smallest_max_len,
)
from packviz.chat import (
    CHATML,
    CHATML_SPECIAL_TOKENS,
    ChatTemplate,
    ChatTemplateError,
    load_chat_template,
    render_chat,
)
from packviz.choices import (
    ATTN_IMPLEMENTATIONS,
    AUDIT_PATHS,
    COLLATE_MODES,
    CRITERIA,
    DISTRIBUTIONS,
    FIELDS,
    FORMATS,
    HF_LAYOUTS,
    LOSS_NORMALIZATIONS,
    MASK_FILLS,
    OVERFLOWS,
    PRESETS,
    RECORD_KINDS,
    ROW_PICKS,
    SORTS,
    SPLITS,
    STRATEGIES,
    TRAIN_ON,
    UNEVEN_SPLITS,
    AttnImplementation,
    AuditPath,
    CollateMode,
    Criterion,
    Distribution,
    Field,
    Format,
    HFLayout,
    LossNormalization,
    MaskFill,
    Overflow,
    Preset,
    RecordKind,
    RowPick,
    Sort,
    Split,
    Strategy,
    TrainOn,
    UnevenSplit,
)
from packviz.compare import compare_strategies, sweep
from packviz.corpus import (
    BUILTIN_CORPORA,
    BUILTIN_RECORDS,
    CorpusError,
    load_builtin,
    load_builtin_records,
    split_text,
    synthetic_lengths,
)
from packviz.export import estimate_bytes, from_bytes, load, save, to_bytes
from packviz.files import read_documents, read_records
from packviz.grids import MaskGrids, mask_grids, overview_grid, piece_marks
from packviz.hf import to_hf_dataset
from packviz.layout import IGNORE_INDEX, PackedArrays, cu_seqlens_from_doc_ids, materialize
from packviz.limits import MAX_LEN_LIMIT
from packviz.lookup import DocumentStory, document_story, find_documents, pick_rows
from packviz.loss import (
    length_groups,
    length_order,
    longest_share,
    loss_weights,
    share_by_length,
)
from packviz.masks import (
    additive_mask,
    causal_mask,
    default_device,
    document_mask,
    mask_memory,
    piece_starts,
)
from packviz.packing import pack
from packviz.pipeline import pack_command, pack_corpus
from packviz.plan import PackPlan
from packviz.ragged import TokenIds

# `pv.open` reads lazily; it is left out of __all__, so `from packviz import *` never
# shadows the builtin open
from packviz.reader import PackedFile
from packviz.reader import open as open
from packviz.recommend import (
    CRITERION_LABELS,
    PRESET_WEIGHTS,
    Ranking,
    Reason,
    covering_max_lens,
    default_max_lens,
    preset_weights,
    rank,
    recommend,
    why,
)
from packviz.records import (
    RenderedRecord,
    encode_records,
    record_kind,
    render_records,
)
from packviz.sft import SFTStats, sft_stats, trained_row_fill, trained_slots
from packviz.stats import LengthSummary, PackStats, length_summary
from packviz.tokenize import (
    TokenizerError,
    decode_tokens,
    encode,
    eos_token_id,
    load_tokenizer,
    pad_token_id,
    tokenizer_fingerprint,
    train_tokenizer,
)
from packviz.torch_data import PackedDataset, collate, collate_with
from packviz.tradeoffs import (
    Fragmentation,
    Tradeoffs,
    context_fragmentation,
    evaluate,
    sweep_tradeoffs,
    tradeoffs,
)
from packviz.validate import check_arrays


def __getattr__(name: str):
    """`PackedIterableDataset` is a torch ``IterableDataset``: imported on first use, so
    that ``import packviz`` does not import torch."""
    if name == "PackedIterableDataset":
        from packviz.streaming import PackedIterableDataset

        return PackedIterableDataset
    raise AttributeError(f"module 'packviz' has no attribute {name!r}")


__all__ = [
    "ATTN_IMPLEMENTATIONS",
    "AUDIT_PATHS",
    "AttnImplementation",
    "AuditPath",
    "AuditResult",
    "audit",
    "BUILTIN_CORPORA",
    "Distribution",
    "Field",
    "Format",
    "MaskGrids",
    "Overflow",
    "Sort",
    "Split",
    "Strategy",
    "mask_grids",
    "overview_grid",
    "piece_marks",
    "DISTRIBUTIONS",
    "FIELDS",
    "FORMATS",
    "IGNORE_INDEX",
    "LengthSummary",
    "MAX_LEN_LIMIT",
    "OVERFLOWS",
    "SORTS",
    "SPLITS",
    "STRATEGIES",
    "CorpusError",
    "PackPlan",
    "PackStats",
    "PackedArrays",
    "PackedDataset",
    "TokenIds",
    "TokenizerError",
    "additive_mask",
    "block_layout",
    "causal_mask",
    "collate",
    "collate_with",
    "compare_strategies",
    "cu_seqlens_from_doc_ids",
    "decode_tokens",
    "default_device",
    "document_mask",
    "encode",
    "eos_token_id",
    "estimate_bytes",
    "flex_block_mask",
    "from_bytes",
    "load",
    "load_builtin",
    "length_summary",
    "load_tokenizer",
    "mask_memory",
    "materialize",
    "pack",
    "pack_command",
    "pack_corpus",
    "pad_token_id",
    "piece_starts",
    "read_documents",
    "read_records",
    "save",
    "split_text",
    "sweep",
    "synthetic_lengths",
    "to_bytes",
    "tokenizer_fingerprint",
    "train_tokenizer",
    # fine-tuning records (issue 11)
    "BUILTIN_RECORDS",
    "CHATML",
    "CHATML_SPECIAL_TOKENS",
    "ChatTemplate",
    "ChatTemplateError",
    "RECORD_KINDS",
    "RecordKind",
    "RenderedRecord",
    "SFTStats",
    "TRAIN_ON",
    "TrainOn",
    "encode_records",
    "load_builtin_records",
    "load_chat_template",
    "record_kind",
    "render_chat",
    "render_records",
    "sft_stats",
    "trained_row_fill",
    "trained_slots",
    # training from files (issue 10); PackedIterableDataset is left out (pv.
    # PackedIterableDataset works): it is a torch class, and `import *` must not load torch
    "PackedFile",
    "check_arrays",
    "to_hf_dataset",
    "COLLATE_MODES",
    "HF_LAYOUTS",
    "CollateMode",
    "HFLayout",
    "MASK_FILLS",
    "MaskFill",
    "UNEVEN_SPLITS",
    "UnevenSplit",
    # deciding: costs before work, trade-offs, ranking, loss weights, lookups
    "CRITERIA",
    "CRITERION_LABELS",
    "Criterion",
    "DocumentStory",
    "Fragmentation",
    "LOSS_NORMALIZATIONS",
    "LossNormalization",
    "PRESETS",
    "PRESET_WEIGHTS",
    "PlanCost",
    "Preset",
    "ROW_PICKS",
    "Ranking",
    "Reason",
    "RowPick",
    "Tradeoffs",
    "arrays_bytes",
    "context_fragmentation",
    "count_pieces",
    "covering_max_lens",
    "default_max_lens",
    "document_story",
    "estimate_file_bytes",
    "evaluate",
    "find_documents",
    "length_groups",
    "length_order",
    "longest_share",
    "loss_weights",
    "pick_rows",
    "plan_cost",
    "preset_weights",
    "rank",
    "recommend",
    "share_by_length",
    "smallest_max_len",
    "sweep_tradeoffs",
    "tradeoffs",
    "why",
]
