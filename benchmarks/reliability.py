"""Crash consistency under kill -9: every operation killed at random moments, the home checked.

    python benchmarks/reliability.py [--runs 100] [--out benchmarks/results]

Each run: a fresh home (enrolled first where the operation needs a gallery), the operation
started as its own process and killed with SIGKILL after a random delay (seeded), then the
checks of tests/crash.py: the home opens, no committed face is lost, the index agrees with
the database, an enrolled photo is still found, and re-running the operation finishes it.
Operations: the CLI's (tests/crash.py COMMANDS, serve's enroll among them) and, where a
PostgreSQL server can be started (tests/postgres.py), enroll and remove with the gallery on it
(``OP@postgresql``: a fresh database each run).
Writes reliability.json and reliability.md (runs, kills that landed mid-command, failures).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facesearch.synthetic import write_dataset  # noqa: E402
from tests import postgres  # noqa: E402
from tests.crash import COMMANDS, crash_once, run  # noqa: E402

NEEDS_GALLERY = {"reembed", "remove", "index-ivf", "index-hnsw", "index-flat"}
ON_POSTGRESQL = ("enroll", "remove")
SUFFIX = "@postgresql"
WINDOW = (0.3, 0.95)
"""Kills are drawn from this share of each operation's own duration on this machine, timed
once uncut at the start (its process start-up, when nothing is written yet, mostly left out):
fixed windows went stale as start-up got faster and most kills landed after the end."""


def on_database(operation: str, server: "postgres.PostgresServer | None") -> str:
    """The operation's CLI name; for ``OP@postgresql``, point the gallery at a fresh database."""
    os.environ.pop("FACESEARCH_DATABASE_URL", None)
    if operation.endswith(SUFFIX):
        assert server is not None
        os.environ["FACESEARCH_DATABASE_URL"] = server.url()
        return operation[: -len(SUFFIX)]
    return operation


def timed_uncut(operation: str, source: Path, home: Path, server: "postgres.PostgresServer | None") -> float:
    """Seconds one run of ``operation`` takes to the end, on a fresh home."""
    operation = on_database(operation, server)
    if operation in NEEDS_GALLERY:
        run(["enroll", str(source)], home)
    start = time.perf_counter()
    run(COMMANDS[operation](source), home)
    seconds = time.perf_counter() - start
    shutil.rmtree(home)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="kills in all, spread over the operations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="facesearch-crash-"))
    source = work / "people"
    write_dataset(source, identities=6, images_per_identity=8, seed=31)
    results, start = [], time.perf_counter()
    operations = list(COMMANDS)
    server = None
    if postgres.why_not() is None:
        server = postgres.PostgresServer().start()
        operations += [op + SUFFIX for op in ON_POSTGRESQL]
    else:
        print(f"not on PostgreSQL: {postgres.why_not()}", flush=True)
    durations = {op: timed_uncut(op, source, work / f"timing-{op}", server) for op in operations}
    print("uncut seconds: " + ", ".join(f"{op} {d:.1f}" for op, d in durations.items()), flush=True)
    for number in range(args.runs):
        named = operations[number % len(operations)]
        operation = on_database(named, server)
        home = work / f"home-{number}"
        if operation in NEEDS_GALLERY:
            run(["enroll", str(source)], home)
        delay = rng.uniform(WINDOW[0] * durations[named], WINDOW[1] * durations[named])
        expected = 40 if operation == "remove" else 48
        result = crash_once(operation, source, home, delay, expected)
        result.operation = named
        results.append(result)
        shutil.rmtree(home)
        status = "ok" if not result.problems else "; ".join(result.problems)
        print(f"{number + 1}/{args.runs} {named} killed at {delay:.1f} s "
              f"({'mid-run' if result.killed else 'after it ended'}): {status}", flush=True)
    shutil.rmtree(work)
    if server is not None:
        server.stop()
    write(args.out, results, time.perf_counter() - start, args)


def write(out: Path, results: list, seconds: float, args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for r in results:
        row = rows.setdefault(r.operation, {"runs": 0, "killed_mid_run": 0, "failures": 0})
        row["runs"] += 1
        row["killed_mid_run"] += int(r.killed)
        row["failures"] += int(bool(r.problems))
    payload = {"runs": len(results), "seconds": round(seconds, 1), "seed": args.seed, "by_operation": rows,
               "window": f"{WINDOW[0]}-{WINDOW[1]} of each operation's uncut duration",
               "failures": [asdict(r) for r in results if r.problems]}
    (out / "reliability.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Crash consistency (kill -9)", "",
        f"`python benchmarks/reliability.py --runs {args.runs} --seed {args.seed}`: {len(results)} runs in "
        f"{seconds / 60:.1f} min on this machine. Each run kills the operation with SIGKILL at a random "
        f"moment ({WINDOW[0]:.0%} to {WINDOW[1]:.0%} of its uncut duration, timed at the start), then checks the home opens, no committed face is lost, the index agrees with the "
        "database, an enrolled photo is still found, and re-running the operation finishes it.", "",
        "| operation | runs | killed mid-run | failures |", "|---|---|---|---|",
    ]
    lines += [f"| `{op}` | {r['runs']} | {r['killed_mid_run']} | {r['failures']} |" for op, r in rows.items()]
    (out / "reliability.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
