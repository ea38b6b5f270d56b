"""Speed benchmarks: measured figures, written as JSON and a Markdown table.

    python benchmarks/run.py [--stages enroll,query] [--data DIR] [--out benchmarks/results]

Each stage is a function registered with ``@stage``; it returns a dict of figures. Every
figure that claims a ratio is measured against its plain baseline in the same run (for cold
queries: the bare ``import torch`` start-up that no Python face tool can avoid).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CFP_KNOWN = ROOT.parent / "shared" / "datasets" / "cfp-dev" / "verification" / "known"

Stage = Callable[[argparse.Namespace], dict[str, Any]]
STAGES: dict[str, Stage] = {}


def shown(path: Path) -> str:
    """A path as results record it: relative to the project's folder, never this machine's."""
    try:
        return str(Path(os.path.relpath(Path(path).resolve(), ROOT)))
    except ValueError:
        return Path(path).name


def stage(name: str) -> Callable[[Stage], Stage]:
    def wrap(fn: Stage) -> Stage:
        STAGES[name] = fn
        return fn

    return wrap


def gallery_data(args: argparse.Namespace) -> Path:
    """Real photos when ../shared is present, else a synthetic gallery of the same size."""
    if args.data:
        return Path(args.data)
    if CFP_KNOWN.exists():
        return CFP_KNOWN
    from facesearch.synthetic import write_dataset

    folder = Path(tempfile.mkdtemp(prefix="fs-bench-data-"))
    write_dataset(folder, identities=200, images_per_identity=3)
    return folder


@stage("enroll")
def bench_enroll(args: argparse.Namespace) -> dict[str, Any]:
    """End-to-end enroll into a fresh gallery, with the share of each stage."""
    from facesearch.gallery.engine import Gallery

    data = gallery_data(args)
    with tempfile.TemporaryDirectory() as home, Gallery(home) as gallery:
        gallery.bind_encoder()  # build the encoder outside the timed run
        report = gallery.enroll(data)
    total = report.timings["total"]
    stages = {k: v for k, v in report.timings.items() if k != "total"}
    return {
        "data": shown(data),
        "images": report.enrolled,
        "seconds": round(total, 3),
        "images_per_s": round(report.enrolled / total, 1),
        "share": {k: round(v / total, 3) for k, v in stages.items()},
        "other_share": round(1 - sum(stages.values()) / total, 3),
    }


def _median_ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 1)


@stage("query")
def bench_query(args: argparse.Namespace) -> dict[str, Any]:
    """Warm (in-process, encoder and index loaded) and cold (new `facesearch query` process)."""
    from facesearch.gallery.engine import Gallery

    data = gallery_data(args)
    probes = sorted(data.glob("*/*"))[: args.queries]
    with tempfile.TemporaryDirectory() as home:
        with Gallery(home) as gallery:
            gallery.enroll(data)
            gallery.query(probes[0])  # warm-up: model and index in memory
            warm = []
            for probe in probes:
                start = time.perf_counter()
                gallery.query(probe)
                warm.append(time.perf_counter() - start)
        env = {**os.environ, "FACESEARCH_HOME": home}
        command = [sys.executable, "-m", "facesearch.cli.main", "query", "--json"]
        cold = [_wall([*command, str(p)], env) for p in probes[: args.cold_runs]]
        baseline = [_wall([sys.executable, "-c", "import torch"], env) for _ in range(args.cold_runs)]
    return {
        "gallery_images": len(list(data.glob("*/*"))),
        "warm_ms_median": _median_ms(warm),
        "warm_ms_p95": round(1000 * sorted(warm)[int(0.95 * (len(warm) - 1))], 1),
        "warm_queries": len(warm),
        "cold_ms_median": _median_ms(cold),
        "cold_runs": len(cold),
        "baseline_import_torch_ms_median": _median_ms(baseline),
        "cold_over_baseline": round(statistics.median(cold) / statistics.median(baseline), 2),
    }


def face_like_vectors(count: int, dim: int, per_identity: int, rng, intrinsic: int = 16) -> tuple:  # noqa: ANN001
    """Gallery-like unit vectors, ``per_identity`` photos per person, plus one more unseen
    photo per person as queries.

    Shaped like a trained face encoder's output, because approximate search depends on it:
    people's centres span a ``intrinsic``-dimensional subspace and each photo adds isotropic
    noise of the same energy, so two photos of one person have cosine 0.5 and two people's
    photos cosine 0 +- 0.12. (Measured on cfp-dev with our FIW-trained encoder: 0.48 and
    0.11 +- 0.23, participation ratio of the embedding covariance 17. Isotropic 512-d vectors,
    cosine +- 0.044 between people, have no such structure and defeat IVF and HNSW alike:
    recall@1 0.81 at nprobe 256 on 1M in an ad-hoc sweep.)
    """
    import numpy as np

    people = max(1, count // per_identity)
    basis = np.linalg.qr(rng.standard_normal((dim, intrinsic)))[0].astype(np.float32)
    centres = rng.standard_normal((people, intrinsic)).astype(np.float32) @ basis.T
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def photos(n: int) -> "np.ndarray":
        x = centres[np.arange(n) % people]
        x += rng.standard_normal((n, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return photos(count), photos(people)


def _best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _latencies(fn: Callable[[Any], Any], queries: Any, repeats: int = 50) -> tuple[float, float]:
    """(ms per query answered in one batch, median ms of one query answered alone)."""
    batch = _best_of(lambda: fn(queries)) / len(queries)
    alone = []
    for query in queries[:repeats]:
        start = time.perf_counter()
        fn(query[None])
        alone.append(time.perf_counter() - start)
    return 1000 * batch, 1000 * statistics.median(alone)


@stage("search")
def bench_search(args: argparse.Namespace) -> dict[str, Any]:
    """Index search at growing gallery sizes, through the gallery's own FaceIndex: exact
    (flat) against a numpy brute-force baseline (one matrix product + argmax, the same
    arithmetic), and the approximate kinds at several search efforts, with their recall@1
    against exact search. Latency both per query in a batch (bench) and for one query alone."""
    import numpy as np

    from facesearch.index.faiss_index import FaceIndex
    from facesearch.index.spec import IndexSpec, IndexStamp, ivf_cells, training_size

    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        gallery, queries = face_like_vectors(size, 512, 4, rng)
        queries = queries[: args.search_queries]

        def build(spec: IndexSpec) -> tuple[FaceIndex, float]:
            start = time.perf_counter()
            sample = gallery[np.sort(rng.choice(size, training_size(spec, size), replace=False))]
            index = FaceIndex(512, IndexStamp("bench", 0, None, 512), False, spec, sample, size)
            index.add(np.arange(size), gallery)
            return index, time.perf_counter() - start

        flat, flat_build = build(IndexSpec("flat"))
        exact = flat.search(queries, 1)[1][:, 0]
        flat_ms = _latencies(lambda q: flat.search(q, 1), queries)
        numpy_ms = _latencies(lambda q: np.argmax(q @ gallery.T, axis=1), queries)
        assert (np.argmax(queries @ gallery.T, axis=1) == exact).mean() > 0.99
        base = {"size": size}
        rows.append({**base, "index": "numpy", "batch_ms": numpy_ms[0], "single_ms": numpy_ms[1]})
        rows.append({**base, "index": "flat", "build_s": flat_build, "batch_ms": flat_ms[0], "single_ms": flat_ms[1],
                     "recall_at_1": 1.0, "numpy_over_flat_batch": numpy_ms[0] / flat_ms[0]})
        efforts = [("ivf", "nprobe", (8, 32, 128))]
        if size <= args.hnsw_max:
            efforts.append(("hnsw", "ef_search", (32, 128)))
        for kind, knob, values in efforts:
            index, build_s = build(IndexSpec(kind))
            for value in values:
                index.tune(IndexSpec(kind, **{knob: value}))
                found = index.search(queries, 1)[1][:, 0]
                ms = _latencies(lambda q: index.search(q, 1), queries)
                rows.append({
                    **base, "index": kind, knob: value, "build_s": build_s, "batch_ms": ms[0], "single_ms": ms[1],
                    "recall_at_1": float(np.mean(found == exact)),
                    "speedup_batch": flat_ms[0] / ms[0], "speedup_single": flat_ms[1] / ms[1],
                    **({"nlist": ivf_cells(size)} if kind == "ivf" else {}),
                })
        for row in rows:
            if row["size"] == size:
                print(f"  {row}", file=sys.stderr)
    return {"dim": 512, "queries": args.search_queries, "rows": rows}


@stage("decode")
def bench_decode(args: argparse.Namespace) -> dict[str, Any]:
    """One process decoding photos into 112x112 tensors: facesearch's safe decode (content
    sniffing, size limits, EXIF, mode conversion, centred square) against a plain Pillow
    open + RGB + resize + tensor of the same files."""
    import numpy as np
    import torch
    from PIL import Image

    from facesearch.embedding.imaging import load_face

    files = sorted(p for p in gallery_data(args).glob("*/*") if p.is_file())

    def plain() -> None:
        for path in files:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("RGB").resize((112, 112), Image.BILINEAR))
            torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)

    ours = _best_of(lambda: [load_face(path, 112) for path in files])
    baseline = _best_of(plain)
    return {
        "images": len(files),
        "images_per_s": round(len(files) / ours, 1),
        "baseline_pillow_images_per_s": round(len(files) / baseline, 1),
        "ours_over_baseline_time": round(ours / baseline, 2),
    }


def matmul_peak_gflops() -> float:
    """This machine's measured float32 matrix-multiply throughput (torch, all threads)."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    return 2 * 2048**3 / _best_of(lambda: torch.mm(a, b), repeats=5) / 1e9


@stage("embed")
def bench_embed(args: argparse.Namespace) -> dict[str, Any]:
    """Encoder throughput per backbone and batch size on 112x112 inputs (inference mode, as
    enroll runs it), and the share of the measured matmul peak that it reaches."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from facesearch.models import EncoderConfig, build_encoder

    peak = matmul_peak_gflops()
    rows = []
    for backbone in args.backbones.split(","):
        encoder = build_encoder(EncoderConfig(backbone=backbone)).eval()
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            encoder.embed(torch.randint(0, 256, (1, 3, 112, 112), dtype=torch.uint8))
        flops = counter.get_total_flops()
        for batch in [int(b) for b in args.batches.split(",")]:
            images = torch.randint(0, 256, (batch, 3, 112, 112), dtype=torch.uint8)
            encoder.embed(images)  # warm-up
            passes = max(1, int(args.embed_images) // batch)
            seconds = _best_of(lambda: [encoder.embed(images) for _ in range(passes)], repeats=2)
            per_s = passes * batch / seconds
            rows.append({
                "backbone": backbone, "batch": batch, "images_per_s": round(per_s, 1),
                "gflops_per_image": round(flops / 1e9, 3),
                "share_of_matmul_peak": round(per_s * flops / 1e9 / peak, 3),
            })
            print(f"  {rows[-1]}", file=sys.stderr)
    return {"matmul_peak_gflops": round(peak, 1), "rows": rows}


def _wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    """One section per stage: its scalar figures, then its table of rows if it has one."""
    lines = [f"# Speed results ({results['date']})", "", f"Machine: `{json.dumps(results['machine'])}`"]
    for name, figures in results["stages"].items():
        lines += ["", f"## {name}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in figures.items() if k != "rows"]
        rows = figures.get("rows", [])
        if rows:
            columns = list(dict.fromkeys(key for row in rows for key in row))
            lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of: {', '.join(STAGES)}")
    parser.add_argument("--data", help="gallery folder [default: cfp-dev known/, else synthetic]")
    parser.add_argument("--queries", type=int, default=100, help="warm queries to time")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold query processes to time")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes for the search stage")
    parser.add_argument("--search-queries", type=int, default=200, help="queries per size in the search stage")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest gallery to build HNSW for (slow)")
    parser.add_argument("--backbones", default="litface,mobilenet_v3_small,mobilenet_v2,resnet18,resnet50")
    parser.add_argument("--batches", default="1,16,64", help="batch sizes for the embed stage")
    parser.add_argument("--embed-images", type=int, default=128, help="images per timed embed run")
    parser.add_argument("--detect-photos", type=int, default=20, help="photos per size in the detect stage")
    parser.add_argument("--photo-count", type=int, default=600, help="gallery photos in the enroll_photos stage")
    parser.add_argument("--rounds", type=int, default=3, help="turns taken by ours and the baseline (photo stages)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    previous = Path(args.out) / "speed.json"
    # Stages not run this time keep their last figures (each stage records its own date).
    stages = json.loads(previous.read_text())["stages"] if previous.exists() else {}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "stages": stages}
    for name in args.stages.split(","):
        if name not in STAGES:
            raise SystemExit(f"unknown stage {name!r} (known: {', '.join(STAGES)})")
        print(f"running {name} ...", file=sys.stderr)
        results["stages"][name] = {"date": time.strftime("%Y-%m-%d %H:%M"), **STAGES[name](args)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "speed.md").write_text(markdown(results))
    print(markdown(results))


from photos import PHOTO_STAGES  # noqa: E402 (beside this file; registers the photo stages)

STAGES.update(PHOTO_STAGES)

if __name__ == "__main__":
    main()
