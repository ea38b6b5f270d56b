"""How an encoder wants its faces prepared: part of the encoder, not of the caller.

An encoder trained on tight crops and one trained on faces aligned on five landmarks see
different pixels for the same photo; feeding one the other's input silently ruins every
answer. So the model file says how its faces are made (torch files in their config, ONNX
files in their sidecar), enroll, query and bench read it from there, and it enters the
gallery's fingerprint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from facesearch.errors import ModelError

ALIGNMENTS = ("crop", "arcface-5pt")
CHANNELS = ("rgb", "bgr")


@dataclass(frozen=True)
class Preprocessing:
    """Pixels in: a face of ``input_size`` square, RGB uint8, made by ``alignment``;
    the runtime then orders ``channels`` and computes ``(pixel - mean) / std`` (pixel units).

    ``detect``: find faces in the photo first. ``arcface-5pt`` warps each face by its five
    landmarks; without detection (``--no-detect``) its input is taken as already aligned. A
    ``crop`` encoder given a detector crops the square around each box.
    """

    input_size: int = 112
    alignment: str = "crop"
    detect: bool = False
    channels: str = "rgb"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ModelError(f"unknown alignment {self.alignment!r} (known: {', '.join(ALIGNMENTS)})")
        if self.channels not in CHANNELS:
            raise ModelError(f"unknown channel order {self.channels!r} (known: {', '.join(CHANNELS)})")
        if not isinstance(self.input_size, int) or self.input_size < 16:
            raise ModelError(f"input size {self.input_size!r} is not a side of at least 16 px")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ModelError(f"{name} needs 3 values (one per channel), got {list(value)}")
        if any(s <= 0 for s in self.std):
            raise ModelError(f"std must be positive, got {list(self.std)}")

    def with_detection(self, detect: bool) -> "Preprocessing":
        """The same encoder input with detection switched (a user who knows their photos)."""
        return Preprocessing(**{**asdict(self), "detect": detect})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "preprocessing") -> "Preprocessing":
        """Read the sidecar's (or a stored config's) fields; missing ones take the defaults."""
        known = {"input_size", "alignment", "detect", "channels", "mean", "std"}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("mean", "std"):
            if name in values:
                try:
                    values[name] = tuple(float(x) for x in values[name])
                except (TypeError, ValueError):
                    raise ModelError(f"{where}: {name} must be a list of 3 numbers") from None
        if "input_size" in values and not isinstance(values["input_size"], int):
            raise ModelError(f"{where}: input_size must be an integer")
        if "alignment" in values and "detect" not in values:
            values["detect"] = values["alignment"] == "arcface-5pt"
        try:
            return cls(**values)
        except ModelError as exc:
            raise ModelError(f"{where}: {exc}") from None
