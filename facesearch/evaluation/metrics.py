"""Verification metrics on similarity scores: ROC-AUC, k-fold accuracy, TAR at FAR.

Pure functions of (scores, same-person labels) so training validation, ``bench`` and the
tests all compute the same figures the same way; sklearn does the curve arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

FARS = (1e-2, 1e-3)


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC of ``scores`` separating same-person (True) from different pairs."""
    same = np.asarray(same, bool)
    if same.all() or not same.any():
        raise ValueError("ROC-AUC needs both same-person and different-person pairs")
    return float(roc_auc_score(same, scores))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``score >= threshold`` on these pairs.

    Candidates are midpoints between consecutive distinct scores (plus both ends), so the
    chosen threshold generalises sensibly to the held-out fold instead of sitting on a sample.
    """
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_same = scores[order], same[order]
    distinct = np.unique(sorted_scores)
    candidates = np.concatenate(
        [[distinct[0] - 1e-6], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1e-6]]
    )
    # Pairs below a candidate are called "different": correct for the different-person ones.
    below = np.searchsorted(sorted_scores, candidates, side="left")
    diff_below = np.concatenate([[0], np.cumsum(~sorted_same)])[below]
    same_above = same.sum() - np.concatenate([[0], np.cumsum(sorted_same)])[below]
    correct = diff_below + same_above
    best = int(np.argmax(correct))
    return float(candidates[best]), float(correct[best] / len(scores))


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: Sequence[int] | np.ndarray
) -> tuple[float, float]:
    """LFW protocol: for each fold, pick the threshold on the other folds, test on this one.

    Returns (mean accuracy, standard deviation) over the folds.
    """
    scores, same, folds = np.asarray(scores), np.asarray(same, bool), np.asarray(folds)
    accuracies = []
    for fold in np.unique(folds):
        test = folds == fold
        threshold, _ = best_threshold(scores[~test], same[~test])
        accuracies.append(float(np.mean((scores[test] >= threshold) == same[test])))
    return float(np.mean(accuracies)), float(np.std(accuracies))


def tar_at_far(scores: np.ndarray, same: np.ndarray, fars: Sequence[float] = FARS) -> dict[str, float]:
    """True accept rate at each false accept rate, read off the ROC (keys as ``"0.001"``)."""
    fpr, tpr, _ = roc_curve(np.asarray(same, bool), scores)
    # The highest TAR among operating points whose FAR does not exceed the target.
    return {f"{far:g}": float(tpr[fpr <= far].max(initial=0.0)) for far in fars}


def verification_report(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict[str, object]:
    """The pairs figures of the contract (docs/design.md): roc_auc, accuracy, accuracy_std, tar_at_far."""
    accuracy, spread = kfold_accuracy(scores, same, folds)
    return {
        "pairs": int(len(scores)),
        "roc_auc": roc_auc(scores, same),
        "accuracy": accuracy,
        "accuracy_std": spread,
        "tar_at_far": tar_at_far(scores, same),
    }
