"""Audit a packed file against a model: does any document see another?

``packviz audit --model llama --packed rows.npz`` runs a tiny random Llama (any
``model_type`` transformers ships, a ``config.json`` or a checkpoint directory works too)
on rows of the file through each input path and on every piece alone, and prints per
path the largest |Δ logit|, the loss difference, the verdict and the fix. ``--require``
makes it a CI gate: exit 1 unless the named paths are exact. ``--json`` prints the
results as JSON lines instead of a table.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

HELP = "audit a packed file: which input paths keep documents apart in a model"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from packviz.choices import ATTN_IMPLEMENTATIONS, AUDIT_PATHS

    p.add_argument(
        "--model",
        required=True,
        metavar="CONFIG_OR_DIR",
        help="a model_type for a tiny random model (llama, qwen2, mistral, gpt2, mamba2, "
        "bamba, …), a config.json, or a checkpoint directory",
    )
    p.add_argument("--packed", required=True, metavar="PATH", help=".npz, .pt or .parquet")
    p.add_argument(
        "--rows",
        type=lambda s: [int(x) for x in _csv(s)],
        default=None,
        metavar="I,J,…",
        help="rows of the file to run (default: the two with the most pieces)",
    )
    p.add_argument(
        "--paths",
        type=_csv,
        default=None,
        metavar="P,Q,…",
        help=f"input paths, of {', '.join(AUDIT_PATHS)} (default: all but flex on a CPU; "
        "seq_idx for models with state layers)",
    )
    p.add_argument("--attn", choices=ATTN_IMPLEMENTATIONS, default=None, help="attn_implementation")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and ids")
    p.add_argument(
        "--budget", type=float, default=None, metavar="SECONDS", help="time budget (default none)"
    )
    p.add_argument(
        "--require",
        type=_csv,
        default=[],
        metavar="P,Q,…",
        help="exit 1 unless these paths are exact",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per path")


def run(args: argparse.Namespace) -> int:
    from packviz.auditing.core import audit
    from packviz.choices import AUDIT_PATHS, check_choice

    for path in args.require:
        check_choice("audit path", path, AUDIT_PATHS)
    arrays = audited_rows(args.packed, args.rows)
    try:
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ValueError("the audit needs transformers: pip install 'packviz[hf]'") from exc
    results = audit(
        args.model,
        arrays,
        paths=args.paths,
        attn_implementation=args.attn,
        seed=args.seed,
        device=args.device,
        time_budget=args.budget,
    )
    if args.json:
        for r in results:
            d = r.as_dict()
            print(json.dumps({k: None if v != v else v for k, v in d.items()}))  # NaN -> null
    else:
        print(format_table(results))
    verdicts = {r.path: r.exact for r in results}
    missing = [p for p in args.require if verdicts.get(p) is not True]
    return 1 if missing else 0


#: Rows read at a time while looking for the busiest rows of a file.
_SCAN_ROWS = 4096


def audited_rows(path, rows):
    """Only the rows to audit, read lazily from the file (`packviz.open`): ``rows`` as
    given, else the file's busiest rows (most pieces; the file is scanned window by
    window, never loaded whole)."""
    from packviz.auditing.inputs import DEFAULT_ROWS
    from packviz.pieces import piece_lengths
    from packviz.reader import open as open_packed

    f = open_packed(path)
    if rows is None:
        if "doc_ids" not in f.fields:
            raise ValueError(f"{f.name} has no doc_ids; save the doc_ids field to audit it")
        step = max(f.read_unit, _SCAN_ROWS)
        counts = np.concatenate(
            [np.zeros(0, np.int64)]
            + [piece_lengths(f.rows(lo, lo + step).doc_ids)[1] for lo in range(0, len(f), step)]
        )
        rows = np.sort(np.argsort(-counts, kind="stable")[:DEFAULT_ROWS])
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size == 0 or rows.min() < 0 or rows.max() >= len(f):
        raise ValueError(f"rows must be in [0, {len(f)}) for {f.name}, got {rows.tolist()}")
    return f.take(rows)


def format_table(results) -> str:
    """The results as a text table, then one line per fix or note.

    >>> from packviz.auditing.core import AuditResult
    >>> print(format_table([AuditResult("causal", 0.5, 0.01, False, "use a mask")]))
    path            verdict   max |Δ logit|  |Δ loss|
    causal          leaks           5.0e-01   1.0e-02
    <BLANKLINE>
    causal: fix: use a mask
    """

    def num(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:.1e}"

    lines = [f"{'path':15} {'verdict':8} {'max |Δ logit|':>14} {'|Δ loss|':>9}"]
    for r in results:
        lines.append(f"{r.path:15} {r.verdict:8} {num(r.max_logit_diff):>14} {num(r.loss_diff):>9}")
    tail = []
    for r in results:
        tail += [f"{r.path}: {r.note}"] if r.note else []
        tail += [f"{r.path}: fix: {r.fix}"] if r.fix else []
    return "\n".join(lines + ([""] + tail if tail else []))
