"""Hostile files: a pickle that would run code when loaded, in every place the project opens
a torch file (model files, teachers, training checkpoints, the training-faces cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from facesearch.errors import FaceSearchError
from facesearch.models.encoder import read_model_file
from facesearch.embedding.preprocessing import Preprocessing
from facesearch.training.checkpoint import load_checkpoint
from facesearch.training.face_cache import FaceCache, preparation_key
from tests.conftest import cli


class _Payload:
    """Unpickling this calls os.system, which would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def hostile_file(path: Path, marker: Path) -> Path:
    torch.save({"format": "facesearch.encoder", "state_dict": _Payload(marker)}, path)
    return path


@pytest.mark.parametrize(
    "opener",
    [
        read_model_file,
        load_checkpoint,
        lambda p: FaceCache.open(p, preparation_key(Preprocessing(), "mtcnn")),
    ],
    ids=["model file", "checkpoint", "training-faces cache"],
)
def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path: Path, opener) -> None:  # noqa: ANN001
    marker = tmp_path / "pwned"
    evil = hostile_file(tmp_path / "evil.pt", marker)
    with pytest.raises(FaceSearchError, match="not a readable"):
        opener(evil)
    assert not marker.exists()


def test_the_cli_refuses_a_hostile_model_and_teacher(tmp_path: Path, faces_dir: Path, home: Path) -> None:
    marker = tmp_path / "pwned"
    evil = hostile_file(tmp_path / "evil.pt", marker)
    enroll = cli("enroll", faces_dir, "--model", evil)
    assert enroll.exit_code == 1 and "holds a Python object no model file has (GLOBAL posix.system)" in enroll.stderr
    train = cli("train", faces_dir, "--out", tmp_path / "m.pt", "--teacher", evil, "--epochs", 1,
                "--arcface-epochs", 0, "--face-cache", tmp_path / "cache.pt")
    assert train.exit_code == 1 and "--teacher" in train.stderr
    assert not marker.exists()
