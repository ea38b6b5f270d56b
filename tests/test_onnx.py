"""ONNX encoders: the sidecar, the checks on open, batching, export from torch, and a gallery
bound to an ONNX file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facesearch.embedding.encoders import load_model
from facesearch.gallery.engine import Gallery
from facesearch.errors import ModelError
from facesearch.models import EncoderConfig, build_encoder, save_encoder
from facesearch.embedding.onnx_runtime import SIDECAR_FORMAT, OnnxEncoder
from tests.conftest import cli_json

SIDECAR = {"format": SIDECAR_FORMAT, "name": "toy", "input_size": 32, "channels": "rgb",
           "mean": [0, 0, 0], "std": [255, 255, 255], "alignment": "crop"}


def write(model: onnx.ModelProto, path: Path, sidecar: dict | None = SIDECAR) -> Path:
    onnx.save(model, path)
    if sidecar is not None:
        path.with_name(path.name + ".json").write_text(json.dumps(sidecar))
    return path


def channel_means(batch: object = "N", size: int = 32, reshape_to_one: bool = False) -> onnx.ModelProto:
    """A toy encoder: each channel's mean, times a fixed matrix (3 -> 4 dims)."""
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) + 1, "w")
    nodes = [helper.make_node("GlobalAveragePool", ["data"], ["pooled"])]
    inits = [weights]
    if reshape_to_one:  # an old exporter's habit: the batch of 1 written into a Reshape
        inits.append(numpy_helper.from_array(np.array([1, 3], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["pooled", "shape"], ["flat"]))
    else:
        nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"]))
    nodes.append(helper.make_node("MatMul", ["flat", "w"], ["embedding"]))
    graph = helper.make_graph(
        nodes, "toy",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def expected(images: np.ndarray) -> np.ndarray:
    means = images.astype(np.float64).mean(axis=(2, 3)) / 255.0
    out = means @ (np.arange(12).reshape(3, 4) + 1.0)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


IMAGES = np.random.default_rng(0).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)


@pytest.mark.parametrize("batch", ["N", 1])
def test_an_onnx_encoder_embeds_batches_as_its_sidecar_says(tmp_path: Path, batch: object) -> None:
    encoder = OnnxEncoder(write(channel_means(batch), tmp_path / "toy.onnx"))
    assert encoder.batched  # a batch fixed at 1 is rewritten as dynamic when the graph allows it
    assert encoder.dim == 4 and encoder.preprocessing.input_size == 32
    assert np.allclose(encoder.embed_faces(IMAGES), expected(IMAGES), atol=1e-5)


def test_a_network_that_cannot_batch_is_fed_one_face_at_a_time(tmp_path: Path) -> None:
    encoder = OnnxEncoder(write(channel_means(1, reshape_to_one=True), tmp_path / "toy.onnx"))
    assert not encoder.batched
    assert np.allclose(encoder.embed_faces(IMAGES), expected(IMAGES), atol=1e-5)


def test_channels_flip_and_fingerprint_follow_the_sidecar(tmp_path: Path) -> None:
    plain = OnnxEncoder(write(channel_means(), tmp_path / "a.onnx"))
    bgr = OnnxEncoder(write(channel_means(), tmp_path / "b.onnx", {**SIDECAR, "channels": "bgr"}))
    assert np.allclose(bgr.embed_faces(IMAGES), expected(IMAGES[:, ::-1]), atol=1e-5)
    assert plain.fingerprint != bgr.fingerprint  # the preparation is part of the encoder
    renamed = OnnxEncoder(write(channel_means(), tmp_path / "c.onnx", {**SIDECAR, "name": "other"}))
    assert renamed.fingerprint == plain.fingerprint  # the name is not
    flipped = OnnxEncoder(tmp_path / "a.onnx", flip=True)
    assert flipped.fingerprint != plain.fingerprint and flipped.describe()["flip"]


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        (None, "no sidecar toy.onnx.json"),
        ({**SIDECAR, "format": "other"}, "not a facesearch ONNX sidecar"),
        ({**SIDECAR, "input_size": 48}, "the sidecar says input 48x48, but the network takes 32x32"),
        ({**SIDECAR, "alignment": "7pt"}, "unknown alignment"),
        ({**SIDECAR, "std": [0, 1, 1]}, "std must be positive"),
    ],
)
def test_bad_sidecars_are_refused(tmp_path: Path, sidecar: dict | None, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        OnnxEncoder(write(channel_means(), tmp_path / "toy.onnx", sidecar))


def test_a_sidecar_that_is_not_json(tmp_path: Path) -> None:
    path = write(channel_means(), tmp_path / "toy.onnx", None)
    path.with_name("toy.onnx.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a readable JSON sidecar"):
        OnnxEncoder(path)


def test_files_that_are_not_encoders_are_refused(tmp_path: Path) -> None:
    flat_input = helper.make_graph(
        [helper.make_node("Identity", ["data"], ["out"])], "flat",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 10])],
    )
    with pytest.raises(ModelError, match="input has rank 2"):
        OnnxEncoder(write(helper.make_model(flat_input, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "a.onnx"))
    image_out = helper.make_graph(
        [helper.make_node("Identity", ["data"], ["out"])], "image",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, 32, 32])],
    )
    with pytest.raises(ModelError, match="is not an \\(N, D\\) vector"):
        OnnxEncoder(write(helper.make_model(image_out, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "b.onnx"))
    garbage = tmp_path / "c.onnx"
    garbage.write_bytes(b"not a protobuf at all" * 10)
    garbage.with_name("c.onnx.json").write_text(json.dumps(SIDECAR))
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        OnnxEncoder(garbage)
    with pytest.raises(ModelError, match="not found"):
        OnnxEncoder(tmp_path / "missing.onnx")


def test_weights_in_external_files_are_not_followed(tmp_path: Path) -> None:
    model = channel_means()
    weights = model.graph.initializer[0]
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="../../etc/outside.bin")  # any file at all
    path = tmp_path / "toy.onnx"
    path.write_bytes(model.SerializeToString())
    path.with_name("toy.onnx.json").write_text(json.dumps(SIDECAR))
    with pytest.raises(ModelError, match="external files"):
        OnnxEncoder(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small trained-shape model file and its ONNX export (through the CLI)."""
    folder = tmp_path_factory.mktemp("export")
    model = folder / "small.pt"
    save_encoder(build_encoder(EncoderConfig(backbone="mobilenet_v3_small", embedding_dim=64), "cpu"), model)
    out = cli_json("export", model, "--onnx", folder / "small.onnx")
    assert out["random_min_cosine"] > 0.9999
    return model, Path(out["onnx"])


def test_export_writes_a_sidecar_and_matches_torch(exported: tuple[Path, Path], faces_dir: Path) -> None:
    model, onnx_file = exported
    sidecar = json.loads(onnx_file.with_name("small.onnx.json").read_text())
    assert sidecar["format"] == SIDECAR_FORMAT and sidecar["mean"] == [127.5] * 3 and sidecar["alignment"] == "crop"
    torch_encoder, _ = load_model(model, "cpu")
    onnx_encoder, _ = load_model(onnx_file)
    from facesearch.embedding.loader import face_loader

    faces = np.concatenate([b.images for b in face_loader(sorted(faces_dir.glob("*/*.jpg")), 112)])
    cosines = np.sum(torch_encoder.embed_faces(faces) * onnx_encoder.embed_faces(faces), axis=1)
    assert cosines.min() > 0.9999


def test_a_gallery_bound_to_an_onnx_encoder(exported: tuple[Path, Path], home: Path, faces_dir: Path) -> None:
    model, onnx_file = exported
    out = cli_json("enroll", faces_dir, "--model", onnx_file)
    assert out["enrolled"] == 24
    info = cli_json("info")
    assert info["model"]["runtime"] == "onnx" and info["model"]["embedding_dim"] == 64
    copy = Path(info["model"]["file"])
    assert copy.suffix == ".onnx" and copy.with_name(copy.name + ".json").is_file()
    onnx_file.rename(onnx_file.with_suffix(".moved"))  # the gallery uses its own copy
    try:
        q = cli_json("query", faces_dir / "person_0003" / "0001.jpg")
        assert q["identity"] == "person_0003" and q["score"] == pytest.approx(1.0, abs=1e-4)
    finally:
        onnx_file.with_suffix(".moved").rename(onnx_file)
    with Gallery(home) as g:
        with pytest.raises(ModelError, match="not the one this gallery was enrolled with"):
            g.enroll(faces_dir, model=model)  # the torch original is another encoder file


def test_export_refuses_what_it_cannot_write(exported: tuple[Path, Path], tmp_path: Path) -> None:
    model, onnx_file = exported
    assert "already an ONNX file" in cli_json("export", onnx_file, "--onnx", tmp_path / "x.onnx", code=1)["error"]
    assert "must end in .onnx" in cli_json("export", model, "--onnx", tmp_path / "x.bin", code=1)["error"]


def test_opencv_runs_the_network_only_when_it_gives_onnxruntimes_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facesearch.embedding import onnx_runtime

    path = write(channel_means(1), tmp_path / "toy.onnx")
    auto, plain = OnnxEncoder(path), OnnxEncoder(path, runtime="onnxruntime")
    assert plain.runtime == "onnxruntime" and auto.runtime in ("opencv", "onnxruntime")
    assert np.allclose(auto.embed_faces(IMAGES), plain.embed_faces(IMAGES), atol=1e-5)
    monkeypatch.setattr(onnx_runtime._OpenCvRunner, "run", lambda self, x: np.ones((len(x), 4), np.float32))
    assert OnnxEncoder(path).runtime == "onnxruntime"  # a runtime that disagrees is not used


@pytest.mark.parametrize("faster", ["opencv", "onnxruntime"])
def test_opencv_runs_the_network_only_when_it_is_faster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faster: str) -> None:
    """Agreeing is not enough: OpenCV runs some networks (the face-shaped student) at half
    onnxruntime's speed. A toy network both runtimes agree on, with the timings made up."""
    from facesearch.embedding import onnx_runtime

    def timed(run, batch, times):  # noqa: ANN001, ANN202 (one runtime 1 ms, the other 2)
        return 0.001 if type(run.__self__).__name__ == f"_{'OpenCv' if faster == 'opencv' else 'Ort'}Runner" else 0.002

    monkeypatch.setattr(onnx_runtime, "_fastest", timed)
    assert OnnxEncoder(write(channel_means(1), tmp_path / "toy.onnx")).runtime == faster


def test_the_opencv_check_waits_for_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-face query in a new process never pays for trying OpenCV; a batch decides, once."""
    from facesearch.embedding import onnx_runtime

    tried = []
    real = onnx_runtime._OpenCvRunner.if_it_pays
    monkeypatch.setattr(onnx_runtime._OpenCvRunner, "if_it_pays", lambda ort, size: tried.append(1) or real(ort, size))
    encoder = OnnxEncoder(write(channel_means(1), tmp_path / "toy.onnx"))
    encoder.embed_faces(IMAGES[:1])
    assert tried == []
    batch = np.repeat(IMAGES[:1], OnnxEncoder.OPENCV_BATCH, axis=0)
    encoder.embed_faces(batch)
    encoder.embed_faces(batch)
    assert tried == [1]


def test_release_script_writes_the_reference_pair(exported: tuple[Path, Path], tmp_path: Path) -> None:
    """scripts/release_reference.py (release tooling, outside the package): fp16 .pt with the
    credits in its meta, and the ONNX form beside it, which loads as an encoder."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    model, _ = exported
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "release_reference.py"), str(model), "--out", str(tmp_path / "ref.pt"),
         "--credits", "made in a test"],
        capture_output=True, text=True, check=True,
    )
    report = json.loads(done.stdout)
    assert report["random_min_cosine"] > 0.999 and report["onnx_fingerprint"]
    sidecar = json.loads((tmp_path / "ref.onnx.json").read_text())
    assert sidecar["credits"] == "made in a test"
    assert load_model(tmp_path / "ref.onnx")[0].dim == 64
