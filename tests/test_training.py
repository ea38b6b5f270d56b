"""The training run: each phase learns, resume is exact, checkpoints and options are checked."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch

from facesearch.errors import InputError
from facesearch.models import load_encoder
from facesearch.synthetic import write_dataset, write_pairs
from facesearch.training import EpochRecord, TrainConfig, train
from facesearch.training.augment import AugmentConfig
from tests.conftest import DATASETS, cli, cli_json, needs_datasets


class Interrupted(Exception):
    pass


def interrupt_after(epoch: int):  # noqa: ANN201
    def on_epoch(record: EpochRecord) -> None:
        if record.epoch == epoch:
            raise Interrupted

    return on_epoch


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train") / "people"
    write_dataset(root, identities=6, images_per_identity=6, seed=2)
    return root


def small_config(data: Path, out: Path, **changes: object) -> TrainConfig:
    """3 epochs per phase of 3 batches; no augmentation so losses are comparable across epochs."""
    base = TrainConfig(
        data=str(data), out=str(out), epochs=3, arcface_epochs=3, batch_size=12, lr=0.05,
        scale=32.0, margin=0.3, warmup_epochs=0.5, holdout=0.0, workers=0,
        augment=AugmentConfig(hflip=False, resized_crop=False, color_jitter=False),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def reference(people: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, list[EpochRecord]]:
    """One uninterrupted run that the other tests compare against."""
    config = small_config(people, tmp_path_factory.mktemp("ref") / "model.pt")
    return config, train(config).history


def losses(history: list[EpochRecord]) -> list[float]:
    return [record.train_loss for record in history]


def test_each_phase_lowers_its_training_loss(reference: tuple[TrainConfig, list[EpochRecord]]) -> None:
    _, history = reference
    assert [r.phase for r in history] == ["classify"] * 3 + ["arcface"] * 3
    phase1, phase2 = losses(history[:3]), losses(history[3:])
    assert phase1[-1] < phase1[0] * 0.8, phase1
    assert phase2[-1] < phase2[0] * 0.9, phase2


def test_resumed_run_reproduces_the_uninterrupted_one(
    reference: tuple[TrainConfig, list[EpochRecord]], tmp_path: Path
) -> None:
    ref_config, ref_history = reference
    config = dataclasses.replace(ref_config, out=str(tmp_path / "model.pt"))
    # Stopped mid phase 1, then again mid phase 2: both optimisers' states must come back.
    with pytest.raises(Interrupted):
        train(config, on_epoch=interrupt_after(2))
    with pytest.raises(Interrupted):
        train(config, resume=True, on_epoch=interrupt_after(5))
    history = train(config, resume=True).history
    assert [r.epoch for r in history] == [1, 2, 3, 4, 5, 6]
    assert losses(history) == pytest.approx(losses(ref_history), rel=1e-5)


def test_model_file_is_the_best_epoch_and_loads(reference: tuple[TrainConfig, list[EpochRecord]]) -> None:
    config, history = reference
    encoder, _ = load_encoder(config.out)
    assert encoder.config.backbone == config.backbone
    payload = torch.load(config.out, weights_only=True)
    best = [r for r in history if r.best][-1]
    assert payload["meta"]["epoch"] == best.epoch
    assert payload["meta"]["recipe"]["loss"] == "arcface"
    rows = list(csv.DictReader((Path(f"{config.out}.run") / "log.csv").open()))
    assert [float(row["train_loss"]) for row in rows] == pytest.approx(losses(history))


def test_resume_refuses_a_run_with_other_options(
    reference: tuple[TrainConfig, list[EpochRecord]], tmp_path: Path
) -> None:
    config, _ = reference
    other = dataclasses.replace(config, lr=0.2, out=str(tmp_path / "other.pt"), run_dir=f"{config.out}.run")
    with pytest.raises(InputError, match="lr: 0.05 -> 0.2"):
        train(other, resume=True)


def test_phase1_checkpoint_can_be_fine_tuned_with_another_loss(
    reference: tuple[TrainConfig, list[EpochRecord]], tmp_path: Path
) -> None:
    config, ref_history = reference
    fork = dataclasses.replace(config, loss="normsoftmax", out=str(tmp_path / "norm.pt"))
    history = train(fork, checkpoint=Path(f"{config.out}.run") / "phase1.pt").history
    assert [r.phase for r in history] == ["classify"] * 3 + ["normsoftmax"] * 3
    assert losses(history[:3]) == losses(ref_history[:3])  # phase 1 is carried over, not re-run


def test_init_starts_from_a_model_files_weights_and_classifier(
    reference: tuple[TrainConfig, list[EpochRecord]], tmp_path: Path
) -> None:
    """With a zero learning rate nothing moves, so the fine-tune's model file shows exactly
    where it started: the --init encoder, and a margin head built from its classifier."""
    config, _ = reference
    start = torch.load(config.out, weights_only=True)
    tuned = small_config(Path(config.data), tmp_path / "tuned.pt", epochs=0, arcface_epochs=1, steps_per_epoch=1,
                         arcface_lr=0.0, weight_decay=0.0, init=config.out)
    train(tuned)
    after = torch.load(tuned.out, weights_only=True)
    weights = [k for k, v in start["state_dict"].items() if k.endswith("weight") and v.ndim > 1]
    assert weights and all(torch.equal(after["state_dict"][k], start["state_dict"][k]) for k in weights)
    assert after["meta"]["recipe"]["init"] == Path(config.out).name  # portable: no path of this machine
    assert after["classifier"]["kind"] == "cosine"
    centres = torch.nn.functional.normalize(start["classifier"]["weight"].float(), dim=1)
    assert torch.allclose(after["classifier"]["weight"].float(), centres, atol=1e-3)


def test_init_refuses_a_model_of_another_shape(reference: tuple[TrainConfig, list], tmp_path: Path) -> None:
    config, _ = reference
    other = small_config(Path(config.data), tmp_path / "m.pt", input_size=64, init=config.out)
    with pytest.raises(InputError, match="input_size 112 .this run: 64."):
        train(other)


def test_init_of_another_embedding_size_gives_its_backbone(reference: tuple[TrainConfig, list], tmp_path: Path) -> None:
    """A student of a teacher's dimension starts from a 512-d model's backbone, head fresh."""
    config, _ = reference
    start = torch.load(config.out, weights_only=True)["state_dict"]
    narrow = small_config(Path(config.data), tmp_path / "m.pt", embedding_dim=64, init=config.out, epochs=1,
                          arcface_epochs=0, steps_per_epoch=1, lr=0.0, weight_decay=0.0)
    train(narrow)
    after = torch.load(narrow.out, weights_only=True)["state_dict"]
    backbone = [k for k, v in start.items() if k.startswith("backbone.") and k.endswith("weight") and v.ndim > 1]
    assert backbone and all(torch.equal(after[k], start[k]) for k in backbone)
    assert after["head.4.weight"].shape == (64, 576)  # the GDC head of the new size


def test_resume_without_checkpoint_or_with_a_corrupt_one(people: Path, tmp_path: Path) -> None:
    config = small_config(people, tmp_path / "m.pt")
    with pytest.raises(InputError, match="no checkpoint"):
        train(config, resume=True)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        train(config, checkpoint=bad)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"backbone": "vgg99"}, "unknown backbone"),
        ({"loss": "cosface"}, "unknown loss"),
        ({"scheduler": "linear"}, "unknown scheduler"),
        ({"epochs": 0, "arcface_epochs": 0}, "nothing to train"),
        ({"val_pairs": "pairs.txt"}, "go together"),
        ({"input_size": 16}, "too small"),
    ],
)
def test_bad_options_are_refused(people: Path, tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        small_config(people, tmp_path / "m.pt", **changes)


def test_plateau_scheduler_and_balanced_sampling_run(people: Path, tmp_path: Path) -> None:
    config = small_config(
        people, tmp_path / "m.pt", epochs=2, arcface_epochs=1, scheduler="plateau", balanced=True,
        holdout=0.2, steps_per_epoch=2,
    )
    report = train(config)
    assert report.heldout_images == 6 and report.selected_by == "heldout_accuracy"
    assert all(r.heldout_accuracy is not None for r in report.history)


def test_a_smaller_input_size_reaches_images_read_from_disk(people: Path, tmp_path: Path) -> None:
    config = small_config(
        people, tmp_path / "m.pt", epochs=1, arcface_epochs=0, steps_per_epoch=1, holdout=0.2, cache=False,
        input_size=48,
    )
    report = train(config)
    assert report.history[0].heldout_accuracy is not None
    assert load_encoder(config.out)[0].config.input_size == 48


def test_separate_dev_folder_counts_only_training_people(people: Path, tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    write_dataset(dev, identities=8, images_per_identity=2, seed=2, first_sample=6)  # 2 unknown people
    config = small_config(people, tmp_path / "m.pt", epochs=1, arcface_epochs=0, steps_per_epoch=1, val_dir=str(dev))
    report = train(config)
    assert report.train_images == 36 and report.heldout_images == 12
    assert report.history[0].heldout_accuracy is not None


def test_cli_train_with_pairs_then_enroll(people: Path, tmp_path: Path, home: Path) -> None:
    pairs = write_pairs(tmp_path / "unseen", 6, images_per_identity=3, folds=2, per_fold=4, first_identity=50)
    images = tmp_path / "unseen" / "images"
    out = tmp_path / "cli.pt"
    result = cli_json(
        "train", people, "--out", out, "--epochs", 1, "--arcface-epochs", 1, "--batch-size", 12,
        "--workers", 0, "--val-pairs", pairs, "--val-images", images, "--augment", "hflip",
        "--input-size", 64,
    )
    assert result["model"] == str(out) and result["epochs"] == 2
    assert result["selected_by"] == "roc_auc"
    assert set(result["validation"]) >= {"roc_auc", "pairs_accuracy", "heldout_accuracy"}
    assert load_encoder(out)[0].config.input_size == 64  # the crop side travels with the model
    enrolled = cli_json("enroll", people, "--model", out)
    assert enrolled["enrolled"] == 36
    assert cli_json("query", next(people.glob("*/*.jpg")))["identity"]


def test_cli_train_bad_input(tmp_path: Path, people: Path) -> None:
    assert "no such folder" in cli_json("train", tmp_path / "missing", "--out", tmp_path / "m.pt", code=1)["error"]
    result = cli("train", people, "--out", tmp_path / "m.pt", "--augment", "sepia")
    assert result.exit_code == 2 and "sepia" in result.stderr


FIW = DATASETS / "fiw" / "train"


@needs_datasets(FIW)
def test_fiw_subset_each_phase_lowers_its_loss(tmp_path: Path) -> None:
    """100 real people (links, not copies), two short epochs per phase."""
    subset = tmp_path / "fiw100"
    subset.mkdir()
    for person in sorted(FIW.iterdir())[:100]:
        (subset / person.name).symlink_to(person, target_is_directory=True)
    config = small_config(
        subset, tmp_path / "fiw.pt", epochs=2, arcface_epochs=2, batch_size=64, lr=0.1,
        steps_per_epoch=4, warmup_epochs=0.25, scale=32.0, margin=0.3,
    )
    history = train(config).history
    assert history[1].train_loss < history[0].train_loss
    assert history[3].train_loss < history[2].train_loss


def test_an_undecodable_pairs_image_is_refused(people: Path, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "unseen", 6, images_per_identity=3, folds=2, per_fold=4, first_identity=50)
    images = tmp_path / "unseen" / "images"
    broken = sorted(images.glob("*/*.jpg"))[0]
    broken.write_bytes(b"not a jpeg")
    config = small_config(people, tmp_path / "m.pt", val_pairs=str(pairs), val_images=str(images))
    with pytest.raises(InputError, match="could not be decoded"):
        train(config)


def test_bench_classification_scores_the_model_file_classifier(people: Path, tmp_path: Path) -> None:
    import numpy as np

    from facesearch.embedding.imaging import load_face
    from facesearch.models.encoder import load_classifier

    out = tmp_path / "phase1.pt"
    train(small_config(people, out, epochs=1, arcface_epochs=0, steps_per_epoch=1))
    dev = tmp_path / "dev"
    write_dataset(dev, identities=7, images_per_identity=2, seed=2, first_sample=6)  # person 6 is not a class
    result = cli_json("bench", "--classification", dev, "--model", out)
    encoder, classifier = load_classifier(out)
    assert classifier.kind == "linear" and len(classifier.names) == 6
    files = sorted(p for p in dev.glob("*/*") if p.parent.name in classifier.names)
    raw = encoder.embed(torch.from_numpy(np.stack([load_face(f, 112)[0] for f in files])), unit=False).numpy().astype(np.float64)
    scores = raw @ classifier.weight.numpy().astype(np.float64).T + classifier.bias.numpy()
    truth = np.array([classifier.names.index(f.parent.name) for f in files])
    top5 = np.argsort(-scores, axis=1)[:, :5]
    assert result["task"] == "classification" and result["images"] == 12 and result["classes"] == 6
    assert result["unknown_identities"] == 2 and result["failed"] == []
    assert result["accuracy"] == pytest.approx(float(np.mean(top5[:, 0] == truth)))
    assert result["top5_accuracy"] == pytest.approx(float(np.mean((top5 == truth[:, None]).any(axis=1))))


def test_classifier_of_either_phase_survives_the_model_file() -> None:
    from facesearch.models.classifier import Classifier
    from facesearch.models.margins import MarginHead, SoftmaxHead

    softmax = SoftmaxHead(16, 5)
    margin = MarginHead.from_classifier(softmax.classifier, loss="arcface")
    x = torch.randn(8, 16)
    for head, kind in [(softmax, "linear"), (margin, "cosine")]:
        names = [f"p{i}" for i in range(5)]
        back = Classifier.from_payload(Classifier.from_head(head, names).to_payload(), "m.pt")
        assert back.kind == kind and back.names == names
        agree = (back.scores(x).argmax(1) == head.predict(x)).float().mean()
        assert agree == 1.0  # fp16 class weights keep every prediction here
    with pytest.raises(Exception, match="malformed"):
        Classifier.from_payload({"names": ["a"], "kind": "linear", "weight": torch.zeros(2, 16)}, "m.pt")


def test_bench_classification_bad_input(people: Path, tmp_path: Path, reference: tuple) -> None:
    from facesearch.models import build_encoder, save_encoder

    plain = tmp_path / "plain.pt"
    save_encoder(build_encoder(), plain)
    assert "has no classifier" in cli_json("bench", "--classification", people, "--model", plain, code=1)["error"]
    strangers = tmp_path / "strangers"
    write_dataset(strangers, identities=2, images_per_identity=1, seed=3, first_sample=0)
    for folder in list(strangers.iterdir()):
        folder.rename(strangers / f"x_{folder.name}")
    error = cli_json("bench", "--classification", strangers, "--model", reference[0].out, code=1)["error"]
    assert "none of its identities" in error
    assert cli("bench", "--classification", people).exit_code == 2  # no --model
