"""Audit: prove that a training setup never lets one document see another.

Packed rows are only as good as the way they reach the model. The same rows are exact
through a float document mask and leak through a bool one under eager attention, leak
through ``position_ids`` at a stock model's default ``use_cache=True`` and are exact
with ``use_cache=False``; state-space layers leak on every packed path on a CPU. The
audit runs a model on packed rows through each input path and on every piece alone, and
says per path: the largest |Δ logit|, the loss difference, exact or leaks, and the fix.

- `audit` (``pv.audit``) and `AuditResult`: the verdicts (`packviz.auditing.core`);
- the batch of each path, one function per path (`packviz.auditing.inputs`);
- the models: tiny random ones by name or config, checkpoints, state layers
  (`packviz.auditing.models`), and the tiny config of each architecture
  (`packviz.auditing.tiny`);
- ``packviz audit`` on the command line (`packviz.auditing.cli`).

transformers is the optional extra ``packviz[hf]``; nothing here imports it (or torch)
until an audit runs.
"""

from __future__ import annotations

from packviz.auditing.core import (
    ATOL,
    FIXES,
    POSITION_FIX,
    STATE_FIX,
    AuditResult,
    audit,
    default_paths,
)
from packviz.auditing.inputs import AuditRows, select_rows
from packviz.auditing.models import causal_leak, load_model, position_gap, state_layers
from packviz.auditing.tiny import ARCHITECTURES, TINY_VOCAB, tiny_config

__all__ = [
    "ARCHITECTURES",
    "ATOL",
    "FIXES",
    "POSITION_FIX",
    "STATE_FIX",
    "TINY_VOCAB",
    "AuditResult",
    "AuditRows",
    "audit",
    "causal_leak",
    "default_paths",
    "load_model",
    "position_gap",
    "select_rows",
    "state_layers",
    "tiny_config",
]
