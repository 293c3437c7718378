"""Where the Masks view builds masks, and how long a build takes.

CUDA when it is available (unless the user forces the CPU), else the CPU. GPU kernels
run asynchronously, so a build is timed up to ``torch.cuda.synchronize()``: the clock
then measures the work, not its launch. torch is imported on first use (over a second).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def mask_device(force_cpu: bool) -> torch.device:
    """The device masks are built on: CUDA when available and not forced off, else CPU."""
    import torch

    return torch.device("cuda" if cuda_available() and not force_cpu else "cpu")


def timed(build: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """``(build(), seconds)``, the clock read after the device has finished."""
    import torch

    t0 = time.perf_counter()
    out = build()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0
