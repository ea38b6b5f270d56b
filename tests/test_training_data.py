"""Training data: labels from folders, a seeded stratified split, balanced sampling, augmentations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from facesearch.synthetic import write_dataset
from facesearch.training.augment import AugmentConfig, train_transform
from facesearch.training.labelled import (
    FaceClassification,
    balanced_sampler,
    collate_labelled,
    labelled_folder,
    stratified_split,
)
from tests import badfiles


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    write_dataset(root, identities=4, images_per_identity=5, seed=3)
    write_dataset(root, identities=1, images_per_identity=1, seed=3, first_identity=10)  # one photo
    return root


def test_labels_come_from_folder_names(folder: Path) -> None:
    samples, names = labelled_folder(folder)
    assert names == ["person_0000", "person_0001", "person_0002", "person_0003", "person_0010"]
    assert len(samples) == 21 and all(path.parent.name == names[label] for path, label in samples)


def test_stratified_split_is_seeded_and_keeps_singletons(folder: Path) -> None:
    samples, _ = labelled_folder(folder)
    train, held = stratified_split(samples, 0.2, seed=1)
    assert stratified_split(samples, 0.2, seed=1) == (train, held)
    assert stratified_split(samples, 0.2, seed=2) != (train, held)
    assert Counter(label for _, label in held) == {0: 1, 1: 1, 2: 1, 3: 1}
    assert 4 in {label for _, label in train} and not set(train) & set(held)


def test_balanced_sampler_draws_classes_equally() -> None:
    samples = [(Path(f"a{i}"), 0) for i in range(90)] + [(Path(f"b{i}"), 1) for i in range(10)]
    drawn = Counter(samples[i][1] for _ in range(20) for i in balanced_sampler(samples, seed=_))
    assert 0.4 < drawn[1] / sum(drawn.values()) < 0.6


@pytest.mark.parametrize("switch", ["none", "all"])
def test_augmentations_keep_shape_and_range(folder: Path, switch: str) -> None:
    config = AugmentConfig(*([switch == "all"] * 7))
    samples, _ = labelled_folder(folder)
    dataset = FaceClassification(samples, train_transform(config), 112)
    image, label = dataset[0]
    assert image.shape == (3, 112, 112) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0 + 1e-6 and label == samples[0][1]


def test_bad_files_are_dropped_from_the_batch(tmp_path: Path) -> None:
    write_dataset(tmp_path, identities=2, images_per_identity=2, seed=4)
    badfiles.truncated_jpeg(tmp_path / "person_0001" / "bad.jpg")
    samples, _ = labelled_folder(tmp_path)
    dataset = FaceClassification(samples, train_transform(AugmentConfig()), 112)
    loader = DataLoader(dataset, batch_size=8, collate_fn=collate_labelled)
    images, labels = next(iter(loader))
    assert images.shape[0] == labels.shape[0] == 4
