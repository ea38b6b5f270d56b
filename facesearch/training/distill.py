"""Learning from a teacher: a strong encoder's embeddings of the training faces as targets.

A small student trained on a few thousand people cannot learn on its own what a recogniser
trained on millions of faces knows; made to reproduce that recogniser's embeddings of many
faces (named or not), it inherits much of it. The teacher is any encoder the project can run
(an ONNX file with its sidecar, or a model file of ours); its embeddings are computed once and
cached with the aligned crops (``facesearch.training.face_cache``).

The loss has two terms, each with its weight:

- ``distill``: the cosine distance between the student's (projected) unit embedding and the
  teacher's, per face;
- ``relational``: the squared difference between the batch's similarity matrices (student
  against teacher), off the diagonal: it asks for the teacher's geometry among faces rather
  than its coordinates, which a student of another dimension can match too.

When the dimensions differ, a linear projection (trained with the student, kept only in the
run's checkpoint) maps the student's embedding into the teacher's space.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facesearch.embedding.encoders import FaceEncoder, load_model
from facesearch.errors import InputError, ModelError
from facesearch.embedding.preprocessing import Preprocessing


def load_teacher(path: str | Path, student: Preprocessing) -> tuple[FaceEncoder, str]:
    """The teacher encoder and its fingerprint; refuses one that sees faces prepared otherwise
    than the student (the cached crops are the student's, and both must see the same pixels)."""
    try:
        teacher, fingerprint = load_model(path, "cpu")
    except ModelError as exc:
        raise InputError(f"--teacher: {exc}") from None
    theirs = teacher.preprocessing
    if (theirs.input_size, theirs.alignment) != (student.input_size, student.alignment):
        raise InputError(
            f"--teacher {path} takes {theirs.alignment} faces of {theirs.input_size} px; this student "
            f"takes {student.alignment} faces of {student.input_size} px: train it with "
            f"--alignment {theirs.alignment} --input-size {theirs.input_size}"
        )
    return teacher, fingerprint


def embedding_dim_for(teacher: str | Path | None, default: int = 512) -> int:
    """A student's default embedding size: the teacher's, so that the student's own
    embedding is what matches the teacher (no projection between them)."""
    if teacher is None or not Path(teacher).is_file():
        return default  # a missing teacher is reported by the run, with the other checks
    try:
        return int(load_model(teacher, "cpu")[0].dim)
    except ModelError as exc:
        raise InputError(f"--teacher: {exc}") from None


class Distillation(nn.Module):
    """Student embeddings + teacher targets -> the weighted distillation loss."""

    def __init__(self, student_dim: int, teacher_dim: int, weight: float = 1.0, relational: float = 0.0) -> None:
        super().__init__()
        self.projection: nn.Module = (
            nn.Identity() if student_dim == teacher_dim else nn.Linear(student_dim, teacher_dim, bias=False)
        )
        self.weight = weight
        self.relational = relational

    def student(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The student's unit embeddings in the teacher's space."""
        return F.normalize(self.projection(embeddings.float()), dim=1)

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, mean cosine to the teacher) for raw student embeddings and unit targets."""
        student = self.student(embeddings)
        cosine = (student * targets).sum(dim=1)
        loss = self.weight * (1.0 - cosine).mean()
        if self.relational > 0 and len(student) > 1:
            loss = loss + self.relational * relational_loss(student, targets)
        return loss, cosine.detach().mean()


def relational_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two similarity matrices, diagonal left out."""
    off = ~torch.eye(len(student), dtype=torch.bool, device=student.device)
    return ((student @ student.T - teacher @ teacher.T)[off] ** 2).mean()
