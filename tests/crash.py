"""Crash consistency: ``kill -9`` a facesearch command at a chosen moment, then check the home.

Shared by the crash tests (a handful of kills) and ``benchmarks/reliability.py`` (a hundred).
After each kill: ``info`` works, no committed face is lost (the database still has at least
what it had before the command), the index agrees with the database once the gallery is
opened, an enrolled photo is still found, and re-running the command finishes the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CROP_ENCODER = Path(__file__).parent / "data" / "crop-encoder.pt"  # synthetic faces are crops

COMMANDS = {
    "enroll": lambda src: ["enroll", str(src), "--batch-size", "4", "--commit-every", "4"],
    "reembed": lambda src: ["enroll", str(src), "--reembed", "--model", str(CROP_ENCODER), "--flip", "--batch-size", "4"],
    "remove": lambda src: ["remove", "person_0001"],
    "index-ivf": lambda src: ["index", "ivf"],
    "index-hnsw": lambda src: ["index", "hnsw"],
    "index-flat": lambda src: ["index", "flat"],
    # serve's enroll: a serving process enrolling the folder through its own HTTP API
    "serve-enroll": lambda src: [SCRIPT, str(Path(__file__).with_name("serve_enroll.py")), str(src)],
}
SCRIPT = "<python script>"  # a COMMANDS entry that runs a script, not the facesearch CLI


@dataclass
class CrashRun:
    operation: str
    delay: float
    killed: bool  # False: the command had finished before the kill
    faces_before: int
    faces_after_kill: int
    faces_final: int
    expected_final: int
    problems: list[str]


def facesearch(args: list[str], home: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "FACESEARCH_MODEL": str(CROP_ENCODER), **(env or {}), "FACESEARCH_HOME": str(home)}
    environment["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), environment.get("PYTHONPATH", "")])
    command = [sys.executable, *args[1:]] if args[0] == SCRIPT else [sys.executable, "-m", "facesearch.cli.main", *args, "--json"]
    return subprocess.Popen(
        command,
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def run(args: list[str], home: Path, done_if: str | None = None) -> str:
    """Run a command to its end; ``done_if``: an error message meaning the job was already done
    (a remove that the killed run committed)."""
    process = facesearch(args, home)
    out, err = process.communicate(timeout=600)
    if process.returncode != 0 and not (done_if and done_if in err.decode()):
        raise RuntimeError(f"facesearch {' '.join(args)} failed: {err.decode()[-400:]}")
    return out.decode()


def state(home: Path, probe: Path | None, orphans: bool = True) -> tuple[int, list[str]]:
    """(faces, problems) of a home, opened as a new process would open it; ``orphans``: count
    uploads no face comes from as a problem (not right after a kill: the next server sweeps them)."""
    from facesearch.gallery.engine import Gallery

    problems = []
    with Gallery(home) as gallery:
        faces = int(gallery.info()["faces"])
        if faces:
            index = gallery.index.synced()  # what the next query searches (repaired if stale)
            if index.ntotal != faces:
                problems.append(f"the index holds {index.ntotal} vectors for {faces} faces")
            if probe is not None and gallery.query(probe).identity != probe.parent.name:
                problems.append(f"{probe} is no longer found")
        uploads = [p for p in gallery.home.uploads.glob("*/*") if p.is_file()]
        if uploads:  # serve's enroll keeps its uploads as sources: every one must be a face's
            used = gallery.store.stored_sources(str(p.resolve()) for p in uploads)
            if orphans and len(used) != len(uploads):
                problems.append(f"{len(uploads) - len(used)} uploads that no face comes from")
    return faces, problems


def crash_once(operation: str, source: Path, home: Path, delay: float, expected_final: int) -> CrashRun:
    """Kill ``operation`` ``delay`` seconds after its start; check; re-run it to the end."""
    probe = next((source / "person_0000").iterdir())
    before, _ = state(home, None)
    process = facesearch(COMMANDS[operation](source), home)
    time.sleep(delay)
    killed = process.poll() is None
    if killed:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    try:
        after, problems = state(home, probe if operation != "remove" else None, orphans=False)
    except Exception as exc:  # anything here is a failure to report, not to crash on
        return CrashRun(operation, delay, killed, before, -1, -1, expected_final, [f"cannot open: {exc}"])
    if after < before and operation not in ("remove",):
        problems.append(f"committed faces lost: {before} before, {after} after the kill")
    run(COMMANDS[operation](source), home, done_if="no identity" if operation == "remove" else None)
    final, more = state(home, probe if operation != "remove" else None)
    if final != expected_final:
        more.append(f"re-run ended with {final} faces, not {expected_final}")
    return CrashRun(operation, delay, killed, before, after, final, expected_final, problems + more)
