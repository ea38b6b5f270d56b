"""Where computation runs: CPU always works; CUDA (with AMP) is used when present.

torch is imported only by the functions that need it, so the inference path (onnxruntime)
can ask where it runs without paying for torch.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Iterator

from facesearch.errors import InputError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | None = None) -> "torch.device":
    """``None``/"auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    return device


def runtime_device(name: str | None = None) -> str:
    """"cuda" or "cpu" for reports, without importing torch: torch answers when it is
    loaded already (a torch encoder), else onnxruntime (whether it can run on CUDA)."""
    if name not in (None, "", "auto"):
        return str(name)
    if "torch" in sys.modules:
        return str(resolve_device(name))
    try:
        import onnxruntime
    except ImportError:
        return "cpu"
    return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"


@contextlib.contextmanager
def autocast(device: "torch.device") -> Iterator[None]:
    """Mixed precision on CUDA (fp16 matmuls, fp32 accumulation); a no-op on CPU."""
    if device.type == "cuda":
        import torch

        with torch.autocast("cuda", dtype=torch.float16):
            yield
    else:
        yield
