"""Verification metrics (checked against brute force and sklearn) and the pairs reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facesearch.errors import InputError
from facesearch.evaluation.metrics import best_threshold, kfold_accuracy, roc_auc, tar_at_far, verification_report
from facesearch.models import build_encoder
from facesearch.evaluation.verification import evaluate_pairs, read_pairs
from tests.conftest import CFP, needs_datasets


def noisy_scores(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.5
    return rng.normal(0.3, 0.2, n) + 0.3 * same, same


def test_best_threshold_matches_brute_force() -> None:
    scores, same = noisy_scores()
    threshold, accuracy = best_threshold(scores, same)
    brute = max(np.mean((scores >= t) == same) for t in np.concatenate([scores, [np.inf]]))
    assert accuracy == pytest.approx(brute)
    assert np.mean((scores >= threshold) == same) == pytest.approx(accuracy)


def test_kfold_accuracy_picks_each_threshold_on_the_other_folds() -> None:
    scores, same = noisy_scores(seed=1)
    folds = np.arange(len(scores)) % 10
    mean, spread = kfold_accuracy(scores, same, folds)
    expected = []
    for fold in range(10):
        test = folds == fold
        t, _ = best_threshold(scores[~test], same[~test])
        expected.append(np.mean((scores[test] >= t) == same[test]))
    assert (mean, spread) == pytest.approx((np.mean(expected), np.std(expected)))
    assert kfold_accuracy(same.astype(float), same, folds) == (1.0, 0.0)


def test_roc_auc_and_tar_at_far() -> None:
    scores, same = noisy_scores(seed=2)
    assert roc_auc(scores, same) == pytest.approx(roc_auc_score(same, scores))
    with pytest.raises(ValueError):
        roc_auc(scores, np.ones_like(same))
    # 100 impostors at 0..0.99, genuines above 0.985 except one: at FAR 1% only the impostor
    # at 0.99 may pass, so the genuine at 0.5 is rejected and TAR is 9/10.
    impostors = np.arange(100) / 100
    genuines = np.array([0.5] + [0.995] * 9)
    tar = tar_at_far(np.concatenate([impostors, genuines]), np.r_[np.zeros(100), np.ones(10)].astype(bool))
    assert tar == {"0.01": pytest.approx(0.9), "0.001": pytest.approx(0.9)}


def write_lfw(root: Path, names: dict[str, int]) -> Path:
    from facesearch.synthetic import make_face

    for k, (name, count) in enumerate(names.items()):
        (root / name).mkdir(parents=True)
        for n in range(1, count + 1):
            make_face(k, n, 112, 0).save(root / name / f"{name}_{n:04d}.jpg")
    return root


def test_read_pairs_and_evaluate(tmp_path: Path) -> None:
    images = write_lfw(tmp_path / "img", {"Amar'e_Stoudemire": 3, "B": 2})
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text(
        "2\t1\nAmar'e_Stoudemire\t1\t2\nAmar'e_Stoudemire\t3\tB\t1\n"
        "B\t1\t2\nB\t2\tAmar'e_Stoudemire\t1\n"
    )
    pairs = read_pairs(pairs_file, images)
    assert len(pairs) == 4 and len(pairs.images) == 5
    assert pairs.same.tolist() == [True, False, True, False] and pairs.folds.tolist() == [0, 0, 1, 1]
    report = evaluate_pairs(build_encoder(), pairs, workers=0)
    assert report["pairs"] == 4 and 0.0 <= report["roc_auc"] <= 1.0
    assert set(report["tar_at_far"]) == {"0.01", "0.001"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "first line"),
        ("ten\t1\n", "first line"),
        ("1\t1\nB\t1\t2\nB\t1\tB\t2\n", "at least 2 folds"),
        ("2\t1\nB\t1\t2\n", "promises 4 pairs"),
        ("2\t1\nB\t1\t2\nB\t1\nB\t1\t2\nB\t1\tB\t2\n", "3 or 4"),
        ("2\t1\nB\t1\t9\nB\t1\tB\t2\nB\t1\t2\nB\t1\tB\t2\n", "not found"),
        ("2\t1\nB\tone\t2\nB\t1\tB\t2\nB\t1\t2\nB\t1\tB\t2\n", "not an integer"),
    ],
)
def test_malformed_pairs_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    images = write_lfw(tmp_path / "img", {"B": 2})
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text(text)
    with pytest.raises(InputError, match=message):
        read_pairs(pairs_file, images)


@needs_datasets(CFP)
def test_cfp_pairs_files_parse() -> None:
    for name in ("pairs.txt", "pairs_profile.txt"):
        pairs = read_pairs(CFP / name, CFP / "images")
        assert len(pairs) == 3000 and pairs.same.sum() == 1500
        assert np.bincount(pairs.folds).tolist() == [300] * 10


def test_report_keys_follow_the_contract() -> None:
    scores, same = noisy_scores()
    report = verification_report(scores, same, np.arange(len(scores)) % 10)
    assert set(report) == {"pairs", "roc_auc", "accuracy", "accuracy_std", "tar_at_far"}
