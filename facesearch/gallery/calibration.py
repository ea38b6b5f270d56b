"""Where a gallery draws the line between a name and ``n000000``, without labelled probes.

The threshold is an operating point: the false-positive identification rate (FPIR), the
share of people who are not enrolled and still get a name. Two sources, neither needing a
user's labels:

* ``encoder``: the encoder states it (its sidecar's or model file's ``calibration``: the
  threshold at a stated FPIR, measured on a labelled set such as cfp-dev); a new gallery
  starts there when its scoring rule and flip setting are those it was measured under.
* ``fpir``: the gallery's own photos (``estimate``). Each enrolled person is, in turn, a
  stranger to everyone else: each of their photos is answered against the gallery as a query
  would be (the index, the scoring rule), with their own name left out, and its best score
  is what a stranger would score. The threshold is where ``rate`` of those would get a name.

Either is replaced by ``bench --tune`` (labels) or ``threshold VALUE`` (by hand).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from facesearch.errors import InputError
from facesearch.gallery import scoring
from facesearch.gallery.store import Store
from facesearch.index.base import SearchIndex

DEFAULT_FPIR = 0.10
"""The operating point used when nothing else says one: one stranger in ten gets a name. On
cfp-dev the shipped reference's open-set accuracy there is within 0.01 of the tuned figure."""

BATCH = 1024  # stranger queries answered at once
SAMPLE = 10_000
"""Stranger queries at most: a rate near 0.1 estimated from 10,000 has a binomial standard
error of 0.003, and the work is bounded at 10,000 searches however large the gallery (not
timed at a million faces)."""
FOLLOW = 0.1
"""See ``stale``: each enroll of a small gallery, every tenth more people in a large one (an
estimate costs up to ``SAMPLE`` searches)."""
UNLIKE = 1.5
"""See ``unlike_calibration``. The shipped student states FPIR 0.15 on cfp-dev; its galleries'
own estimates at that threshold (benchmarks/results/threshold_travel.md) were 0.16 on cfp-dev
as is (observed 0.147), 0.28 on grey 48 px faces (observed 0.24) and 0.64 on video frames
(observed 0.46): 1.5 says so for the two kinds of photos it does not travel to, and leaves
cfp-dev's own photos a margin."""


@dataclass(frozen=True)
class Estimate:
    threshold: float
    fpir: float
    estimated_from: int  # stranger queries: one per enrolled photo (of the sample, in a large gallery)


def check_rate(rate: float) -> float:
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 < rate < 1.0):
        raise InputError(f"--fpir {rate} is not a rate strictly between 0 and 1 (0.05: one stranger in twenty gets a name)")
    return float(rate)


def threshold_at(scores: np.ndarray, rate: float) -> float:
    """The lowest threshold at which at most ``rate`` of ``scores`` are at or above it (a
    query is named when its score >= threshold)."""
    ordered = np.sort(np.asarray(scores, np.float64))[::-1]
    allowed = int(math.floor(rate * len(ordered)))
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else float(ordered[-1])


def stranger_scores(index: SearchIndex, store: Store, rule: str, most: int = SAMPLE) -> np.ndarray:
    """Every enrolled photo's best score against the people who are not its own, as a query
    under ``rule`` would score them; in a gallery of more than ``most`` faces, those of a
    seeded sample of ``most`` (the same sample each time the gallery is the same)."""
    state, ids = store.snapshot_ids()
    if len(ids) > most:
        ids = np.sort(np.random.default_rng(0).choice(ids, most, replace=False))
    records = store.faces(ids.tolist())  # named people's faces: unnamed ones are nobody's strangers
    ids = np.array([i for i in ids.tolist() if i in records], np.int64)
    people = {r.identity for r in records.values()}
    if len(people) < 2:
        raise InputError(f"the gallery has {len(people)} person: a label-free threshold needs at least two "
                         "(each is a stranger to the others)")
    best = np.empty(len(ids), np.float64)
    for start in range(0, len(ids), BATCH):
        chunk, vectors = store.embeddings(ids[start : start + BATCH], state.dim)
        ranked = scoring.rank(index, store, vectors, 2, rule)  # own and one other at least
        for row, (face_id, matches) in enumerate(zip(chunk, ranked)):
            own = records[int(face_id)].identity
            best[start + row] = next((m.score for m in matches if m.identity != own), -1.0)
    return best


def estimate(scores: np.ndarray, rate: float) -> Estimate:
    """The gallery's own threshold at FPIR ``rate``, from its ``stranger_scores`` (see the
    module's docstring)."""
    return Estimate(threshold_at(scores, check_rate(rate)), rate, len(scores))


def share_named(scores: np.ndarray, threshold: float) -> Estimate:
    """What ``threshold`` means on the gallery's own photos: the share of its stranger queries
    (``stranger_scores``) that it would name (the inverse of ``estimate``)."""
    return Estimate(float(threshold), float(np.mean(scores >= threshold)), len(scores))


def stale(people_then: int | None, people_now: int) -> bool:
    """Whether a threshold estimated among ``people_then`` people wants estimating again:
    the gallery has two people or more, and their number has changed by ``FOLLOW`` or more
    (the best score a stranger finds grows with the people there are to find)."""
    if people_now < 2:
        return False
    if not people_then:
        return True
    return abs(people_now - people_then) >= FOLLOW * people_then - 1e-9  # 1e-9: 0.1 * 100 is not 10 in floats


def unlike_calibration(stated_fpir: float, estimated_fpir: float) -> bool:
    """Whether a gallery's photos are unlike those its encoder was calibrated on: its own
    strangers would be named at over ``UNLIKE`` times the FPIR the encoder states."""
    return estimated_fpir > UNLIKE * stated_fpir


def encoder_threshold(calibration: dict[str, Any] | None, rule: str, flip: bool) -> float | None:
    """The encoder's stated threshold, if it was measured under this scoring rule and flip."""
    if not calibration:
        return None
    if calibration.get("scoring", "nearest") != rule or bool(calibration.get("flip", False)) != flip:
        return None
    value = calibration.get("threshold")
    return float(value) if isinstance(value, (int, float)) and -1.0 <= value <= 1.0 else None
