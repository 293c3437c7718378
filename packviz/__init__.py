"""packviz: exact sequence packing for causal LM training data.

Plan from lengths (`pack`), build the arrays (`materialize`), the masks
(`document_mask`, `flex_block_mask`), the statistics (`PackPlan.stats`) and the files
(`save`, `load`). See the README for a tour.
"""

from __future__ import annotations

__version__ = "0.1.0"

from packviz.choices import (
    DISTRIBUTIONS,
    FIELDS,
    FORMATS,
    OVERFLOWS,
    SORTS,
    SPLITS,
    STRATEGIES,
    Distribution,
    Field,
    Format,
    Overflow,
    Sort,
    Split,
    Strategy,
)
from packviz.compare import compare_strategies, sweep
from packviz.corpus import (
    BUILTIN_CORPORA,
    CorpusError,
    load_builtin,
    read_documents,
    split_text,
    synthetic_lengths,
)
from packviz.export import estimate_bytes, from_bytes, load, save, to_bytes
from packviz.grids import MaskGrids, mask_grids, overview_grid, piece_marks
from packviz.layout import IGNORE_INDEX, PackedArrays, cu_seqlens_from_doc_ids, materialize
from packviz.limits import MAX_LEN_LIMIT
from packviz.masks import (
    additive_mask,
    block_layout,
    causal_mask,
    default_device,
    document_mask,
    flex_block_mask,
    mask_memory,
    piece_starts,
)
from packviz.packing import pack
from packviz.pipeline import pack_command, pack_corpus
from packviz.plan import PackPlan
from packviz.ragged import TokenIds
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

__all__ = [
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
    "save",
    "split_text",
    "sweep",
    "synthetic_lengths",
    "to_bytes",
    "tokenizer_fingerprint",
    "train_tokenizer",
]
