"""The commands of encoders: measure one (bench), export, train, and write synthetic faces."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from facesearch.cli import train_command
from facesearch.cli.app import (
    DatabaseOption, DetectorOption, DeviceOption, HomeOption, JsonOption, ModelOption, NoDetectOption, app,
    detector_choice, emit, failures, open_gallery, progress_bars, stderr,
)


@app.command()
def bench(
    probes: Annotated[
        Optional[Path], typer.Argument(help="Probe folder (HW2P2 unknown_dev/) for the open-set task.")
    ] = None,
    labels: Annotated[
        Optional[Path], typer.Option(help="id,label CSV [default: verification_dev.csv inside or beside PROBES].")
    ] = None,
    tune: Annotated[bool, typer.Option(help="Find the accuracy-maximising threshold and store it.")] = False,
    pairs: Annotated[Optional[Path], typer.Option(help="Pairs file (LFW View 2) for the 1:1 task.")] = None,
    classification: Annotated[
        Optional[Path],
        typer.Option(help="Labelled folder (HW2P2 classification/dev): accuracy of --model's own classifier."),
    ] = None,
    images: Annotated[Optional[Path], typer.Option(help="The pairs file's image folder.")] = None,
    report: Annotated[
        Optional[Path], typer.Option(help="Also write probes.csv, the JSON, a Markdown summary and plots here.")
    ] = None,
    submission: Annotated[
        Optional[Path],
        typer.Option(help="Write the id,label answers for unlabelled PROBES (HW2P2 unknown_test/) instead."),
    ] = None,
    model: ModelOption = None,
    flip: Annotated[
        Optional[bool],
        typer.Option("--flip/--no-flip", help="--pairs: flip test-time augmentation on or off.", show_default=False),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    workers: Annotated[Optional[int], typer.Option(min=0)] = None,
    detector: DetectorOption = None,
    no_detect: NoDetectOption = False,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accuracy: open-set 1:N on the enrolled gallery (PROBES), 1:1 pairs (--pairs --images),
    or a trained model's classifier (--classification DIR --model M). Probes and pair images
    are prepared as enroll prepares photos (their largest face); one with no face found is
    taken whole, and counted in `no_face`."""
    chosen = detector_choice(detector, no_detect)
    if sum(task is not None for task in (probes, pairs, classification)) != 1:
        raise typer.BadParameter("give one of PROBES, --pairs (with --images), --classification", param_hint="PROBES")
    if classification is not None and model is None:
        raise typer.BadParameter("--classification needs --model (from `facesearch train`)", param_hint="--model")
    if flip is not None and pairs is None:  # open-set: the gallery's encoder; classification: plain embeddings
        raise typer.BadParameter("--flip is for --pairs (open-set: set it at enroll)", param_hint="--flip")
    if pairs is not None and images is None:
        raise typer.BadParameter("--pairs needs --images", param_hint="--images")
    with failures(as_json):
        results: list[Any] = []
        if classification is not None:
            from facesearch.evaluation.bench import run_classification

            dev = None if device == "auto" else device
            result = run_classification(model, classification, batch_size, workers, dev)  # type: ignore[arg-type]
        elif pairs is not None:
            from facesearch.evaluation.bench import run_pairs

            encoder, preparer = _pairs_encoder(model, home, database_url, device, flip, chosen)
            result = run_pairs(encoder, pairs, images, batch_size, workers, report, preparer)  # type: ignore[arg-type]
        else:
            from facesearch.evaluation.bench import run_open_set, write_submission

            with open_gallery(home, database_url, device, chosen) as gallery:
                if submission is not None:
                    result = write_submission(gallery, probes, submission, model, batch_size, workers)
                else:
                    result, results = run_open_set(gallery, probes, labels, tune, model, batch_size, workers)
        if report is not None:
            from facesearch.evaluation.bench import write_report

            write_report(report, result, results)
        emit(as_json, result, _print_bench)


def _pairs_encoder(
    model: Path | None, home: Path | None, database_url: str | None, device: str, flip: bool | None,
    detector: str | None,
) -> tuple[Any, Any]:
    """(``--model``, or else the gallery's own encoder, with ``flip`` overriding its flip
    setting; how its faces are prepared: ``detector``, else the gallery's, else mtcnn)."""
    from facesearch.embedding.encoders import load_model
    from facesearch.embedding.face_finding.prepare import preparer_for

    enrolled_with = None
    if model is None:
        with open_gallery(home, database_url, device) as gallery:
            model, enrolled_with = gallery.enrolled_with()
    encoder = load_model(model, None if device == "auto" else device, flip)[0]
    return encoder, preparer_for(encoder.preprocessing, detector, enrolled_with, fallback=True)


def _print_bench(r: dict[str, Any]) -> None:
    for failure in r.get("failed", []):
        stderr.print(f"failed: {failure['path']}: {failure['error']}", highlight=False)
    for key, value in r.items():
        if key == "failed":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v:.4f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4f}"
        typer.echo(f"{key:>18}: {value}")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="A model file from `facesearch train` (.pt).")],
    onnx: Annotated[Path, typer.Option("--onnx", help="The ONNX file to write (its sidecar goes beside it).")],
    check: Annotated[
        Optional[Path],
        typer.Option(help="Folder of face photos: embed them with both runtimes and report the agreement."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a trained model as an ONNX encoder + FILE.onnx.json sidecar (for onnxruntime,
    `--model FILE.onnx`, and other tools)."""
    from facesearch.models.export import export_onnx

    with failures(as_json):
        result = export_onnx(model, onnx, check)
        emit(as_json, result, lambda r: typer.echo(
            f"wrote {r['onnx']} and {r['sidecar']}" + (
                f"; min cosine to torch on {r['check']['faces']} faces: {r['check']['min_cosine']:.6f}"
                if r.get("check") else "")))


def _train(options: dict[str, Any], config: Path | None, resume: bool, checkpoint: Path | None, as_json: bool) -> None:
    """Train an encoder: classification, then a margin (ArcFace) fine-tune -> model file;
    with --teacher, every phase also learns the teacher's embeddings. Options may come from a
    recipe (--config FILE, TOML); flags win over it. A recipe of several stages runs them in
    order, each from the one before (--resume continues the chain where it stopped)."""
    from facesearch.errors import InputError
    from facesearch.training.augment import AugmentConfig
    from facesearch.training.recipes import read_stages

    given = {name: value for name, value in options.items() if value is not None}  # Typer checked these
    try:
        stages = read_stages(config) if config else [{}]
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None
    try:
        AugmentConfig.parse(given.get("augment", stages[-1].get("augment", "")))
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--augment") from None
    for number, values in enumerate(stages, 1):
        last = number == len(stages)
        values.update({k: v for k, v in given.items() if last or k != "out"})
        for name, what in (("data", "argument 'DATA'"), ("out", "option '--out'")):
            if name not in values:
                raise typer.BadParameter(f"missing {what} (on the command line or in --config)")
    if checkpoint is not None and len(stages) > 1:
        raise typer.BadParameter("--checkpoint names one run's checkpoint: not with a recipe of stages")
    with failures(as_json):
        reports = [_train_stage(values, resume, checkpoint, (number, len(stages)))
                   for number, values in enumerate(stages, 1)]
        if os.environ.get("RANK", "0") == "0":  # under torchrun, the lead alone reports
            result = reports[-1].to_dict()
            if len(reports) > 1:
                result["stages"] = [{"model": r.model, "epochs": r.epochs, "best_epoch": r.best_epoch} for r in reports]
            emit(as_json, result, _print_train)


def _train_stage(values: dict[str, Any], resume: bool, checkpoint: Path | None, stage: tuple[int, int]) -> Any:
    """One run; in a chain, ``resume`` continues a stage only where it has a checkpoint (the
    stages before it finished, the ones after it have not begun)."""
    from facesearch.training.distill import embedding_dim_for
    from facesearch.training.launch import train as run_training
    from facesearch.training.recipes import config_from

    if "embedding_dim" not in values:
        values["embedding_dim"] = embedding_dim_for(values.get("teacher"))
    settings = config_from(values)
    if stage[1] > 1:
        resume = resume and (settings.run_path / "checkpoint.pt").is_file()
        if os.environ.get("RANK", "0") == "0":
            typer.echo(f"stage {stage[0]} of {stage[1]}: {settings.out}" + (" (resumed)" if resume else ""), err=True)
    with progress_bars() as progress:
        return run_training(settings, resume, checkpoint, progress, _print_epoch)


app.command("train")(train_command.command(_train))


def _print_epoch(record: Any) -> None:
    figures = [f"loss {record.train_loss:.4f}"]
    if record.teacher_cosine is not None:
        figures.append(f"teacher cosine {record.teacher_cosine:.3f}")
    figures.append(f"train acc {record.train_accuracy:.3f}")
    if record.heldout_accuracy is not None:
        figures.append(f"held-out acc {record.heldout_accuracy:.3f}")
    if record.roc_auc is not None:
        figures.append(f"pairs AUC {record.roc_auc:.4f} acc {record.pairs_accuracy:.4f}")
    figures.append(f"{record.images_per_s:.0f} img/s")
    star = " *" if record.best else ""
    stderr.print(f"epoch {record.epoch} {record.phase}: {', '.join(figures)}{star}", highlight=False)


def _print_train(r: dict[str, Any]) -> None:
    figures = ", ".join(f"{k} {v:.4f}" for k, v in r["validation"].items())
    typer.echo(f"wrote {r['model']} (epoch {r['best_epoch']} of {r['epochs']}, by {r['selected_by']}): {figures}")


@app.command()
def synth(
    folder: Annotated[Path, typer.Argument(help="Where to write <identity>/<nnnn>.jpg.")],
    identities: Annotated[int, typer.Option("--identities", min=1)] = 20,
    images: Annotated[int, typer.Option("--images", min=1, help="Images per identity.")] = 5,
    size: Annotated[int, typer.Option(min=16)] = 112,
    seed: Annotated[int, typer.Option()] = 0,
    first_image: Annotated[int, typer.Option(help="Index of the first image per identity.")] = 0,
    first_identity: Annotated[int, typer.Option(help="Index of the first person (others are other people).")] = 0,
    pairs: Annotated[
        Optional[int],
        typer.Option(
            min=1, help="Write an LFW-style pairs set instead: images/ + pairs.txt, 10 folds of N pairs of each kind."
        ),
    ] = None,
    probes: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            help="Write an HW2P2-style probe set instead (unknown_dev/ + verification_dev.csv); "
            "people after the first N are labelled n000000.",
        ),
    ] = None,
    variation: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="How much photos of one person differ (pose, light, expression, noise): "
        "1 as in training sets, 0.5 for photos taken alike.")] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Write synthetic faces (deterministic) for demos and tests."""
    from facesearch.synthetic import write_dataset, write_pairs, write_probes

    if pairs and probes is not None:
        raise typer.BadParameter("--pairs and --probes are different layouts; choose one", param_hint="--probes")
    if probes is not None:
        write_probes(folder, identities, probes, images, size, seed, first_identity, first_image, variation)
        count = identities * images
    elif pairs:
        write_pairs(folder, identities, images, 10, pairs, size, seed, first_identity, variation)
        count = identities * images
    else:
        count = len(write_dataset(folder, identities, images, size, seed, first_identity, first_image, variation))
    result = {"dir": str(folder), "identities": identities, "images": count}
    emit(as_json, result, lambda r: typer.echo(f"wrote {r['images']} images of {r['identities']} people to {r['dir']}"))
