"""Training the face encoder: the run's data, the two-phase loop, checkpoints and validation.
``train`` (``launch``) is the entry point: one process or several."""

from facesearch.training.config import TrainConfig
from facesearch.training.launch import train
from facesearch.training.loop import Trainer
from facesearch.training.records import EpochRecord, TrainReport

__all__ = ["EpochRecord", "TrainConfig", "TrainReport", "Trainer", "train"]
