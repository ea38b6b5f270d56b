"""What a run reports: one record per epoch (a row of log.csv) and the final report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EpochRecord:
    """One row of log.csv."""

    epoch: int
    phase: str
    lr: float
    train_loss: float
    train_accuracy: float
    images_per_s: float
    seconds: float
    heldout_accuracy: float | None = None
    roc_auc: float | None = None
    pairs_accuracy: float | None = None
    pairs_accuracy_std: float | None = None
    teacher_cosine: float | None = None  # mean cosine to the teacher's targets, training views
    teacher_s: float | None = None  # of ``seconds``, spent in the teacher (online teacher views)
    best: bool = False


@dataclass
class TrainReport:
    model: str
    epochs: int
    best_epoch: int
    selected_by: str
    classes: int
    train_images: int
    heldout_images: int
    history: list[EpochRecord]
    validation: dict[str, Any]
    taught: dict[str, Any] | None = None  # with a teacher or aligned faces: see TrainingData
    config: dict[str, Any] | None = None  # the settings the run used (paths relative to the working folder)

    def to_dict(self) -> dict[str, Any]:
        report = {
            "model": self.model,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "selected_by": self.selected_by,
            "classes": self.classes,
            "train_images": self.train_images,
            "heldout_images": self.heldout_images,
            "validation": self.validation,
            "final": asdict(self.history[-1]) if self.history else None,
        }
        if self.taught is not None:
            report["taught"] = self.taught
        if self.config is not None:
            report["config"] = self.config
        return report
