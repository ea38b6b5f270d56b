"""How fast facesearch answers: cold commands, warm queries, onnxruntime against torch.

    python benchmarks/answering.py [--runs 7] [--candidate MODEL ...] [--rule RULE ...] [--out benchmarks/results]

On the cfp-dev gallery (600 photos of 200 people, ``../shared/datasets/cfp-dev``) enrolled
with the shipped reference encoder (ONNX, MTCNN detection + alignment):

- cold: ``facesearch --help``, ``facesearch info`` and ``facesearch query PHOTO`` each as a new
  process, median of ``--runs``; ``python -c pass`` as the floor every process pays; and a
  bare ``import`` of the third-party libraries that the cold query imports (read from its
  ``-X importtime`` trace), with the query's ratio to it: what our own code costs on top;
- warm: ``Gallery.query`` of a probe photo in a process that has answered once (median of 50),
  and its parts (decode + detect + align, embed, search);
- embed: the same reference through onnxruntime (``reference.onnx``) and torch
  (``reference.pt``) at batch 1, 16 and 64 on aligned cfp-dev faces, faces/s, and how well
  their embeddings agree (minimum cosine);
- candidates (``--candidate MODEL``, an ONNX encoder or a ``train`` model file, repeatable): the
  same gallery enrolled with each, and the warm query of each against the shipped one, one query
  of each in turn, so that whatever else the machine does weighs on all of them alike. The
  budget a student must keep is a ratio from one run, never figures from two (machines here
  differ twofold);
- rules (``--rule mean``, repeatable): the same, for the shipped encoder under another scoring
  rule (``facesearch scoring``), which changes the search and nothing else.

Writes answering.json and answering.md. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CFP = ROOT.parent / "shared" / "datasets" / "cfp-dev"
CFP_NAME = "../shared/datasets/cfp-dev"


def timed_process(args: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(seconds), 4), "min_s": round(min(seconds), 4), "runs": runs}


def imported_libraries(args: list[str], env: dict[str, str]) -> list[str]:
    """Every third-party module a command imports (not the standard library, not facesearch),
    in the order its ``-X importtime`` trace finished them: what a bare import must load."""
    trace = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, check=True, capture_output=True, text=True).stderr
    names = [line.split("|")[-1].strip() for line in trace.splitlines() if line.startswith("import time:")]
    names = [n for n in names if n and not n.startswith(("facesearch", "_")) and n != "module"]
    probe = ("import importlib.util, sys, json\n"
             "def third_party(n):\n"
             "    try:\n        s = importlib.util.find_spec(n.split('.')[0])\n    except (ImportError, ValueError):\n        return False\n"
             "    return bool(s and s.origin and 'site-packages' in s.origin)\n"
             "print(json.dumps([n for n in json.loads(sys.argv[1]) if third_party(n)]))")
    found = subprocess.run([sys.executable, "-c", probe, json.dumps(names)], env=env, check=True, capture_output=True, text=True)
    return list(dict.fromkeys(json.loads(found.stdout)))


def bare_import(modules: list[str]) -> list[str]:
    """A ``python -c`` program that imports these modules and nothing of ours (a module the
    trace shows as tried and abandoned, such as faiss's avx512 build, fails here too)."""
    return [sys.executable, "-c", "import importlib\nfor name in " + repr(modules) + ":\n"
            "    try:\n        importlib.import_module(name)\n    except ImportError:\n        pass"]


def cold(home: Path, probe: Path, runs: int) -> dict[str, Any]:
    env = {**os.environ, "FACESEARCH_HOME": str(home)}
    env.pop("FACESEARCH_MODEL", None)
    cli = [sys.executable, "-m", "facesearch.cli.main"]
    query = [*cli, "query", str(probe), "--json"]
    libraries = imported_libraries(query[1:], env)
    times = {
        "python -c pass": timed_process([sys.executable, "-c", "pass"], env, runs),
        "import of the query's libraries": timed_process(bare_import(libraries), env, runs),
        "facesearch --help": timed_process([*cli, "--help"], env, runs),
        "facesearch info": timed_process([*cli, "info", "--json"], env, runs),
        "facesearch query": timed_process(query, env, runs),
    }
    ratio = times["facesearch query"]["median_s"] / times["import of the query's libraries"]["median_s"]
    packages = sorted({name.split(".")[0] for name in libraries})
    return {"commands": times, "libraries": packages, "modules": len(libraries), "query_over_imports": round(ratio, 2)}


def warm(gallery, probe: Path, count: int = 50) -> dict[str, float]:  # noqa: ANN001
    import numpy as np

    from facesearch.embedding.imaging import decode, read_bytes

    gallery.query(probe)
    whole = []
    for _ in range(count):
        start = time.perf_counter()
        gallery.query(probe)
        whole.append(time.perf_counter() - start)
    encoder = gallery.encoder()
    preparer = gallery.preparer(encoder)
    data = read_bytes(probe)
    parts = {"prepare": [], "embed": [], "search": []}
    for _ in range(count):
        t0 = time.perf_counter()
        faces = preparer.prepare(decode(data, probe, draft_side=preparer.draft_side), probe).faces
        batch = np.stack([f.pixels.transpose(2, 0, 1) for f in faces])
        t1 = time.perf_counter()
        vectors = encoder.embed_faces(batch)
        t2 = time.perf_counter()
        gallery.search(vectors)
        parts["prepare"].append(t1 - t0)
        parts["embed"].append(t2 - t1)
        parts["search"].append(time.perf_counter() - t2)
    result = {"query_ms": round(1000 * statistics.median(whole), 2)}
    result.update({f"{k}_ms": round(1000 * statistics.median(v), 2) for k, v in parts.items()})
    return result


def compared(galleries: dict[str, Any], probe: Path, rounds: int = 300) -> dict[str, Any]:
    """The warm query of every gallery, one query of each in turn for ``rounds`` rounds:
    {name: {query_ms, ratio}} (medians; ratio to the first gallery's)."""
    seconds: dict[str, list[float]] = {name: [] for name in galleries}
    for gallery in galleries.values():
        gallery.query(probe)  # warm: encoder, detector, index
    for _ in range(rounds):
        for name, gallery in galleries.items():
            start = time.perf_counter()
            gallery.query(probe)
            seconds[name].append(time.perf_counter() - start)
    medians = {name: 1000 * statistics.median(times) for name, times in seconds.items()}
    first = next(iter(medians.values()))
    return {name: {"query_ms": round(ms, 2), "ratio": round(ms / first, 3)} for name, ms in medians.items()}


def with_candidates(shipped, candidates: list[Path], rules: list[str], probe: Path) -> dict[str, Any]:  # noqa: ANN001
    """The gallery enrolled again with each candidate encoder, and under each other scoring
    rule with the shipped one, and the warm queries compared."""
    from contextlib import ExitStack

    from facesearch.gallery.engine import Gallery

    with ExitStack() as stack:
        galleries = {"shipped": shipped}
        for name, model, rule in [(m.name, m, None) for m in candidates] + [(f"scoring {r}", None, r) for r in rules]:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="facesearch-candidate-"))  # removed after
            gallery = stack.enter_context(Gallery(Path(folder) / "home"))
            gallery.enroll(CFP / "verification" / "known", model)
            if rule is not None:
                gallery.set_scoring(rule)
            galleries[name] = gallery
        return compared(galleries, probe)


def embedding(faces) -> dict:  # noqa: ANN001
    import numpy as np

    from facesearch.embedding.encoders import load_model
    from facesearch.models.reference import REFERENCE_FILE, REFERENCE_ONNX

    onnx, _ = load_model(REFERENCE_ONNX)
    torch_form, _ = load_model(REFERENCE_FILE, "cpu")
    cosine = float(np.sum(onnx.embed_faces(faces) * torch_form.embed_faces(faces), axis=1).min())
    rows = []
    for batch in (1, 16, 64):
        row = {"batch": batch}
        for name, encoder in (("onnxruntime", onnx), ("torch", torch_form)):
            n = max(batch, 256 // batch * batch)
            chunk = faces[:batch]
            encoder.embed_faces(chunk)
            start = time.perf_counter()
            for _ in range(n // batch):
                encoder.embed_faces(chunk)
            row[f"{name}_faces_per_s"] = round(n / (time.perf_counter() - start), 1)
        row["ratio"] = round(row["onnxruntime_faces_per_s"] / row["torch_faces_per_s"], 2)
        rows.append(row)
    return {"runtime": onnx.runtime, "faces_compared": len(faces), "min_cosine": cosine, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--candidate", type=Path, action="append", default=[],
                        help="another encoder (ONNX or a train model file) whose warm query is compared")
    parser.add_argument("--rule", action="append", default=[],
                        help="a scoring rule (facesearch scoring) whose warm query, with the shipped encoder, is compared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    os.environ.pop("FACESEARCH_MODEL", None)
    import numpy as np

    from facesearch.embedding.loader import face_loader
    from facesearch.gallery.engine import Gallery

    home = Path(tempfile.mkdtemp(prefix="facesearch-answering-")) / "home"
    probe = sorted((CFP / "verification" / "unknown_dev").glob("*.jpg"))[0]
    with Gallery(home) as gallery:
        report = gallery.enroll(CFP / "verification" / "known")
        faces = np.concatenate([b.images for b in face_loader(
            sorted((CFP / "verification" / "known").glob("*/*.jpg"))[:128], gallery.preparer(gallery.encoder()))])
        results = {
            "gallery": {"data": f"{CFP_NAME}/verification/known", "faces": report.faces,
                        "model": "facesearch/models/reference.onnx", "fingerprint": gallery.info()["model"]["fingerprint"]},
            "warm": warm(gallery, probe),
        }
        if args.candidate or args.rule:
            results["candidates"] = with_candidates(gallery, args.candidate, args.rule, probe)
    results["cold"] = cold(home, probe, args.runs)
    results["embed"] = embedding(faces)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "answering.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "answering.md").write_text(markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    lines = ["# Answering speed (benchmarks/answering.py)", "",
             f"Gallery: {r['gallery']['faces']} faces of `{r['gallery']['data']}`, shipped reference (ONNX).", "",
             "| cold command (new process) | median s | min s |", "|---|---|---|"]
    lines += [f"| `{k}` | {v['median_s']} | {v['min_s']} |" for k, v in r["cold"]["commands"].items()]
    lines += ["", f"The cold query takes {r['cold']['query_over_imports']}x a bare import of the libraries it "
              f"imports ({r['cold']['modules']} modules of {', '.join(r['cold']['libraries'])})."]
    w = r["warm"]
    lines += ["", "| warm query (in process), median ms | whole | prepare (decode, detect, align) | embed | search |",
              "|---|---|---|---|---|", f"| one probe photo | {w['query_ms']} | {w['prepare_ms']} | {w['embed_ms']} | {w['search_ms']} |"]
    if "candidates" in r:
        lines += ["", "| warm query, encoders (or rules) taking turns | median ms | ratio to the shipped |",
                  "|---|---|---|"]
        lines += [f"| `{name}` | {c['query_ms']} | {c['ratio']} |" for name, c in r["candidates"].items()]
    e = r["embed"]
    lines += ["", f"Embedding, same encoder: onnxruntime (runner: {e['runtime']}) against torch; minimum cosine "
              f"between their embeddings of {e['faces_compared']} aligned faces: {e['min_cosine']:.7f}.", "",
              "| batch | onnxruntime faces/s | torch faces/s | ratio |", "|---|---|---|---|"]
    lines += [f"| {row['batch']} | {row['onnxruntime_faces_per_s']} | {row['torch_faces_per_s']} | {row['ratio']} |" for row in e["rows"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
