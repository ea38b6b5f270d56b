"""The augmentations a training view goes through, each switchable (``--augment``).

They act on the uint8 crop the encoder will see (torchvision transforms v2), after the same
safe decoding and preprocessing as enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from facesearch.errors import InputError


@dataclass(frozen=True)
class AugmentConfig:
    """Each augmentation can be switched on or off (defaults: the cheap, safe ones)."""

    hflip: bool = True
    resized_crop: bool = True
    color_jitter: bool = True
    randaugment: bool = False
    erasing: bool = False
    perspective: bool = False
    rotation: bool = False
    grey: bool = False
    blur: bool = False
    lowres: bool = False

    @classmethod
    def parse(cls, spec: str | list[str]) -> "AugmentConfig":
        """``hflip,crop,jitter`` (or a list of those names; ``none`` or empty: none) -> config."""
        names = spec if isinstance(spec, list) else [] if spec.strip() in ("", "none") else spec.split(",")
        names = [name.strip() for name in names]
        unknown = [name for name in names if name not in NAMES]
        if unknown:
            raise InputError(f"unknown augmentation {', '.join(unknown)} (known: {', '.join(NAMES)})")
        chosen = {NAMES[name] for name in names}
        return cls(**{f.name: f.name in chosen for f in fields(cls)})

    def spec(self) -> str:
        """The comma-separated names of what is on (``parse``'s input), ``none`` for nothing."""
        return ",".join(name for name, field_name in NAMES.items() if getattr(self, field_name)) or "none"


NAMES = {
    "hflip": "hflip", "crop": "resized_crop", "jitter": "color_jitter", "randaugment": "randaugment",
    "erasing": "erasing", "perspective": "perspective", "rotation": "rotation", "grey": "grey", "blur": "blur",
    "lowres": "lowres",
}
"""The names ``--augment`` takes, and the AugmentConfig switch each sets."""


def train_transform(config: AugmentConfig, size: int = 112):  # noqa: ANN201 (a v2.Compose)
    """uint8 (3, S, S) crop -> augmented float tensor in the encoder's [-1, 1] range."""
    import torch
    from torchvision.transforms import v2

    steps: list = []
    if config.resized_crop:  # faces are aligned crops: mild scale and aspect changes only
        steps.append(v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True))
    if config.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if config.rotation:
        steps.append(v2.RandomRotation(10))
    if config.perspective:
        steps.append(v2.RandomPerspective(distortion_scale=0.2, p=0.3))
    if config.color_jitter:
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05))
    if config.randaugment:
        steps.append(v2.RandAugment(num_ops=2, magnitude=9))
    if config.grey:  # photos in black and white, and FER2013's grey faces among colour ones
        steps.append(v2.RandomGrayscale(p=0.2))
    if config.lowres:  # small, far faces: down-then-up sampling to 1/4..1/1.5 of the side
        steps.append(v2.RandomApply([_LowResolution(size)], p=0.2))
    if config.blur:
        steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.2, 1.5))], p=0.2))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    if config.erasing:
        steps.append(v2.RandomErasing(p=0.25, scale=(0.02, 0.15)))
    return v2.Compose(steps)


class _LowResolution:
    """Down-sample a uint8 crop to a random 1/4..2/3 of its side and back up: what a face far
    from the camera, or a 48 px FER2013 face, looks like at the encoder's size."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image):  # noqa: ANN001, ANN204 (a uint8 tensor in, one out)
        import torch
        from torchvision.transforms import v2

        side = int(self.size * float(torch.empty(()).uniform_(0.25, 0.67)))
        small = v2.functional.resize(image, [side, side], antialias=True)
        return v2.functional.resize(small, [self.size, self.size], antialias=True)
