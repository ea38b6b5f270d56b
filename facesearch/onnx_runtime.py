"""ONNX encoders run by onnxruntime: published recognisers (SFace, ArcFace exports) and our
own models written by ``facesearch export``.

An ONNX file says nothing about how its faces must be prepared, so it travels with a
sidecar ``FILE.onnx.json`` (format ``facesearch.onnx-encoder``): input size, channel order,
mean and std in pixel units, alignment, and optionally flip test-time augmentation. The
file is checked against its sidecar when it is opened: a network that does not take
(N, 3, S, S) images or does not give (N, D) vectors, or a sidecar whose size disagrees with
the network, is refused with a clear message rather than answering noise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import ModelError
from facesearch.fileio import atomic_write
from facesearch.preprocessing import Preprocessing

SIDECAR_FORMAT = "facesearch.onnx-encoder"


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar of an ONNX encoder, validated (its preprocessing parsed)."""
    side = sidecar_path(path)
    if not side.is_file():
        raise ModelError(
            f"{path}: no sidecar {side.name} beside it (it says the input size, channels, mean, "
            "std and alignment the network expects; see the README)"
        )
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{side}: not a readable JSON sidecar ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise ModelError(f"{side}: not a facesearch ONNX sidecar (needs \"format\": \"{SIDECAR_FORMAT}\")")
    data["preprocessing"] = Preprocessing.from_dict(data, str(side))
    data["flip"] = bool(data.get("flip", False))
    return data


def write_sidecar(path: str | Path, preprocessing: Preprocessing, flip: bool = False, **extra: Any) -> Path:
    side = sidecar_path(path)
    body = {"format": SIDECAR_FORMAT, **extra, **preprocessing.to_dict()}
    if flip:
        body["flip"] = True
    with atomic_write(side) as handle:
        handle.write((json.dumps(body, indent=2) + "\n").encode())
    return side


def onnx_fingerprint(model_bytes: bytes, preprocessing: Preprocessing, flip: bool) -> str:
    """SHA-256 of the network and of how its faces are made (name and licence do not count)."""
    digest = hashlib.sha256(b"facesearch.onnx-encoder|")
    described = {**preprocessing.to_dict(), **({"flip": True} if flip else {})}
    digest.update(json.dumps(described, sort_keys=True).encode())
    digest.update(model_bytes)
    return digest.hexdigest()


class OnnxEncoder:
    """An ONNX face encoder with the interface of facesearch.encoders.FaceEncoder.

    ``batching``: "auto" runs whole batches, rewriting a batch dimension fixed at 1 as
    dynamic when the network allows it; "single" feeds faces one at a time.
    """

    runtime = "onnx"

    def __init__(self, path: str | Path, flip: bool | None = None, batching: str = "auto") -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        sidecar = read_sidecar(path)
        self.path = path
        self.name = str(sidecar.get("name") or path.stem)
        self.preprocessing: Preprocessing = sidecar["preprocessing"]
        self.flip = sidecar["flip"] if flip is None else flip
        model_bytes = path.read_bytes()
        self.fingerprint = onnx_fingerprint(model_bytes, self.preprocessing, self.flip)
        self._session, self.batched = self._open(model_bytes, batching)
        self._input = self._session.get_inputs()[0].name
        self.dim = self._check_shapes()

    def _open(self, model_bytes: bytes, batching: str) -> tuple[Any, bool]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings (such as weights listed as inputs) are not errors
        fixed_one = False
        try:
            import onnx

            model = onnx.load_from_string(model_bytes)
            _refuse_external_data(model, self.path)
            changed = _constant_weights(model)
            first = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
            fixed_one = bool(first) and first[0].dim_value == 1
            if fixed_one and batching == "auto":
                _dynamic_batch(model)
            if changed or (fixed_one and batching == "auto"):
                model_bytes = model.SerializeToString()
        except ModelError:
            raise
        except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
            raise ModelError(f"{self.path}: not a readable ONNX model ({_first_line(exc)})") from None
        try:
            session = ort.InferenceSession(model_bytes, options, providers=_providers(ort))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph kinds
            raise ModelError(f"{self.path}: onnxruntime cannot load it ({_first_line(exc)})") from None
        if fixed_one and batching == "auto" and not _runs_batches(session, self.preprocessing.input_size):
            return self._open(self.path.read_bytes(), "single")[0], False
        return session, batching == "auto" or not fixed_one

    def _check_shapes(self) -> int:
        """The embedding size, after checking the network takes what the sidecar says."""
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = inputs[0].shape
        size = self.preprocessing.input_size
        if len(shape) != 4:
            raise ModelError(f"{self.path}: not a face encoder (its input has rank {len(shape)}, not an (N, 3, H, W) image)")
        if isinstance(shape[1], int) and shape[1] != 3:
            raise ModelError(f"{self.path}: not a face encoder (its input has {shape[1]} channels, not 3)")
        fixed = [d for d in shape[2:] if isinstance(d, int)]
        if any(d != size for d in fixed):
            raise ModelError(
                f"{self.path}: the sidecar says input {size}x{size}, but the network takes "
                f"{shape[2]}x{shape[3]}"
            )
        out = outputs[0].shape
        if len(out) != 2 or not isinstance(out[1], int):
            raise ModelError(f"{self.path}: not a face encoder (its output {out} is not an (N, D) vector)")
        try:
            probe = self._run(np.zeros((1, 3, size, size), np.float32))
        except Exception as exc:  # a sidecar size the network cannot take fails here
            raise ModelError(f"{self.path}: does not run on {size}x{size} faces as its sidecar says ({_first_line(exc)})") from None
        if probe.shape != (1, out[1]):
            raise ModelError(f"{self.path}: gave {probe.shape} for one face, not (1, {out[1]})")
        return int(out[1])

    def describe(self) -> dict[str, Any]:
        """What the gallery stores about its encoder."""
        return {"runtime": "onnx", "name": self.name, "embedding_dim": self.dim, "flip": self.flip,
                **self.preprocessing.to_dict()}

    def embed_faces(self, images: Any) -> np.ndarray:
        """uint8 (N, 3, S, S) faces (tensor or array) -> L2-normalised float32 (N, D)."""
        x = self._normalise(np.asarray(images))
        out = self._run(x)
        if self.flip:
            out = out + self._run(np.ascontiguousarray(x[..., ::-1]))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def _normalise(self, images: np.ndarray) -> np.ndarray:
        p = self.preprocessing
        x = images.astype(np.float32)
        if p.channels == "bgr":
            x = x[:, ::-1]
        mean = np.asarray(p.mean, np.float32)[None, :, None, None]
        std = np.asarray(p.std, np.float32)[None, :, None, None]
        return np.ascontiguousarray((x - mean) / std)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.batched or len(x) == 1:
            return np.asarray(self._session.run(None, {self._input: x})[0], np.float32)
        return np.concatenate([self._session.run(None, {self._input: x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float32)


def _providers(ort: Any) -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _dynamic_batch(model: Any) -> None:
    """Make the first input's and the outputs' batch dimension symbolic."""
    for value in [model.graph.input[0], *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "N"


def _constant_weights(model: Any) -> bool:
    """Drop weights listed as graph inputs (an old exporter's habit, SFace's among them):
    a weight that is an input could be overridden at run time, so onnxruntime cannot fold
    or fuse it (SFace: 36 against 29 faces/s on one thread here). True if any was dropped."""
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    if len(inputs) == len(model.graph.input):
        return False
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return True


def _runs_batches(session: Any, size: int) -> bool:
    """Whether a rewritten batch dimension really works (a Reshape to 1 inside would not)."""
    try:
        out = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, size, size), np.float32)})[0]
        return out.shape[0] == 2
    except Exception:  # noqa: BLE001 (onnxruntime's kinds): not batchable, feed one by one
        return False


def _refuse_external_data(model: Any, path: Path) -> None:
    """Weights kept in other files are not followed: an ONNX file could name any file."""
    for tensor in model.graph.initializer:
        if tensor.data_location == 1:  # onnx.TensorProto.EXTERNAL
            raise ModelError(
                f"{path}: keeps its weights in external files, which facesearch does not load "
                "(save it as one file: onnx.save(model, path, save_as_external_data=False))"
            )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
