"""Training the face encoder: data, the two-phase loop, checkpoints and validation."""

from facesearch.training.config import TrainConfig
from facesearch.training.loop import Trainer, train
from facesearch.training.records import EpochRecord, TrainReport

__all__ = ["EpochRecord", "TrainConfig", "TrainReport", "Trainer", "train"]
