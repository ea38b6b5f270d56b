"""The search engine needs no torch: with an ONNX encoder, enroll, query, bench, info and
remove run in a process that cannot import it; torch model files and training say what to
install instead of a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facesearch.synthetic import write_pairs
from tests.conftest import CROP_ENCODER

SCRIPT = Path(__file__).with_name("without_torch.py")


@pytest.fixture(scope="module")
def crop_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facesearch.models.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "crop.onnx"
    export_onnx(CROP_ENCODER, out)
    return out


def without_torch(home: Path, model: Path, *args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACESEARCH_HOME": str(home), "FACESEARCH_MODEL": str(model)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], env=env, capture_output=True, text=True, timeout=300
    )


def answer(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def test_enroll_query_bench_info_remove_without_torch(crop_onnx: Path, faces_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert answer(without_torch(home, crop_onnx, "enroll", faces_dir, "--json"))["enrolled"] == 24
    query = answer(without_torch(home, crop_onnx, "query", faces_dir / "person_0005" / "0002.jpg", "--json"))
    assert query["identity"] == "person_0005"
    pairs_file = write_pairs(tmp_path / "lfw", identities=6, images_per_identity=2, folds=2, per_fold=3, seed=4)
    pairs = answer(without_torch(home, crop_onnx, "bench", "--pairs", pairs_file,
                                 "--images", tmp_path / "lfw" / "images", "--model", crop_onnx, "--json"))
    assert pairs["pairs"] == 12 and 0.0 <= pairs["roc_auc"] <= 1.0
    info = answer(without_torch(home, crop_onnx, "info", "--json"))
    assert info["model"]["runtime"] == "onnx" and info["faces"] == 24 and info["device"] == "cpu"
    assert answer(without_torch(home, crop_onnx, "remove", "person_0003", "--json"))["faces"] == 3


def test_torch_model_files_and_training_say_what_to_install(faces_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = without_torch(home, CROP_ENCODER, "enroll", faces_dir, "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    message = json.loads(done.stdout)["error"]
    assert "torch is not installed" in message and "facesearch[train]" in message and "export" in message
    done = without_torch(home, CROP_ENCODER, "train", faces_dir, "--out", tmp_path / "m.pt", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "pip install 'facesearch[train]'" in json.loads(done.stdout)["error"]
