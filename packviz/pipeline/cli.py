"""Pack a whole corpus into row shards: tokenize in parallel, plan globally, write shards.

``packviz pack INPUT... --out DIR`` is `packviz.pack_corpus` on the command line:
inputs are files, folders and globs of .parquet, .jsonl(.gz), .txt/.md and .csv (or
pre-tokenized parquet with an ``input_ids`` column); with ``--train-on``, fine-tuning
records (prompt/completion or messages) whose untrained tokens get -100 labels. Run the
same command again after an
interruption to resume it; a changed input or setting is refused unless --overwrite.
Progress goes to stderr (bars on a terminal, log lines otherwise), the summary to stdout.
"""

from __future__ import annotations

import argparse
import sys

from packviz.choices import FORMATS, OVERFLOWS, SORTS, SPLITS, STRATEGIES, TRAIN_ON

HELP = "pack a whole corpus (files, folders, globs) into row shards, resumably"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from packviz.pipeline.engines import ENGINES

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g = p.add_argument_group("packing (as in the dashboard)")
    g.add_argument("--max-len", type=int, default=2048, help="token slots per row")
    g.add_argument("--strategy", choices=STRATEGIES, default="best_fit")
    g.add_argument("--sort", choices=SORTS, default="desc")
    g.add_argument("--overflow", choices=OVERFLOWS, default="split")
    g.add_argument("--seed", type=int, default=0, help="seed of --sort random")
    g = p.add_argument_group("documents and tokens")
    t = g.add_mutually_exclusive_group()
    t.add_argument("--tokenizer", metavar="PATH", help="a tokenizer.json")
    t.add_argument(
        "--train-vocab", type=int, metavar="N", help="train a byte-level BPE of N tokens"
    )
    g.add_argument("--text-field", default="text", help="JSONL/parquet/CSV text field")
    g.add_argument("--split", choices=SPLITS, default="paragraph", help=".txt/.md documents")
    g.add_argument("--no-eos", action="store_true", help="do not append end-of-text")
    g.add_argument("--pad-id", type=int, help="padding id (default: the tokenizer's)")
    g = p.add_argument_group("fine-tuning records (prompt/completion, messages)")
    g.add_argument(
        "--train-on",
        choices=TRAIN_ON,
        help="read records and train only on these tokens (labels -100 elsewhere)",
    )
    g.add_argument(
        "--chat-template",
        metavar="PATH",
        help="a .jinja file or tokenizer_config.json, or chatml for the built-in ChatML "
        "(default: the tokenizer_config.json next to the tokenizer, else ChatML)",
    )
    g = p.add_argument_group("output and resources")
    g.add_argument("--format", choices=FORMATS, default="parquet", help="shard file format")
    g.add_argument("--rows-per-shard", type=int, help="rows per shard (default: 4M slots)")
    g.add_argument("--workers", type=int, help="worker processes (default: all CPUs)")
    g.add_argument("--memory-budget", default="2GB", help="peak memory, e.g. 2GB, 512MB")
    g.add_argument("--engine", choices=ENGINES, default="local")
    g.add_argument("--ray-address", metavar="ADDR", help="Ray cluster (default: start one)")
    g.add_argument("--overwrite", action="store_true", help="replace another job's output")


#: Options handed to `pack_corpus` under the same name.
_PASSED = ("max_len", "strategy", "sort", "overflow", "seed", "tokenizer", "train_vocab",
           "text_field", "split", "train_on", "chat_template", "pad_id", "format", "rows_per_shard", "workers",
           "memory_budget", "engine", "ray_address", "overwrite")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from packviz.pipeline.run import pack_corpus

    options = {name: getattr(args, name) for name in _PASSED}
    report = pack_corpus(args.inputs, args.out, add_eos=not args.no_eos, **options)
    print(report.summary(), file=sys.stdout, flush=True)
    return 0
