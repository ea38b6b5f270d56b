"""Learning from a teacher: cached targets, faces without names, aligned training, bad input.

The teacher here is a small model of ours trained on synthetic faces (the SFace teacher is
exercised in test_realfaces.py when ../shared is present); 32 px faces keep every run short.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from facesearch.errors import InputError
from facesearch.models import load_encoder
from facesearch.embedding.preprocessing import Preprocessing
from facesearch.synthetic import write_dataset
from facesearch.training import TrainConfig, train
from facesearch.training.augment import AugmentConfig
from facesearch.training.distill import Distillation, relational_loss
from facesearch.training.face_cache import FaceCache, preparation_key
from tests import planted  # noqa: F401  (registers the planted detector)
from tests.conftest import cli_json

SIDE = 32


def config(data: Path, out: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        data=str(data), out=str(out), epochs=2, arcface_epochs=0, batch_size=16, lr=0.05, warmup_epochs=0.0,
        holdout=0.0, workers=0, input_size=SIDE, embedding_dim=32, backbone="mobilenet_v3_small",
        augment=AugmentConfig(hflip=True, resized_crop=False, color_jitter=False),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distill")
    write_dataset(root / "people", identities=5, images_per_identity=4, size=SIDE, seed=3)
    write_dataset(root / "strangers", identities=8, images_per_identity=2, size=SIDE, seed=4, first_identity=40)
    teacher = config(root / "people", root / "teacher.pt", embedding_dim=16, epochs=2)
    train(teacher)
    return {"root": root, "people": root / "people", "strangers": root / "strangers", "teacher": root / "teacher.pt"}


@pytest.fixture(scope="module")
def taught(folders: dict[str, Path]) -> tuple[TrainConfig, object]:
    """A teacher-only student (identity weight 0) on named and unnamed faces."""
    cfg = config(
        folders["people"], folders["root"] / "student.pt", teacher=str(folders["teacher"]),
        unlabelled=(str(folders["strangers"]),), identity_weight=0.0, epochs=4, optimizer="adamw", lr=0.003,
        face_cache=str(folders["root"] / "faces.pt"), embedding_dim=16,
    )
    return cfg, train(cfg)


def test_a_student_moves_towards_its_teacher(taught: tuple[TrainConfig, object]) -> None:
    cfg, report = taught
    cosines = [r.teacher_cosine for r in report.history]
    assert cosines[-1] > cosines[0] + 0.05, cosines
    assert report.train_images == 20 + 16
    assert report.to_dict()["taught"]["unlabelled_images"] == 16


def test_teacher_targets_are_cached_and_reused(taught: tuple[TrainConfig, object], monkeypatch) -> None:  # noqa: ANN001
    cfg, report = taught
    calls = []
    from facesearch.models.encoder import Encoder

    original = Encoder.embed_faces
    monkeypatch.setattr(Encoder, "embed_faces", lambda self, x: calls.append(len(x)) or original(self, x))
    again = train(dataclasses.replace(cfg, out=str(Path(cfg.out).with_name("again.pt")), epochs=1))
    assert calls == []  # neither the crops nor the teacher's targets were computed again
    assert again.to_dict()["taught"]["cache"]["teacher"] == report.to_dict()["taught"]["cache"]["teacher"]


def test_the_student_has_the_teachers_size_and_its_meta_names_no_machine_path(
    taught: tuple[TrainConfig, object],
) -> None:
    cfg, _ = taught
    encoder, _ = load_encoder(cfg.out)
    assert encoder.dim == 16
    meta = torch.load(cfg.out, weights_only=True)["meta"]
    assert meta["teacher"]["file"] == "teacher.pt" and len(meta["teacher"]["fingerprint"]) == 64
    text = json.dumps(meta)
    assert "/tmp" not in text and str(Path.home()) not in text


def test_online_teacher_views_are_the_cached_targets_on_a_clean_view(taught: tuple[TrainConfig, object]) -> None:
    """Function matching's teacher sees the view as the student does: on an unaugmented,
    unmirrored view it gives the cached target of that crop (the [-1, 1] round trip is exact)."""
    from facesearch.training.face_cache import FaceCache  # noqa: F401  (the cache the targets came from)
    from facesearch.training.loading import load_training_data
    from facesearch.training.distill import load_teacher
    from facesearch.models.encoder import preprocessing_of
    from facesearch.training.teacher_views import CachedTargets, OnlineTargets

    cfg, _ = taught
    data = load_training_data(cfg)
    teacher, _ = load_teacher(cfg.teacher, preprocessing_of(cfg.encoder_config()))
    views = data.train.images[:6].float() / 127.5 - 1.0
    positions, mirrored = torch.arange(6), torch.zeros(6, dtype=torch.bool)
    online = OnlineTargets(teacher)(views, positions, mirrored)
    cached = CachedTargets(data.train.targets["clean"], data.train.targets["flipped"])(views, positions, mirrored)
    assert torch.allclose(online, cached, atol=1e-4)
    flipped = OnlineTargets(teacher)(views.flip(-1), positions, ~mirrored)
    assert torch.allclose(flipped, data.train.targets["flipped"][:6], atol=1e-4)


def test_a_run_with_online_teacher_views_and_mixup(taught: tuple[TrainConfig, object], tmp_path: Path) -> None:
    cfg, _ = taught
    online = dataclasses.replace(cfg, out=str(tmp_path / "online.pt"), epochs=2, teacher_views="online", mixup=0.5,
                                 augment=AugmentConfig(hflip=True, grey=True, blur=True, lowres=True))
    report = train(online)
    assert all(r.teacher_s and r.teacher_s > 0 for r in report.history)  # the teacher ran in the loop
    assert report.history[-1].teacher_cosine is not None and (tmp_path / "online.pt").is_file()
    resumed = dataclasses.replace(online, teacher_views="fixed", mixup=0.0)
    with pytest.raises(InputError, match="other options.*teacher_views"):
        train(resumed, resume=True)


def test_cached_views_are_the_views_the_student_sees(taught: tuple[TrainConfig, object], tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """``--teacher-views cached``: the teacher embeds K seeded views of each face once; the
    loader then draws exactly those pixels (the targets equal the teacher's embedding of the
    view the student gets), a resumed run reads them back, and the run reports the file."""
    from facesearch.models.encoder import Encoder

    cfg, _ = taught
    augment = AugmentConfig(hflip=True, resized_crop=True, color_jitter=True, grey=True, blur=True, lowres=True)
    views = dataclasses.replace(cfg, out=str(tmp_path / "views.pt"), epochs=1, teacher_views="cached",
                                views_per_face=3, augment=augment)
    from facesearch.training.loop import Trainer

    trainer = Trainer(views)
    targets = trainer.targets.targets
    assert targets.shape == (36, 3, 16) and not torch.isnan(targets).any()
    online = online_targets_of(trainer)
    batch = next(iter(trainer._loader()))  # noqa: SLF001
    images, _, positions, which = batch
    assert which.max() < 3 and len(set(which.tolist())) > 1
    assert torch.allclose(online(images, positions, which), trainer.targets(images, positions, which), atol=2e-3)
    report = trainer.run()
    stored = report.to_dict()["taught"]["cache"]["views"]
    assert stored["per_face"] == 3 and stored["bytes"] > 36 * 3 * 16 * 2 and stored["seconds"] > 0

    calls = []
    original = Encoder.embed_faces
    monkeypatch.setattr(Encoder, "embed_faces", lambda self, x: calls.append(len(x)) or original(self, x))
    train(views, resume=True)
    assert calls == []  # the resumed run read the views back
    with pytest.raises(InputError, match="other options.*views_per_face"):
        train(dataclasses.replace(views, views_per_face=2), resume=True)


def online_targets_of(trainer):  # noqa: ANN001, ANN201
    """The teacher in the loop, for ``trainer``'s run: what each view should embed to."""
    from facesearch.models.encoder import preprocessing_of
    from facesearch.training.distill import load_teacher
    from facesearch.training.teacher_views import OnlineTargets

    teacher, _ = load_teacher(trainer.config.teacher, preprocessing_of(trainer.config.encoder_config()))
    return OnlineTargets(teacher)


def test_an_interrupted_view_build_goes_on_where_it_stopped(taught: tuple[TrainConfig, object], tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from facesearch.models.encoder import preprocessing_of
    from facesearch.training import view_cache
    from facesearch.training.augment import train_transform
    from facesearch.training.distill import load_teacher
    from facesearch.training.loading import load_training_data

    cfg, _ = taught
    images = load_training_data(cfg).train.images
    teacher, fingerprint = load_teacher(cfg.teacher, preprocessing_of(cfg.encoder_config()))
    transform = train_transform(AugmentConfig(hflip=False, resized_crop=True, color_jitter=True), SIDE)
    monkeypatch.setattr(view_cache, "BATCH", 8)
    monkeypatch.setattr(view_cache, "SAVE_SECONDS", 0.0)  # a save after every batch
    path, key = tmp_path / "views.pt", view_cache.stamp(images, fingerprint, "crop,jitter", True, 4, 0)
    whole, _ = view_cache.embed_views(images, transform, True, 4, 0, teacher, path, key)

    original, batches = teacher.embed_faces, []

    def failing(faces, cut: bool = True):  # noqa: ANN001, ANN202
        batches.append(len(faces))
        if cut and len(batches) == 5:
            raise RuntimeError("the power went")
        return original(faces)

    path.unlink()
    monkeypatch.setattr(teacher, "embed_faces", failing)
    with pytest.raises(RuntimeError, match="power"):
        view_cache.embed_views(images, transform, True, 4, 0, teacher, path, key)
    partial = torch.load(path, weights_only=True)["targets"]
    assert int((~torch.isnan(partial[..., 0])).sum()) == 4 * 8  # the four batches before the cut, each saved
    batches.clear()
    monkeypatch.setattr(teacher, "embed_faces", lambda faces: failing(faces, cut=False))
    again, _ = view_cache.embed_views(images, transform, True, 4, 0, teacher, path, key)
    assert sum(batches) == 36 * 4 - 4 * 8  # only the views still missing
    assert torch.equal(again, whole)  # and the same ones: the views are seeded
    other = view_cache.stamp(images, fingerprint, "crop,jitter", True, 4, 1)
    assert other != key


def test_mixup_blends_part_of_a_batch_and_unnames_it() -> None:
    from facesearch.training.teacher_views import mix

    torch.manual_seed(0)
    views, labels = torch.randn(8, 3, 4, 4), torch.arange(8)
    mixed, named = mix(views, labels, 0.5)
    changed = (mixed != views).flatten(1).any(dim=1)
    assert int(changed.sum()) == 4 and (named[changed] == -1).all() and (named[~changed] == labels[~changed]).all()
    assert mix(views, labels, 0.0)[0] is views


def test_a_projection_bridges_other_dimensions(folders: dict[str, Path]) -> None:
    cfg = config(
        folders["people"], folders["root"] / "wide.pt", teacher=str(folders["teacher"]), epochs=1,
        face_cache=str(folders["root"] / "faces.pt"), relational_weight=1.0,
    )
    report = train(cfg)
    assert load_encoder(cfg.out)[0].dim == 32 and report.history[0].teacher_cosine is not None


def test_relational_loss_is_zero_for_the_same_geometry() -> None:
    x = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8))
    assert relational_loss(x @ rotation, x) == pytest.approx(0.0, abs=1e-6)
    assert relational_loss(torch.nn.functional.normalize(torch.randn(6, 8), dim=1), x) > 0.01
    loss, cosine = Distillation(8, 8)(x, x)
    assert loss == pytest.approx(0.0, abs=1e-6) and cosine == pytest.approx(1.0)


def test_a_cache_refuses_other_faces_and_keeps_teachers_apart(tmp_path: Path, folders: dict[str, Path]) -> None:
    path = tmp_path / "c.pt"
    crops = preparation_key(Preprocessing(SIDE), "mtcnn")
    cache = FaceCache.open(path, crops)
    from facesearch.embedding.face_finding.prepare import FacePreparer

    files = sorted(folders["people"].rglob("*.jpg"))[:4]
    rows = cache.add_files(files, FacePreparer(Preprocessing(SIDE)))
    teacher, fingerprint = load_encoder(folders["teacher"])
    cache.teacher_targets(teacher, fingerprint, rows.kept())
    cache.teacher_targets(teacher, "another-teacher", rows.kept()[:2])
    cache.save()
    again = FaceCache.open(path, crops)
    assert len(again) == 4 and set(again.targets) == {fingerprint, "another-teacher"}
    assert not torch.isnan(again.targets[fingerprint]["clean"]).any()
    assert torch.isnan(again.targets["another-teacher"]["clean"][rows.kept()[2:]]).all()
    with pytest.raises(InputError, match="made for other faces"):
        FaceCache.open(path, preparation_key(Preprocessing(SIDE, "arcface-5pt"), "mtcnn"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable training-faces cache"):
        FaceCache.open(tmp_path / "junk.pt", crops)


def test_aligned_training_detects_once_and_leaves_out_photos_without_a_face(tmp_path: Path) -> None:
    """Each synthetic face pasted on a white canvas (the planted detector finds it); one
    blank photo has no face and is left out of training, counted."""
    flat = tmp_path / "flat"
    write_dataset(flat, identities=4, images_per_identity=3, size=64, seed=6)
    framed = tmp_path / "framed"
    for path in sorted(flat.rglob("*.jpg")):
        target = framed / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        planted.compose([(path, (30, 20, 48))], size=(120, 100)).save(target)
    Image.new("RGB", (120, 100), "white").save(framed / path.parent.name / "blank.jpg")
    cfg = config(framed, tmp_path / "aligned.pt", alignment="arcface-5pt", detector="planted", epochs=1,
                 face_cache=str(tmp_path / "aligned-faces.pt"))
    report = train(cfg)
    assert report.train_images == 12 and report.to_dict()["taught"]["no_face"] == 1
    encoder, _ = load_encoder(cfg.out)
    assert encoder.preprocessing.alignment == "arcface-5pt" and encoder.preprocessing.detect


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"unlabelled": ("x",)}, "from a teacher only"),
        ({"identity_weight": 0.0}, "nothing to learn"),
        ({"teacher": "t.pt", "distill_weight": 0.0}, "teaches nothing"),
        ({"alignment": "dlib"}, "unknown alignment"),
        ({"teacher_views": "online"}, "needs --teacher"),
        ({"teacher_views": "cached"}, "cached needs --teacher"),
        ({"teacher": "t.pt", "teacher_views": "sometimes"}, "unknown teacher views"),
        ({"teacher": "t.pt", "mixup": 0.3}, "--mixup needs --teacher-views online"),
    ],
)
def test_bad_options_are_refused(folders: dict[str, Path], changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        config(folders["people"], folders["root"] / "m.pt", **changes)


def test_bad_teachers_and_unlabelled_folders(folders: dict[str, Path], tmp_path: Path) -> None:
    people, cache = folders["people"], str(tmp_path / "faces.pt")

    def run(**changes: object) -> None:
        train(config(people, tmp_path / "m.pt", face_cache=cache, steps_per_epoch=1, epochs=1, **changes))

    with pytest.raises(InputError, match="--teacher: model file .* not found"):
        run(teacher=str(tmp_path / "missing.pt"))
    (tmp_path / "notes.pt").write_text("not a model")
    with pytest.raises(InputError, match="--teacher: .*not a readable facesearch model file"):
        run(teacher=str(tmp_path / "notes.pt"))
    with pytest.raises(InputError, match="takes crop faces of 64 px"):
        train(config(people, tmp_path / "m.pt", face_cache=str(tmp_path / "f64.pt"), steps_per_epoch=1,
                     epochs=1, teacher=str(folders["teacher"]), input_size=64))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no faces here")
    with pytest.raises(InputError, match="--unlabelled .*empty: no images found"):
        run(teacher=str(folders["teacher"]), unlabelled=(str(empty),))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in sorted(folders["strangers"].rglob("*.jpg"))[:3]:
        (mixed / f"{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    report = train(config(people, tmp_path / "m.pt", face_cache=cache, epochs=1, teacher=str(folders["teacher"]),
                          unlabelled=(str(mixed),)))
    taught = report.to_dict()["taught"]
    assert taught["skipped"] == 1 and taught["unlabelled_images"] == 3


def test_teacher_on_resume_of_a_run_without_one_is_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    plain = config(folders["people"], tmp_path / "plain.pt", epochs=2, steps_per_epoch=1)
    train(plain)
    with pytest.raises(InputError, match="teacher: None ->"):
        train(dataclasses.replace(plain, teacher=str(folders["teacher"]), face_cache=str(tmp_path / "f.pt")),
              resume=True)


def test_cli_train_with_a_teacher(folders: dict[str, Path], tmp_path: Path) -> None:
    result = cli_json(
        "train", folders["people"], "--out", tmp_path / "cli.pt", "--teacher", folders["teacher"],
        "--unlabelled", folders["strangers"], "--epochs", 1, "--arcface-epochs", 0, "--batch-size", 16,
        "--input-size", SIDE, "--workers", 0, "--holdout", 0, "--face-cache", tmp_path / "faces.pt",
    )
    assert result["taught"]["unlabelled_images"] == 16 and result["final"]["teacher_cosine"] is not None
    assert load_encoder(tmp_path / "cli.pt")[0].dim == 16  # the teacher's, by default
