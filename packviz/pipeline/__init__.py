"""Pack a whole corpus: ``packviz pack`` and `pack_corpus`, one module per job.

``inputs`` (which files, cut into parts) → ``readers`` (bounded batches) → ``tasks``
(tokenize a part into the on-disk ``store``; write a shard) run by an engine
(``engines``: local processes; ``ray_engine``: Ray Data) → ``run`` (the two passes and
the one global plan, ``budget`` for memory, ``manifest`` for identity and resumption,
``files`` for atomic writes, ``progress`` and ``report`` for people) → ``cli`` (the
command) and ``command`` (the command line for given settings, for the dashboard).

Nothing here is imported by ``import packviz`` beyond these two names, and Ray only by
``--engine ray``.
"""

from __future__ import annotations

from packviz.pipeline.command import pack_command
from packviz.pipeline.run import pack_corpus

__all__ = ["pack_command", "pack_corpus"]
