"""Finding your way in a plan: which rows to look at, and where one document went.

Why. A plan of a million documents cannot be read row by row from the top: with
``sort="desc"`` the first rows each hold one long document in every strategy, so
``best_fit``, ``first_fit`` and ``padded`` look identical there. `pick_rows` chooses rows
that show what a plan is like (spread over the whole plan, the most packed, the least
full, the last ones where leftovers land). And a user who cares about one document —
found by index or by a piece of its text (`find_documents`) — wants its story
(`document_story`): which rows and slots its pieces occupy, what was cut, what context
its later pieces lost.

Example (max length 4: document 0 of 6 tokens is split)::

    >>> from packviz import pack
    >>> plan = pack([6, 3], 4)
    >>> s = document_story(plan, 0)
    >>> s.fate, s.rows.tolist(), s.offsets.tolist(), s.starts.tolist(), s.lengths.tolist()
    ('split', [0, 2], [0, 0], [0, 4], [4, 2])
    >>> s.fragmented_tokens, s.lost_tokens
    (2, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from packviz._args import as_list, check_instance
from packviz.choices import ROW_PICKS, RowPick, check_choice
from packviz.layout import check_token_ids
from packviz.limits import check_int
from packviz.plan import PackPlan


def pick_rows(plan: PackPlan, k: int, *, how: RowPick = "spread", first: int = 0) -> np.ndarray:
    """Up to ``k`` row numbers to show, in ascending order.

    - ``spread``: evenly spaced over the whole plan (first and last row included);
    - ``most_pieces``: the rows holding the most pieces (ties: lowest row);
    - ``least_full``: the rows with the most padding (ties: lowest row);
    - ``first``: rows ``first, first + 1, …``;
    - ``last``: the last ``k`` rows.

    >>> from packviz import pack
    >>> plan = pack([8, 8, 8, 3, 2, 1, 5], 8)
    >>> pick_rows(plan, 2).tolist(), pick_rows(plan, 1, how="most_pieces").tolist()
    ([0, 4], [3])
    >>> pick_rows(plan, 1, how="least_full").tolist(), pick_rows(plan, 2, how="first", first=3).tolist()
    ([4], [3, 4])
    """
    check_instance(plan, PackPlan, "pick_rows", "a PackPlan (from pv.pack)")
    how = check_choice("row pick", how, ROW_PICKS)
    k = check_int("k", k, least=1)
    n = plan.n_rows
    k = min(int(k), n)
    if k == 0:
        return np.zeros(0, np.int64)
    if how == "spread":
        return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
    if how == "first":
        lo = min(max(0, check_int("first", first)), n - k)
        return np.arange(lo, lo + k, dtype=np.int64)
    if how == "last":
        return np.arange(n - k, n, dtype=np.int64)
    key = -plan.pieces_per_row if how == "most_pieces" else plan.row_fill
    return np.sort(np.argsort(key, kind="stable")[:k]).astype(np.int64)


def find_documents(
    documents: Sequence[str], query: str, *, limit: int = 20, case: bool = False
) -> np.ndarray:
    """Indices of the first ``limit`` documents containing ``query`` (case-insensitive
    unless ``case``).

    >>> find_documents(["Packing rows", "masks", "PACKED"], "pack").tolist()
    [0, 2]
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    documents = as_list("documents", documents, "strings")
    limit = check_int("limit", limit, least=0)
    if not query or limit == 0:
        return np.zeros(0, np.int64)
    q = query if case else query.casefold()
    hits = []
    for i, text in enumerate(documents):
        if not isinstance(text, str):
            raise TypeError(f"document {i} is a {type(text).__name__}, not a string")
        if (text if case else text.casefold()).find(q) >= 0:
            hits.append(i)
            if len(hits) >= limit:
                break
    return np.array(hits, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class DocumentStory:
    """Where one document went in a plan.

    ``rows``, ``offsets``, ``starts``, ``lengths``: one entry per piece, in document
    order (``starts``: the piece's first token inside the document; ``offsets``: its
    first slot in its row). ``fate``: ``"empty"``, ``"dropped"``, ``"whole"`` (one
    piece), ``"split"`` (several) or ``"truncated"`` (its tail lost).
    ``fragmented_tokens``: tokens of pieces after the first, which cannot see the
    document's earlier tokens. ``trained_tokens``: its tokens flagged trained (all of
    them without trained flags); ``targets``: per piece, the labels that are not -100
    (its trained tokens after its first slot) — what the loss averages over.
    """

    doc: int
    length: int
    fate: str
    rows: np.ndarray
    offsets: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    placed_tokens: int
    lost_tokens: int
    fragmented_tokens: int
    trained_tokens: int
    targets: np.ndarray

    @property
    def n_pieces(self) -> int:
        return int(self.rows.size)


def document_story(plan: PackPlan, doc: int, *, token_ids: object = None) -> DocumentStory:
    """The `DocumentStory` of document ``doc`` (its index in the input). ``token_ids``:
    the ids the plan was made for; with trained flags (fine-tuning) ``trained_tokens``
    and ``targets`` count only the trained tokens.

    >>> from packviz import TokenIds, pack
    >>> document_story(pack([10, 3], 4, overflow="truncate"), 0).fate
    'truncated'
    >>> ids = TokenIds.from_sequences([[7] * 6], trained=[[False] * 3 + [True] * 3])
    >>> s = document_story(pack(ids.lengths, 4), 0, token_ids=ids)  # pieces 0-3 | 4-5
    >>> s.trained_tokens, s.targets.tolist()
    (3, [1, 1])
    """
    check_instance(plan, PackPlan, "document_story", "a PackPlan (from pv.pack)")
    doc = check_int("document index", doc)
    if not 0 <= doc < plan.n_docs:
        raise ValueError(
            f"document {doc} is not in this plan: it has documents 0 to {plan.n_docs - 1}"
        )
    where = np.flatnonzero(plan.doc == doc)
    where = where[np.argsort(plan.start[where], kind="stable")]
    length = int(plan.doc_lengths[doc])
    lengths = plan.length[where]
    placed = int(lengths.sum())
    if length == 0:
        fate = "empty"
    elif where.size == 0:
        fate = "dropped"
    elif placed < length:
        fate = "truncated"
    else:
        fate = "split" if where.size > 1 else "whole"
    starts = plan.start[where]
    trained_tokens, targets = length, np.maximum(lengths.astype(np.int64) - 1, 0)
    ids = None if token_ids is None else check_token_ids(plan, token_ids)
    if ids is not None and ids.trained is not None:
        cs = np.zeros(length + 1, dtype=np.int64)
        np.cumsum(ids.trained[ids.offsets[doc] : ids.offsets[doc + 1]], out=cs[1:])
        ends = starts.astype(np.int64) + lengths
        trained_tokens = int(cs[-1])
        targets = cs[ends] - cs[np.minimum(starts.astype(np.int64) + 1, ends)]
    return DocumentStory(
        doc=int(doc),
        length=length,
        fate=fate,
        rows=plan.row[where],
        offsets=plan.offset[where],
        starts=starts,
        lengths=lengths,
        placed_tokens=placed,
        lost_tokens=length - placed,
        fragmented_tokens=int(lengths[starts > 0].sum()),
        trained_tokens=trained_tokens,
        targets=targets,
    )
