"""What the gallery answers: enroll reports and query results, as the CLI prints them.

Kept apart from the engine so that scripts, the CLI and (later) the HTTP server share one
definition of every JSON key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesearch import UNKNOWN
from facesearch.embedding.face_finding.base import Face
from facesearch.gallery.layouts import Problem


@dataclass(frozen=True)
class SeveralFaces:
    """A gallery photo with more than one face: its largest was enrolled."""

    path: Path
    faces: int
    taken: Face

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "faces": self.faces, "taken": self.taken.to_dict()}


@dataclass(frozen=True)
class Conflict:
    """One photo (by content) labelled as two or more people: enrolled under none of them
    (when it was enrolled before, under ``enrolled_as``, that face stays), so that the user
    decides rather than the order of the files."""

    paths: list[Path]
    identities: list[str]
    enrolled_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"paths": [str(p) for p in self.paths], "identities": self.identities, "enrolled_as": self.enrolled_as}


@dataclass
class EnrollReport:
    enrolled: int = 0
    skipped: int = 0
    failed: list[Problem] = field(default_factory=list)
    identities: int = 0
    faces: int = 0
    several_faces: list[SeveralFaces] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unnamed: int = 0  # of ``enrolled``, faces with no person (enroll --unnamed: every face of every photo)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: hash, decode (waiting on decode workers, detection included),
    embed, database, index."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "enrolled": self.enrolled,
            "skipped": self.skipped,
            "failed": [{"path": str(p.path), "error": p.error} for p in self.failed],
            "identities": self.identities,
            "faces": self.faces,
            "several_faces": [s.to_dict() for s in self.several_faces],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "unnamed": self.unnamed,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class Match:
    identity: str
    score: float
    image: str

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "score": self.score, "image": self.image}


@dataclass(frozen=True)
class FaceAnswer:
    """One face of a query photo and who it is. ``face`` is None when the photo was taken
    whole (an encoder of tight crops, no detector): its box is then the whole photo."""

    box: tuple[float, float, float, float]
    face: Face | None
    identity: str
    score: float | None
    matches: list[Match]
    group: dict[str, int] | None = None  # see QueryResult.group

    def to_dict(self) -> dict[str, Any]:
        where = self.face.to_dict() if self.face else {
            "box": [float(v) for v in self.box], "landmarks": None, "detection_score": None}
        out = {**where, "identity": self.identity, "score": self.score,
               "matches": [m.to_dict() for m in self.matches]}
        if self.group is not None:
            out["group"] = self.group
        return out


@dataclass(frozen=True)
class QueryResult:
    """The answer for one face; a photo's answer (``Gallery.query``) is its largest face's,
    with every face of the photo in ``faces``, largest first."""

    identity: str
    score: float | None
    threshold: float
    matches: list[Match]
    faces: list[FaceAnswer] = field(default_factory=list)
    group: dict[str, int] | None = None  # n000000, but seen before: {id, photos} of an unnamed group

    def to_dict(self) -> dict[str, Any]:
        out = {
            "identity": self.identity,
            "score": self.score,
            "threshold": self.threshold,
            "matches": [m.to_dict() for m in self.matches],
        }
        if self.group is not None:
            out["group"] = self.group
        if self.faces:
            out["faces"] = [f.to_dict() for f in self.faces]
        return out


def decide(matches: Sequence[Match], threshold: float) -> tuple[str, float | None]:
    """The open-set answer: the best identity, or n000000 when it scores below the threshold."""
    if not matches:
        return UNKNOWN, None
    best = matches[0]
    return (best.identity if best.score >= threshold else UNKNOWN), best.score
