"""How well faces were grouped into people, against their true names: BCubed and pairwise
precision, recall and F (the figures face-clustering papers report). An ungrouped face
(label -1) counts as a group of its own."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np


def _own_groups(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).copy()
    loose = labels < 0
    labels[loose] = labels.max(initial=0) + 1 + np.arange(int(loose.sum()))
    return labels


def bcubed(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Each face's precision (the share of its group that is its person) and recall (the
    share of its person in its group), averaged over faces; F their harmonic mean."""
    predicted, truth = _own_groups(predicted), np.asarray(truth)
    together = Counter(zip(predicted.tolist(), truth.tolist()))
    groups, people = Counter(predicted.tolist()), Counter(truth.tolist())
    precision = np.mean([together[(g, t)] / groups[g] for g, t in zip(predicted.tolist(), truth.tolist())])
    recall = np.mean([together[(g, t)] / people[t] for g, t in zip(predicted.tolist(), truth.tolist())])
    return _prf(float(precision), float(recall))


def pairwise(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Over all pairs of faces: precision of "same group" for "same person", and recall."""
    predicted, truth = _own_groups(predicted), np.asarray(truth)

    def pairs(counts: Counter) -> int:
        return sum(c * (c - 1) // 2 for c in counts.values())

    both = pairs(Counter(zip(predicted.tolist(), truth.tolist())))
    grouped, same = pairs(Counter(predicted.tolist())), pairs(Counter(truth.tolist()))
    return _prf(both / grouped if grouped else 1.0, both / same if same else 1.0)


def _prf(precision: float, recall: float) -> dict[str, float]:
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f": f}


def report(predicted: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """BCubed and pairwise figures, with how many groups and ungrouped faces."""
    predicted = np.asarray(predicted)
    return {"groups": int(len(set(predicted[predicted >= 0].tolist()))), "ungrouped": int(np.sum(predicted < 0)),
            "bcubed": bcubed(predicted, truth), "pairwise": pairwise(predicted, truth)}
