"""Grouping faces into people (facesearch.people.clustering) and the figures that judge it
(facesearch.evaluation.clustering), on vectors whose people are known."""

from __future__ import annotations

import numpy as np
import pytest

from facesearch.evaluation.clustering import bcubed, pairwise, report
from facesearch.people.clustering import METHODS, dbscan_baseline, group


def people(count: int = 12, photos: int = 6, spread: float = 0.08, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, dim))
    truth = np.repeat(np.arange(count), photos)
    vectors = centres[truth] / np.linalg.norm(centres[truth], axis=1, keepdims=True) + spread * rng.normal(size=(len(truth), dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), truth


def test_bcubed_and_pairwise_by_hand() -> None:
    truth = np.array([0, 0, 0, 1, 1])
    assert bcubed(np.array([5, 5, 5, 7, 7]), truth) == {"precision": 1.0, "recall": 1.0, "f": 1.0}
    merged = bcubed(np.array([1, 1, 1, 1, 1]), truth)
    assert merged["recall"] == 1.0 and merged["precision"] == pytest.approx((3 * 3 / 5 + 2 * 2 / 5) / 5)
    loose = bcubed(np.array([-1, -1, -1, -1, -1]), truth)  # every face its own group
    assert loose["precision"] == 1.0 and loose["recall"] == pytest.approx((3 * 1 / 3 + 2 * 1 / 2) / 5)
    assert pairwise(np.array([1, 1, 1, 1, 1]), truth)["precision"] == pytest.approx(4 / 10)


@pytest.mark.parametrize("method", METHODS)
def test_separate_people_are_found(method: str) -> None:
    vectors, truth = people()
    labels = group(vectors, method, threshold=0.5, min_faces=2)
    assert report(labels, truth)["bcubed"]["f"] == 1.0
    assert labels.tolist() == sorted(labels.tolist())  # numbered by first face: people come in order here


@pytest.mark.parametrize("method", METHODS)
def test_grouping_is_deterministic_and_order_free(method: str) -> None:
    vectors, truth = people(spread=0.1, seed=3)
    first, again = group(vectors, method, 0.45), group(vectors, method, 0.45)
    assert np.array_equal(first, again)
    order = np.random.default_rng(1).permutation(len(vectors))
    shuffled = group(vectors[order], method, 0.45)
    assert bcubed(shuffled, first[order])["f"] == 1.0  # the same partition, whatever the order


def test_average_linkage_does_not_chain_two_people_through_one_pair() -> None:
    """Two people whose closest photos look alike (one pair above the threshold): the
    density rule joins them through that pair, average linkage keeps them apart."""
    vectors, truth = people(count=2, photos=8, spread=0.05, seed=5)
    bridge = (vectors[0] + vectors[8]) / np.linalg.norm(vectors[0] + vectors[8])
    vectors[0], vectors[8] = bridge, bridge * 0.999 + 0.001 * vectors[9]
    vectors[8] /= np.linalg.norm(vectors[8])
    assert float(vectors[0] @ vectors[8]) > 0.9
    linked = group(vectors, "linkage", threshold=0.5, min_faces=2)
    assert len(set(linked[1:8].tolist())) == 1 and linked[1] != linked[9]
    assert len(set(group(vectors, "density", threshold=0.5, min_faces=2).tolist())) == 1  # chained


def test_small_groups_stay_ungrouped_and_the_baseline_runs() -> None:
    vectors, truth = people(count=4, photos=5)
    lonely = np.random.default_rng(9).normal(size=(3, vectors.shape[1])).astype(np.float32)
    lonely /= np.linalg.norm(lonely, axis=1, keepdims=True)
    labels = group(np.concatenate([vectors, lonely]), "linkage", 0.5, min_faces=2)
    assert (labels[-3:] == -1).all() and (labels[:-3] >= 0).all()
    assert report(dbscan_baseline(vectors), truth)["bcubed"]["f"] == 1.0
    assert group(np.zeros((0, 8), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="unknown grouping method"):
        group(vectors, "kmeans")


def test_new_faces_join_their_groups_and_groups_keep_their_numbers() -> None:
    from facesearch.people.clustering import extend

    vectors, truth = people(count=6, photos=6, seed=7)
    first = np.isin(np.arange(len(truth)) % 6, [0, 1, 2])  # half of each of the first people's photos
    first &= truth < 4
    old = group(vectors[first], "linkage", 0.5)
    old = np.where(old >= 0, old + 10, -1)  # the gallery's numbers, whatever they are
    order = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first)])
    labels = extend(vectors[order], old, 0.5)
    assert np.array_equal(labels[: len(old)], old)  # not renumbered
    mapped = dict(zip(truth[order][: len(old)].tolist(), old.tolist()))
    for face, person in zip(labels[len(old):], truth[order][len(old):]):
        if person in mapped:
            assert face == mapped[person]  # a known person's new photo joins their group
        else:
            assert face > max(old)  # a new person is a new group, after the old numbers
    assert report(labels, truth[order])["bcubed"]["f"] == 1.0


def test_two_existing_groups_are_never_merged() -> None:
    from facesearch.people.clustering import extend

    vectors, truth = people(count=1, photos=8, seed=2)  # one person, split in two by the user
    labels = extend(vectors, np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.5)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
