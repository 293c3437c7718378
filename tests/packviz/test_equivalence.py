"""Packed equals unpacked: a tiny causal transformer gives the same outputs on a packed
batch (document mask + restarting position ids) as on each piece alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv


class TinyCausalLM(torch.nn.Module):
    """Two pre-norm attention blocks; positions from rotary or learned embeddings."""

    def __init__(self, vocab=64, dim=32, heads=4, max_pos=128, positions="rotary"):
        super().__init__()
        self.heads, self.positions = heads, positions
        self.embed = torch.nn.Embedding(vocab, dim)
        self.pos = torch.nn.Embedding(max_pos, dim)
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleDict(
                {
                    "norm": torch.nn.LayerNorm(dim),
                    "qkv": torch.nn.Linear(dim, 3 * dim),
                    "out": torch.nn.Linear(dim, dim),
                    "mlp": torch.nn.Sequential(
                        torch.nn.LayerNorm(dim),
                        torch.nn.Linear(dim, 64),
                        torch.nn.GELU(),
                        torch.nn.Linear(64, dim),
                    ),
                }
            )
            for _ in range(2)
        )
        self.head = torch.nn.Linear(dim, vocab)

    def rotate(self, x, position_ids):
        half = x.shape[-1] // 2
        freq = 1.0 / (10000 ** (torch.arange(half, dtype=torch.float32) / half))
        angle = position_ids[:, None, :, None].float() * freq  # [B, 1, L, half]
        cos, sin = angle.cos(), angle.sin()
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    def forward(self, input_ids, position_ids, mask):
        b, n = input_ids.shape
        h = self.embed(input_ids)
        if self.positions == "learned":
            h = h + self.pos(position_ids)
        additive = pv.additive_mask(mask)[:, None]  # [B, 1, L, L]
        for blk in self.blocks:
            q, k, v = (
                blk["qkv"](blk["norm"](h)).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            )
            if self.positions == "rotary":
                q, k = self.rotate(q, position_ids), self.rotate(k, position_ids)
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + additive
            h = h + blk["out"]((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1))
            h = h + blk["mlp"](h)
        return self.head(h)


@pytest.mark.parametrize("positions", ["rotary", "learned"])
@given(
    lengths=st.lists(st.integers(0, 90), min_size=1, max_size=12),
    max_len=st.sampled_from([16, 33, 64]),
    strategy=st.sampled_from(pv.STRATEGIES),
)
def test_packed_equals_unpacked(positions, lengths, max_len, strategy):
    torch.manual_seed(0)
    model = TinyCausalLM(positions=positions).eval()
    rng = np.random.default_rng(len(lengths))
    ids = [rng.integers(0, 64, n) for n in lengths]
    plan = pv.pack(lengths, max_len, strategy=strategy)
    a = pv.materialize(plan, ids, pad_id=0)
    if plan.n_rows == 0:
        return
    with torch.no_grad():
        packed = model(
            torch.from_numpy(a.input_ids.astype(np.int64)),
            torch.from_numpy(a.position_ids.astype(np.int64)),
            pv.document_mask(a.doc_ids, device="cpu"),
        )
        assert torch.isfinite(packed).all()  # padding rows included
        for r, d, s, n, o in zip(
            plan.row, plan.doc, plan.start, plan.length, plan.offset, strict=True
        ):
            alone_ids = torch.from_numpy(ids[d][s : s + n].astype(np.int64))[None]
            alone = model(alone_ids, torch.arange(n)[None], pv.causal_mask(n, device="cpu")[None])
            torch.testing.assert_close(packed[r, o : o + n], alone[0], atol=1e-5, rtol=1e-5)


def test_plain_causal_mask_leaks_across_documents():
    """The control: without the document mask the second document's outputs change."""
    torch.manual_seed(0)
    model = TinyCausalLM().eval()
    ids = [np.arange(1, 9), np.arange(20, 28)]
    a = pv.materialize(pv.pack([8, 8], 16, sort="none"), ids, pad_id=0)
    inp = torch.from_numpy(a.input_ids.astype(np.int64))
    pos = torch.from_numpy(a.position_ids.astype(np.int64))
    with torch.no_grad():
        doc = model(inp, pos, pv.document_mask(a.doc_ids, device="cpu"))
        leak = model(inp, pos, pv.causal_mask(16, device="cpu")[None])
    torch.testing.assert_close(doc[0, :8], leak[0, :8])
    assert (doc[0, 8:] - leak[0, 8:]).abs().max() > 1e-3
