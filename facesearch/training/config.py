"""A training run's options, and which of them a resumed run may change."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from facesearch.errors import InputError
from facesearch.models.backbones import list_backbones
from facesearch.models.encoder import EncoderConfig
from facesearch.models.heads import HEADS
from facesearch.models.margins import LOSSES
from facesearch.embedding.preprocessing import ALIGNMENTS
from facesearch.training.augment import AugmentConfig
from facesearch.training.optim import OPTIMIZERS, SCHEDULERS

MIN_INPUT_SIZE = 32
# Options that only say how or where to run: a resumed run may change them.
RUNTIME_FIELDS = frozenset({"out", "run_dir", "device", "workers", "cache", "face_cache", "nproc"})
# Options of phase 2: free to change on resume until phase 2 has started (so one phase-1
# checkpoint can be fine-tuned with each loss, and the losses compared from the same start).
PHASE2_FIELDS = frozenset({"arcface_epochs", "arcface_lr", "loss", "scale", "margin", "alpha"})


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    run_dir: str | None = None  # checkpoint and log.csv; default: <out>.run/ beside out
    backbone: str = "mobilenet_v3_small"
    embedding_dim: int = 512
    input_size: int = 112  # side of the square face crop the encoder sees
    head: str = "gdc"
    dropout: float = 0.0
    drop_path: float = 0.0
    epochs: int = 10
    arcface_epochs: int = 5
    batch_size: int = 128
    lr: float = 0.1
    arcface_lr: float | None = None  # default: lr / 10
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    loss: str = "arcface"
    scale: float = 64.0
    margin: float = 0.5
    alpha: float = 0.1
    clip_grad: float = 5.0
    balanced: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    holdout: float = 0.1  # fraction of each person's photos held out (ignored with val_dir)
    val_dir: str | None = None
    val_pairs: str | None = None
    val_images: str | None = None
    steps_per_epoch: int | None = None  # cap, for quick runs
    seed: int = 0
    device: str | None = None
    workers: int | None = None
    nproc: int = 1  # training processes (facesearch.training.team); the batch is split among them
    cache: bool | None = None  # decoded crops in memory; default: when they fit in 4 GiB
    init: str | None = None  # a model file whose weights (and classifier) the run starts from
    # How the encoder sees faces: "crop" (tight crops, as they come) or "arcface-5pt" (each
    # training photo detected and aligned once, by `detector`; the model then detects too).
    alignment: str = "crop"
    detector: str = "mtcnn"
    # Learning from a teacher (facesearch.training.distill).
    teacher: str | None = None  # any encoder the project runs: FILE.onnx (+ sidecar) or a model file
    unlabelled: tuple[str, ...] = ()  # folders of faces without names: the distillation term only
    distill_weight: float = 1.0
    relational_weight: float = 0.0
    identity_weight: float = 1.0  # weight of the classification / margin loss (0: teacher only)
    face_cache: str | None = None  # prepared faces + teacher targets; default: in the user's cache

    def __post_init__(self) -> None:
        for option, value, known in (
            ("backbone", self.backbone, list_backbones()),
            ("head", self.head, HEADS),
            ("loss", self.loss, LOSSES),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("scheduler", self.scheduler, SCHEDULERS),
        ):
            if value not in known:
                raise InputError(f"unknown {option} {value!r} (known: {', '.join(known)})")
        if self.epochs < 0 or self.arcface_epochs < 0 or self.epochs + self.arcface_epochs == 0:
            raise InputError("nothing to train: --epochs and --arcface-epochs are both 0")
        if (self.val_pairs is None) != (self.val_images is None):
            raise InputError("--val-pairs and --val-images go together")
        if self.input_size < MIN_INPUT_SIZE:
            # Every backbone downsamples 16x: below 32 px its last feature map is under 2x2.
            raise InputError(f"--input-size {self.input_size} is too small (at least {MIN_INPUT_SIZE})")
        if not 0.0 <= self.holdout < 1.0:
            raise InputError(f"--holdout {self.holdout} must be in [0, 1)")
        if self.alignment not in ALIGNMENTS:
            raise InputError(f"unknown alignment {self.alignment!r} (known: {', '.join(ALIGNMENTS)})")
        if self.unlabelled and not self.teacher:
            raise InputError("--unlabelled faces are learnt from a teacher only: add --teacher")
        if min(self.distill_weight, self.relational_weight, self.identity_weight) < 0:
            raise InputError("loss weights must be at least 0")
        if self.identity_weight == 0 and not self.teacher:
            raise InputError("--identity-weight 0 leaves nothing to learn from without --teacher")
        if self.teacher and self.distill_weight == 0 and self.relational_weight == 0:
            raise InputError("--teacher with both --distill-weight and --relational-weight at 0 teaches nothing")

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.arcface_epochs

    @property
    def phase2_lr(self) -> float:
        return self.arcface_lr if self.arcface_lr is not None else self.lr / 10

    @property
    def prepared(self) -> bool:
        """Whether training faces go through the prepared-faces cache (alignment, teacher)."""
        return self.alignment != "crop" or self.teacher is not None

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path(f"{self.out}.run")

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(
            backbone=self.backbone,
            embedding_dim=self.embedding_dim,
            input_size=self.input_size,
            head=self.head,
            dropout=self.dropout,
            drop_path=self.drop_path,
            seed=self.seed,
            alignment=self.alignment,
            detect=self.alignment == "arcface-5pt",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["augment"] = AugmentConfig(**values.get("augment", {}))
        values["unlabelled"] = tuple(values.get("unlabelled", ()))
        return cls(**values)


PATH_FIELDS = ("data", "val_dir", "val_pairs", "val_images", "init", "teacher", "unlabelled")


def comparable(options: dict[str, Any]) -> dict[str, Any]:
    """Paths compared as absolute paths, so a run resumes from another working directory."""
    return {k: _resolved(v) if k in PATH_FIELDS and v else v for k, v in options.items()}


def portable(options: dict[str, Any]) -> dict[str, Any]:
    """Paths relative to the working directory (``../shared/datasets/fiw/train``), for a model
    file's meta: it travels, and no path of the training machine belongs in it."""
    return {k: _relative(v) if k in PATH_FIELDS + ("out", "run_dir", "face_cache") and v else v
            for k, v in options.items()}


def _resolved(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [str(Path(v).resolve()) for v in value]
    return str(Path(value).resolve())


def _relative(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_relative(v) for v in value]
    path = Path(value)
    if not path.is_absolute():
        return str(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path.name
    # Beside the project (../shared/...) reads well anywhere; further away, only the name
    # says something that is not about this machine's folders.
    return relative if Path(relative).parts[:2].count("..") < 2 else path.name
