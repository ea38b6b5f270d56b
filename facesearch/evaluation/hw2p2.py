"""The CMU 11-785 HW2P2 formats: a flat probe folder (``unknown_dev/``, ``unknown_test/``),
its labels (``verification_dev.csv``: ``id,label``, or one ``label`` column in file-name
order), and the submission (``id,label`` answers, ``n000000`` for no one enrolled).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from facesearch import UNKNOWN
from facesearch.embedding.imaging import is_candidate
from facesearch.errors import InputError
from facesearch.fileio import atomic_write, read_text

LABELS_FILE = "verification_dev.csv"


def probe_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_candidate(p))
    if not files:
        raise InputError(f"{folder}: no probe images")
    return files


def find_labels(probes: Path) -> Path:
    """The default labels file: verification_dev.csv inside or beside the probe folder."""
    for candidate in (probes / LABELS_FILE, probes.parent / LABELS_FILE):
        if candidate.is_file():
            return candidate
    raise InputError(f"no labels for {probes}: pass --labels CSV (no {LABELS_FILE} inside or beside it)")


def read_labels(path: str | Path, files: list[Path]) -> dict[Path, str]:
    """``id,label`` rows (id = file name, with or without extension), or a single ``label``
    column in sorted file-name order (HW2P2). Every probe needs a label."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} not found")
    try:
        rows = list(csv.DictReader(io.StringIO(read_text(path), newline="")))
    except csv.Error as exc:
        raise InputError(f"{path}: not a CSV file ({exc})") from None
    if not rows or "label" not in rows[0]:
        raise InputError(f"{path}: needs a 'label' column (and optionally 'id')")
    for number, row in enumerate(rows, start=2):
        if any(row.get(column) is None for column in ("id", "label") if column in rows[0]):
            raise InputError(f"{path}:{number}: a row with fewer fields than the header")
    if "id" in rows[0]:
        by_id = {row["id"].strip(): row["label"].strip() for row in rows}
        labels = {}
        for file in files:
            label = by_id.get(file.name, by_id.get(file.stem))
            if label is None:
                raise InputError(f"{path}: no label for probe {file.name}")
            labels[file] = label
        return labels
    if len(rows) != len(files):
        raise InputError(f"{path}: {len(rows)} labels for {len(files)} probes (one per probe, in file-name order)")
    return {file: row["label"].strip() for file, row in zip(files, rows)}


def labelled_probes(probes: Path, labels: str | Path | None) -> tuple[list[Path], dict[Path, str]]:
    """The probe files and each one's label (``labels``, else the default labels file)."""
    files = probe_files(probes)
    return files, read_labels(labels or find_labels(probes), files)


def write_submission_file(out: str | Path, files: list[Path], answers: dict[Path, str]) -> int:
    """``id,label`` with every probe's answer (a probe with none, one that could not be
    decoded, is n000000), written atomically; returns how many are n000000."""
    labels = [answers.get(file, UNKNOWN) for file in files]
    with atomic_write(out) as handle:
        handle.write(("id,label\n" + "".join(f"{f.name},{label}\n" for f, label in zip(files, labels))).encode())
    return sum(1 for label in labels if label == UNKNOWN)
