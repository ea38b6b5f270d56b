"""Load test of `facesearch serve` on loopback: concurrent clients, then the same during an enroll.

    python benchmarks/serve_load.py [--clients 8] [--seconds 30] [--out benchmarks/results]

A fresh home holds the cfp-dev gallery (600 photos of 200 people) under the shipped reference
encoder; ``facesearch serve`` runs on a free 127.0.0.1 port with a token. ``--clients``
asyncio clients (httpx) post probe photos of ``verification/unknown_dev`` to ``/v1/query`` for
``--seconds``; then the same while ``facesearch enroll`` adds 600 more cfp-dev photos (the 4th to
6th of each known person) to the same home. Requests go to 127.0.0.1 only, bounded in time.
Recorded per phase: requests, throughput, p50/p95/p99 latency, errors (anything but 200, or a
400 "no face found", which is the right answer for the few probes MTCNN finds no face in, and
counted apart).
Writes serve_load.json and serve_load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CFP = ROOT.parent / "shared" / "datasets" / "cfp-dev"
TOKEN = "load-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def clients(base: str, probes: list[bytes], count: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    no_face = 0  # a probe in which MTCNN finds no face: 400 with that message, the CLI's answer too
    end = time.monotonic() + seconds

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal no_face
        i = number
        while time.monotonic() < end:
            data = probes[i % len(probes)]
            i += count
            start = time.perf_counter()
            try:
                response = await http.post(f"{base}/v1/query", files={"file": ("probe.jpg", data, "image/jpeg")},
                                           headers={"Authorization": f"Bearer {TOKEN}"})
                if response.status_code == 400 and "no face found" in response.text:
                    no_face += 1
                elif response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(n, http) for n in range(count)))
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies), "seconds": round(elapsed, 1), "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1), "errors": len(errors), "no_face": no_face, "first_errors": errors[:5],
    }


def wait_healthy(base: str, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("serve did not start within 60 s")


def more_photos(folder: Path) -> Path:
    """600 photos not in the gallery: the 4th to 6th of each known person (links, not copies)."""
    for person in sorted((CFP / "verification" / "known").iterdir()):
        photos = sorted((CFP / "images" / person.name).glob("*.jpg"))[3:6]
        (folder / person.name).mkdir(parents=True)
        for photo in photos:
            (folder / person.name / photo.name).symlink_to(photo)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facesearch-load-"))
    env = {**os.environ, "FACESEARCH_HOME": str(work / "home"), "FACESEARCH_TOKEN": TOKEN}
    env.pop("FACESEARCH_MODEL", None)
    cli = [sys.executable, "-m", "facesearch.cli.main"]
    subprocess.run([*cli, "enroll", str(CFP / "verification" / "known")], env=env, check=True, capture_output=True)
    probes = [p.read_bytes() for p in sorted((CFP / "verification" / "unknown_dev").glob("*.jpg"))[:200]]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(base, server)
        results = {"gallery_faces": 600, "clients": args.clients, "seconds": args.seconds}
        results["queries"] = asyncio.run(clients(base, probes, args.clients, args.seconds))
        enroll = subprocess.Popen([*cli, "enroll", str(more_photos(work / "more")), "--json"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        started = time.perf_counter()
        results["queries_during_enroll"] = asyncio.run(clients(base, probes, args.clients, args.seconds))
        out, _ = enroll.communicate(timeout=1800)
        report = json.loads(out)
        results["enroll"] = {"enrolled": report["enrolled"], "skipped": report["skipped"], "failed": len(report["failed"]),
                             "seconds": round(time.perf_counter() - started, 1), "exit": enroll.returncode}
        info = httpx.get(f"{base}/v1/info", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).json()
        results["faces_after"] = info["faces"]
    finally:
        server.terminate()
        log = server.communicate(timeout=60)[1]
    results["server_tracebacks"] = log.count("Traceback")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "serve_load.md").write_text(markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    lines = ["# Load test of `facesearch serve` (benchmarks/serve_load.py)", "",
             f"{r['clients']} concurrent clients on 127.0.0.1 posting cfp-dev probe photos to `/v1/query` for "
             f"{r['seconds']:g} s, one server process, a {r['gallery_faces']}-face gallery (shipped reference, "
             "MTCNN + alignment + ONNX).", "",
             "| phase | requests | per s | p50 ms | p95 ms | p99 ms | errors | no face (400, correct) |",
             "|---|---|---|---|---|---|---|---|"]
    for key, name in (("queries", "queries alone"), ("queries_during_enroll", "while `enroll` adds 600 photos")):
        q = r[key]
        lines.append(f"| {name} | {q['requests']} | {q['per_s']} | {q['p50_ms']} | {q['p95_ms']} | {q['p99_ms']} | {q['errors']} | {q['no_face']} |")
    e = r["enroll"]
    lines += ["", f"The enroll: {e['enrolled']} enrolled, {e['skipped']} skipped (already in the gallery), {e['failed']} failed, exit {e['exit']}, {e['seconds']} s "
              f"(during and after the second phase); faces in the gallery after: {r['faces_after']}; "
              f"tracebacks in the server's log: {r['server_tracebacks']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
