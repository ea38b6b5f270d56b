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
    from facesearch.engine import Gallery

    data = gallery_data(args)
    with tempfile.TemporaryDirectory() as home, Gallery(home) as gallery:
        gallery.bind_encoder()  # build the encoder outside the timed run
        report = gallery.enroll(data)
    total = report.timings["total"]
    stages = {k: v for k, v in report.timings.items() if k != "total"}
    return {
        "data": str(data),
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
    from facesearch.engine import Gallery

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


def clustered_vectors(count: int, dim: int, per_identity: int, rng) -> tuple:  # noqa: ANN001
    """Gallery-like unit vectors: ``per_identity`` noisy photos around each person's centre
    (random vectors have no neighbourhood structure and would understate approximate search),
    plus one more unseen photo per person as queries."""
    import numpy as np

    people = max(1, count // per_identity)
    centres = rng.standard_normal((people, dim)).astype(np.float32)

    def photos(n: int) -> "np.ndarray":
        owners = np.arange(n) % people
        x = centres[owners] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return photos(count), photos(people)


def _best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@stage("search")
def bench_search(args: argparse.Namespace) -> dict[str, Any]:
    """Index search at growing gallery sizes: FAISS exact (IndexFlatIP) against a numpy
    brute-force baseline (one matrix product + argmax, the same arithmetic), and an IVF
    index (nlist = 4 sqrt(N), nprobe 16) with its recall@1 against exact search."""
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)
    figures: dict[str, Any] = {"dim": 512, "queries": args.search_queries}
    for size in [int(s) for s in args.sizes.split(",")]:
        gallery, queries = clustered_vectors(size, 512, 4, rng)
        queries = queries[: args.search_queries]
        flat = faiss.IndexFlatIP(512)
        flat.add(gallery)
        _, exact = flat.search(queries, 1)
        faiss_s = _best_of(lambda: flat.search(queries, 1))
        numpy_s = _best_of(lambda: np.argmax(queries @ gallery.T, axis=1))
        assert (np.argmax(queries @ gallery.T, axis=1) == exact[:, 0]).mean() > 0.99
        nlist = int(4 * np.sqrt(size))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(512), 512, nlist, faiss.METRIC_INNER_PRODUCT)
        start = time.perf_counter()
        ivf.train(gallery[rng.choice(size, min(size, 40 * nlist), replace=False)])
        ivf.add(gallery)
        build_s = time.perf_counter() - start
        ivf.nprobe = 16
        _, approx = ivf.search(queries, 1)
        ivf_s = _best_of(lambda: ivf.search(queries, 1))
        figures[str(size)] = {
            "faiss_flat_ms_per_query": 1000 * faiss_s / len(queries),
            "numpy_ms_per_query": 1000 * numpy_s / len(queries),
            "numpy_over_faiss": numpy_s / faiss_s,
            "ivf_ms_per_query": 1000 * ivf_s / len(queries),
            "ivf_speedup_over_flat": faiss_s / ivf_s,
            "ivf_recall_at_1": float(np.mean(approx[:, 0] == exact[:, 0])),
            "ivf_build_s": build_s,
            "ivf_nlist": nlist,
        }
        print(f"  {size}: {figures[str(size)]}", file=sys.stderr)
    return figures


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


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Speed results ({results['date']})", "", f"Machine: `{json.dumps(results['machine'])}`", ""]
    lines += ["| stage | figure | value |", "|---|---|---|"]
    for name, figures in results["stages"].items():
        for key, value in figures.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
            elif isinstance(value, float):
                value = f"{value:.4g}"
            lines.append(f"| {name} | {key} | {value} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of: {', '.join(STAGES)}")
    parser.add_argument("--data", help="gallery folder [default: cfp-dev known/, else synthetic]")
    parser.add_argument("--queries", type=int, default=100, help="warm queries to time")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold query processes to time")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes for the search stage")
    parser.add_argument("--search-queries", type=int, default=200, help="queries per size in the search stage")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    previous = Path(args.out) / "speed.json"
    # Stages not run this time keep their last figures (each stage records its own date).
    stages = json.loads(previous.read_text())["stages"] if previous.exists() else {}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "stages": stages}
    for name in args.stages.split(","):
        print(f"running {name} ...", file=sys.stderr)
        results["stages"][name] = {"date": time.strftime("%Y-%m-%d %H:%M"), **STAGES[name](args)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "speed.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
