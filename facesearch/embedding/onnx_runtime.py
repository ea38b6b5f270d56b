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
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import ModelError
from facesearch.fileio import atomic_write
from facesearch.embedding.preprocessing import Preprocessing

SIDECAR_FORMAT = "facesearch.onnx-encoder"

log = logging.getLogger(__name__)


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


def sidecar_extra(sidecar: dict[str, Any]) -> dict[str, Any]:
    """What else a read sidecar says (name, licence, provenance): kept when it is copied."""
    described = {"format", "preprocessing", "flip", *sidecar["preprocessing"].to_dict()}
    return {k: v for k, v in sidecar.items() if k not in described}


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
    """An ONNX face encoder with the interface of facesearch.embedding.encoders.FaceEncoder.

    ``batching``: "auto" runs whole batches, rewriting a batch dimension fixed at 1 as
    dynamic when the network allows it; "single" feeds faces one at a time.
    ``runtime``: "auto" runs the network on OpenCV's DNN module when there is no GPU and
    OpenCV gives onnxruntime's answers on probe faces in less time (1.7x faster for SFace on
    this project's CPU: the onnx_batch stage of benchmarks/run.py; 2x slower for a face-shaped
    student, which stays on onnxruntime), else on onnxruntime; "onnxruntime" always uses the latter.
    The OpenCV check (30-50 ms) is made on the first batch of ``OPENCV_BATCH`` faces or more,
    where the faster runtime pays: a one-photo query in a new process never waits for it.
    """

    OPENCV_BATCH = 8

    def __init__(
        self, path: str | Path, flip: bool | None = None, batching: str = "auto", runtime: str = "auto"
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        sidecar = read_sidecar(path)
        self.path = path
        self.name = str(sidecar.get("name") or path.stem)
        self.preprocessing: Preprocessing = sidecar["preprocessing"]
        self.flip = sidecar["flip"] if flip is None else flip
        self.calibration: dict[str, Any] | None = sidecar.get("calibration")  # see facesearch.gallery.calibration
        file_bytes = path.read_bytes()
        self.fingerprint = onnx_fingerprint(file_bytes, self.preprocessing, self.flip)
        self._ort = _OrtRunner(file_bytes, path, batching, self.preprocessing.input_size)
        self.batched = self._ort.batched
        self.dim = self._check_shapes()
        self._runner: _OrtRunner | _OpenCvRunner = self._ort
        self._choosing = runtime == "auto" and not self._ort.on_gpu  # OpenCV not tried yet
        self._choice = threading.Lock()

    @property
    def runtime(self) -> str:
        """Which runtime embeds batches: "opencv" or "onnxruntime" (asking decides it)."""
        return self._batch_runner().name

    def _batch_runner(self) -> _OrtRunner | _OpenCvRunner:
        """The runtime for a batch: OpenCV's DNN if it gives onnxruntime's answers (decided once)."""
        with self._choice:
            if self._choosing:
                self._runner = _OpenCvRunner.if_it_pays(self._ort, self.preprocessing.input_size) or self._ort
                self._choosing = False
        return self._runner

    def _check_shapes(self) -> int:
        """The embedding size, after checking the network takes what the sidecar says."""
        shape, out = self._ort.input_shape, self._ort.output_shape
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
        if len(out) != 2 or not isinstance(out[1], int):
            raise ModelError(f"{self.path}: not a face encoder (its output {out} is not an (N, D) vector)")
        try:
            probe = self._ort.run(np.zeros((1, 3, size, size), np.float32))
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
        runner = self._batch_runner() if len(x) >= self.OPENCV_BATCH else self._runner
        out = runner.run(x)
        if self.flip:
            out = out + runner.run(np.ascontiguousarray(x[..., ::-1]))
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


class _OrtRunner:
    """The network in an onnxruntime session (CUDA when onnxruntime-gpu finds a GPU)."""

    name = "onnxruntime"

    def __init__(self, file_bytes: bytes, path: Path, batching: str, size: int) -> None:
        self.path = path
        direct = self._as_it_is(file_bytes)
        if direct is not None:
            self.model_bytes, self.session, self.batched = file_bytes, direct, True
        else:
            self.model_bytes, fixed_one = _readied(file_bytes, path, rewrite_batch=batching == "auto")
            self.session = self._session(self.model_bytes)
            self.batched = batching == "auto" or not fixed_one
            if fixed_one and batching == "auto" and not self._runs_batches(size):
                self.model_bytes = _readied(file_bytes, path, rewrite_batch=False)[0]
                self.session, self.batched = self._session(self.model_bytes), False
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape
        self.output_shape = self.session.get_outputs()[0].shape
        self.on_gpu = self.session.get_providers()[0] == "CUDAExecutionProvider"

    def _session(self, model_bytes: bytes) -> Any:
        return open_session(model_bytes, self.path)

    def _as_it_is(self, file_bytes: bytes) -> Any:
        """The session of a file that needs no rewriting (one input, a free batch dimension,
        no weights listed as inputs: what `facesearch export` writes), else None. It skips
        parsing the file with ``onnx`` (0.8 s to import on a cold start). Loaded from bytes,
        onnxruntime refuses weights in external files itself; any file it refuses goes the
        long way, which says why."""
        try:
            session = self._session(file_bytes)
        except ModelError:
            return None
        inputs = session.get_inputs()
        if len(inputs) != 1 or session.get_overridable_initializers() or isinstance(inputs[0].shape[0], int):
            return None
        return session

    def _runs_batches(self, size: int) -> bool:
        """Whether a rewritten batch dimension really works (a Reshape to 1 inside would not)."""
        try:
            name = self.session.get_inputs()[0].name
            return self.session.run(None, {name: np.zeros((2, 3, size, size), np.float32)})[0].shape[0] == 2
        except Exception:  # noqa: BLE001 (onnxruntime's kinds): not batchable, feed one by one
            return False

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.batched or len(x) == 1:
            return np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32)
        return np.concatenate([self.session.run(None, {self.input_name: x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float32)


class _OpenCvRunner:
    """The same network in OpenCV's DNN module: faster on a CPU for many face encoders (SFace
    1.7x), slower for others (a stride-1 stem of depthwise layers: 2x slower), and it handles
    fewer graphs (it misreads the dynamic batch of torch's exports, for one), so it is used
    only after it has given onnxruntime's answers, faster. One forward at a time: an OpenCV
    network is not safe for concurrent calls."""

    name = "opencv"
    AGREEMENT = 0.9999
    TIMINGS = 3  # forwards of the probe batch timed in each runtime; the fastest counts

    def __init__(self, net: Any, batched: bool) -> None:
        self.net, self.batched = net, batched
        self.lock = threading.Lock()

    @classmethod
    def if_it_pays(cls, ort: _OrtRunner, size: int) -> "_OpenCvRunner | None":
        """OpenCV's runner, if it gives onnxruntime's answers on a probe batch and in less time."""
        try:
            import cv2

            runner = cls(cv2.dnn.readNetFromONNX(np.frombuffer(ort.model_bytes, np.uint8)), ort.batched)
            probe = np.random.default_rng(0).uniform(-1, 1, (3, 3, size, size)).astype(np.float32)
            ours, theirs = runner.run(probe), ort.run(probe)
        except Exception as exc:  # noqa: BLE001 (cv2.error and kin): onnxruntime it is
            log.info("%s: OpenCV DNN cannot run it (%s); using onnxruntime", ort.path, _first_line(exc))
            return None
        if ours.shape != theirs.shape:
            return None
        cosine = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
        if float(cosine.min()) < cls.AGREEMENT:
            return None
        opencv, onnxruntime = _fastest(runner.run, probe, cls.TIMINGS), _fastest(ort.run, probe, cls.TIMINGS)
        log.info("%s: OpenCV DNN %.1f ms, onnxruntime %.1f ms a probe batch", ort.path, 1000 * opencv, 1000 * onnxruntime)
        return runner if opencv < onnxruntime else None

    def run(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            if self.batched or len(x) == 1:
                self.net.setInput(x)
                return np.asarray(self.net.forward(), np.float32).reshape(len(x), -1)
            outs = []
            for i in range(len(x)):
                self.net.setInput(x[i : i + 1])
                outs.append(np.asarray(self.net.forward(), np.float32).reshape(1, -1))
            return np.concatenate(outs)


def _fastest(run: Any, batch: np.ndarray, times: int) -> float:
    """The least time, in seconds, of ``times`` calls of ``run`` on ``batch``."""
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        run(batch)
        best = min(best, time.perf_counter() - start)
    return best


def _readied(file_bytes: bytes, path: Path, rewrite_batch: bool) -> tuple[bytes, bool]:
    """(the model as runtimes get it, whether its batch is fixed at 1): external data refused,
    weights listed as inputs made constants, a fixed batch of 1 made dynamic if asked."""
    import onnx

    try:
        model = onnx.load_from_string(file_bytes)
    except Exception as exc:  # onnx raises DecodeError and kin
        raise ModelError(f"{path}: not a readable ONNX model ({_first_line(exc)})") from None
    _refuse_external_data(model, path)
    changed = _constant_weights(model)
    first = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    fixed_one = bool(first) and first[0].dim_value == 1
    if fixed_one and rewrite_batch:
        _dynamic_batch(model)
        changed = True
    return (model.SerializeToString() if changed else file_bytes), fixed_one


def open_session(model: bytes | Path, path: Path | None = None, threads: int = 0) -> Any:
    """An onnxruntime session on the GPU when onnxruntime-gpu finds one, else the CPU (on
    ``threads`` threads, 0: onnxruntime's choice); a model it refuses is a ModelError that
    names ``path`` (the file itself when not given)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings (such as weights listed as inputs) are not errors
    options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=_providers(ort))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph kinds
        raise ModelError(f"{path or model}: onnxruntime cannot load it ({_first_line(exc)})") from None


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
    or fuse it (SFace: 36 against 29 faces/s on one thread here, measured ad hoc). True if any was dropped."""
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    if len(inputs) == len(model.graph.input):
        return False
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return True


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
