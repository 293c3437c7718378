"""The ``packviz`` command line (the console script, and ``python -m packviz``).

Each subcommand lives in its own module, registered in `COMMANDS` by module path, and
provides ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` (the
exit code). Modules are imported only when the command line is parsed, and keep their
own heavy imports (torch, transformers, ray) inside ``run``.

Errors a user can fix (``ValueError`` and ``OSError`` with a message) are printed as one
line on stderr with exit code 2; nothing else is swallowed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: subcommand -> module providing HELP, add_arguments(parser) and run(args).
COMMANDS: dict[str, str] = {
    "audit": "packviz.auditing.cli",
    "pack": "packviz.pipeline.cli",
}


def build_parser() -> argparse.ArgumentParser:
    from packviz import __version__

    parser = argparse.ArgumentParser(
        prog="packviz", description="Exact sequence packing for causal LM training data."
    )
    parser.add_argument("--version", action="version", version=f"packviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, path in COMMANDS.items():
        module = importlib.import_module(path)
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__.split("\n\n")[0])
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, OSError) as exc:
        print(f"packviz {args.command}: error: {exc}", file=sys.stderr)
        return 2
