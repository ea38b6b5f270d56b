"""A training run's options, and which of them a resumed run may change."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facesearch.embedding.preprocessing import ALIGNMENTS
from facesearch.errors import InputError
from facesearch.training.augment import AugmentConfig

if TYPE_CHECKING:
    from facesearch.models.encoder import EncoderConfig

MIN_INPUT_SIZE = 32
TEACHER_VIEWS = ("fixed", "online", "cached")
# Options that only say how or where to run: a resumed run may change them.
RUNTIME_FIELDS = frozenset({"out", "run_dir", "device", "workers", "cache", "face_cache", "nproc"})
# Options of phase 2: free to change on resume until phase 2 has started (so one phase-1
# checkpoint can be fine-tuned with each loss, and the losses compared from the same start).
PHASE2_FIELDS = frozenset({"arcface_epochs", "arcface_lr", "loss", "scale", "margin", "alpha"})


def option(default: Any = None, help: str = "", *, low: float | None = None, high: float | None = None,
           path: bool = False, factory: Any = None) -> Any:
    """A TrainConfig field with what the ``train`` command shows for it: its help, its bounds
    (``low``, ``high``) and whether it names a file or folder (``path``: resolved against the
    working directory, compared as absolute paths on resume). The command is built from these,
    so an option is defined once, here."""
    meta = {"help": help, "low": low, "high": high, "path": path}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run: ``facesearch train``'s flags, a recipe file's keys
    (``train --config``), and what the model file's meta and the checkpoint record."""

    data: str = option(help="Training folder: DATA/<identity>/<images>.", path=True)
    out: str = option(help="Model file to write (the best epoch).", path=True)
    run_dir: str | None = option(help="Checkpoints and log.csv [default: OUT.run/].", path=True)
    backbone: str = option("mobilenet_v3_small", "Backbone network (`facesearch info` lists them).")
    embedding_dim: int = option(512, "Embedding size [default: the teacher's, else 512].", low=2)
    input_size: int = option(112, "Side of the face crop the encoder sees (px, at least 32).")
    head: str = option("gdc", "Embedding head: gdc (global depthwise), fc, avg or linear.")
    dropout: float = option(0.0, "Dropout before the embedding.", low=0.0, high=0.9)
    drop_path: float = option(0.0, "Stochastic depth (litface, convnext_tiny).", low=0.0, high=0.9)
    epochs: int = option(10, "Phase 1 epochs (classification).", low=0)
    arcface_epochs: int = option(5, "Phase 2 epochs (margin fine-tune).", low=0)
    batch_size: int = option(128, "Faces a step (split among --nproc processes).", low=1)
    lr: float = option(0.1, "Phase 1 learning rate.", low=0.0)
    arcface_lr: float | None = option(None, "Phase 2 learning rate [default: lr/10].", low=0.0)
    optimizer: str = option("sgd", "sgd or adamw.")
    momentum: float = option(0.9, "SGD momentum (Nesterov).", low=0.0, high=1.0)
    weight_decay: float = option(5e-4, "Weight decay (weights only, not norms and biases).", low=0.0)
    scheduler: str = option("cosine", "cosine (with warm-up), multistep or plateau.")
    warmup_epochs: float = option(1.0, "Linear warm-up of phase 1, in epochs.", low=0.0)
    label_smoothing: float = option(0.1, "Label smoothing of phase 1.", low=0.0, high=1.0)
    loss: str = option("arcface", "Phase 2 loss: arcface, normsoftmax or intra.")
    scale: float = option(64.0, "Margin head scale s.", low=1.0)
    margin: float = option(0.5, "ArcFace margin m (radians).", low=0.0)
    alpha: float = option(0.1, "Weight of the intra-class angle (loss intra).", low=0.0)
    clip_grad: float = option(5.0, "Gradient norm clip.", low=0.0)
    balanced: bool = option(False, "Draw every person equally often.")
    augment: AugmentConfig = option(help="Comma-separated augmentations: hflip, crop, jitter, randaugment, erasing, "
                                    "perspective, rotation, grey, blur, lowres; 'none' for none [default: hflip,crop,jitter].",
                                    factory=AugmentConfig)
    holdout: float = option(0.1, "Share of each person's photos held out (ignored with --val-dir).", low=0.0, high=0.9)
    val_dir: str | None = option(help="Held-out photos of the training people instead.", path=True)
    val_pairs: str | None = option(help="Pairs file (LFW format) of unseen people.", path=True)
    val_images: str | None = option(help="The pairs file's image folder.", path=True)
    steps_per_epoch: int | None = option(None, "Cap on batches per epoch (quick runs).", low=1)
    seed: int = option(0, "Seed of every random choice (a resumed run reproduces the whole one).")
    device: str | None = option(None, "Where to train: cpu, cuda or cuda:N [default: cuda when present].")
    workers: int | None = option(None, "Data loading processes.", low=0)
    nproc: int = option(1, "Training processes on this machine (gloo on CPU, NCCL on GPUs); the batch is split "
                        "among them. Across machines: torchrun (docs).")
    cache: bool | None = option(None, "Decoded training crops in memory [default: when they fit in 4 GiB].")
    init: str | None = option(help="Start from this model file's weights (and classifier, for the same people).", path=True)
    alignment: str = option("crop", "crop (tight crops as they come) or arcface-5pt (detect and align every photo once).")
    detector: str = option("mtcnn", "Face detector for arcface-5pt: mtcnn (shipped) or yunet:FILE.onnx.")
    teacher: str | None = option(help="Learn from this encoder's embeddings (FILE.onnx + sidecar, or a model file).", path=True)
    unlabelled: tuple[str, ...] = option((), "Folder of face photos without names, for the teacher's terms (repeatable).",
                                         path=True)
    teacher_views: str = option("fixed", "What the teacher embeds: fixed (each face's plain crop and its mirror, "
                                "cached once), online (the very view the student sees, augmented, every step) or "
                                "cached (--views-per-face augmented views of each face, embedded once; the student "
                                "sees exactly those).")
    views_per_face: int = option(4, "With --teacher-views cached: augmented views of each face the teacher embeds.", low=1)
    mixup: float = option(0.0, "Share of each batch's views mixed with another face's (online teacher views: the "
                          "teacher embeds the mixed image; the mixed views count as unnamed).", low=0.0, high=1.0)
    distill_weight: float = option(1.0, "Weight of the cosine distance to the teacher.", low=0.0)
    relational_weight: float = option(0.0, "Weight of the batch similarity-matrix term.", low=0.0)
    identity_weight: float = option(1.0, "Weight of the classification / margin loss (0: teacher only).", low=0.0)
    face_cache: str | None = option(help="Prepared faces + teacher targets [default: in ~/.cache/facesearch/].", path=True)

    def __post_init__(self) -> None:
        from facesearch.models.backbones import list_backbones  # torch: only once a run is made
        from facesearch.models.heads import HEADS
        from facesearch.models.margins import LOSSES
        from facesearch.training.optim import OPTIMIZERS, SCHEDULERS

        if not self.data or not self.out:
            raise InputError("a training run needs its DATA folder and --out model file")
        for name, value, known in (
            ("backbone", self.backbone, list_backbones()),
            ("head", self.head, HEADS),
            ("loss", self.loss, LOSSES),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("scheduler", self.scheduler, SCHEDULERS),
        ):
            if value not in known:
                raise InputError(f"unknown {name} {value!r} (known: {', '.join(known)})")
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
        if self.teacher_views not in TEACHER_VIEWS:
            raise InputError(f"unknown teacher views {self.teacher_views!r} (known: {', '.join(TEACHER_VIEWS)})")
        if self.teacher_views != "fixed" and not self.teacher:
            raise InputError(f"--teacher-views {self.teacher_views} needs --teacher")
        if self.mixup and self.teacher_views != "online":
            raise InputError("--mixup needs --teacher-views online: only the teacher can say what a mixed face is")
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
        from facesearch.models.encoder import EncoderConfig

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


PATH_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.metadata["path"] and f.name not in ("out", "run_dir", "face_cache"))
"""Paths of the data a run learns from: compared as absolute paths on resume."""


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
