"""Where computation runs: CPU always works; CUDA (with AMP) is used when present."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from facesearch.errors import InputError


def resolve_device(name: str | None = None) -> torch.device:
    """``None``/"auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    return device


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Mixed precision on CUDA (fp16 matmuls, fp32 accumulation); a no-op on CPU."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            yield
    else:
        yield
