"""Comparing two FlexAttention BlockMasks field by field, as torch lists the fields
(``BlockMask.as_tuple``), so the test never trusts the library's own list of tables."""

from __future__ import annotations

import torch


def assert_same_block_mask(ref, got, *, device_type: str | None = None) -> None:
    """Every field of ``got`` equals ``ref``'s: tables bit for bit (int32, contiguous,
    on ``device_type`` when given), sizes, and the same fields left empty."""
    ref_fields, got_fields = ref.as_tuple()[:-1], got.as_tuple()[:-1]  # last: mask_mod
    assert len(ref_fields) == len(got_fields)
    for i, (want, have) in enumerate(zip(ref_fields, got_fields, strict=True)):
        if isinstance(want, torch.Tensor):
            assert isinstance(have, torch.Tensor), i
            assert have.is_contiguous() and have.dtype == want.dtype, i
            if device_type is not None:
                assert have.device.type == device_type, i
            assert torch.equal(want.to(have.device), have), i
        else:
            assert want == have, i
