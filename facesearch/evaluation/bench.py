"""Benchmarks of an encoder and a gallery: open-set 1:N (the HW2P2 verification task), 1:1
pairs, and a trained model's classifier; and the report files of each.

Every probe is answered as a query would be: its nearest gallery identity and that
similarity, then ``n000000`` when the similarity is below the threshold. Figures:

* ``accuracy``: share of probes answered correctly at the threshold in force;
* ``rank1``: over probes of enrolled people, share whose nearest identity is right;
* ``roc_auc``: how well the best-match similarity separates correct matches of enrolled
  people (positives) from probes of people who are not enrolled (negatives); probes of
  enrolled people whose nearest identity is wrong are wrong at every threshold, so they are
  left out of the curve (they still count in ``accuracy``);
* ``fpir`` (false-positive identification rate): the share of probes of people who are not
  enrolled that got a name; ``fnir``: the share of probes of enrolled people that did not
  get their own name (another's, or n000000); both at the threshold in force;
* with ``tune``: the threshold maximising ``accuracy`` on these probes.

A probe that cannot be decoded is listed in ``failed`` and left out of the figures.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facesearch import UNKNOWN
from facesearch.embedding.loader import face_loader
from facesearch.embedding.encoders import FaceEncoder
from facesearch.errors import InputError
from facesearch.embedding.face_finding.prepare import FacePreparer, preparer_for
from facesearch.gallery.layouts import Problem
from facesearch.gallery.rules import RULES, check_rule
from facesearch.evaluation.hw2p2 import labelled_probes, probe_files, write_submission_file
from facesearch.evaluation.metrics import best_threshold, roc_auc

@dataclass(frozen=True)
class ProbeResult:
    """One row of probes.csv."""

    id: str
    label: str
    nearest: str
    score: float
    prediction: str


NO_FACE_ACTION = "no face found: the whole photo was taken as the face"


@dataclass
class Embedded:
    """Embeddings of the files that decoded, their positions in the file list, the problems
    of the others, and how many photos had no face found (taken whole, see NO_FACE_ACTION)."""

    vectors: np.ndarray
    positions: list[int]
    problems: list[Problem]
    no_face: int


def embed_files(
    encoder: FaceEncoder, files: list[Path], preparer: FacePreparer, batch_size: int = 64,
    workers: int | None = None, embed: Callable[[Any], np.ndarray] | None = None,
) -> Embedded:
    """Every file's largest face, embedded (``embed``: another embedding of the same
    batches, such as a classifier's raw one)."""
    embed = embed or encoder.embed_faces
    vectors, positions, problems, no_face = [], [], [], 0
    for batch in face_loader(files, preparer, batch_size, workers):
        problems += [Problem(files[pos], err) for pos, err in batch.failures]
        if batch.images is not None:
            vectors.append(embed(batch.images))
            positions += batch.positions
            no_face += sum(1 for found in batch.found if found == 0)
    empty = np.zeros((0, encoder.dim), np.float32)
    return Embedded(np.concatenate(vectors) if vectors else empty, positions, problems, no_face)


def detection_report(preparer: FacePreparer, no_face: int) -> dict[str, Any]:
    """What bench says about face finding: the detector, and what became of faceless probes."""
    if not preparer.detects:
        return {"detector": "none", "no_face": 0}
    return {"detector": preparer.detector_spec, "no_face": no_face, "no_face_action": NO_FACE_ACTION}


def _columns(results: list[ProbeResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, nearest identities, best-match scores) as arrays."""
    return (
        np.array([r.label for r in results]),
        np.array([r.nearest for r in results]),
        np.array([r.score for r in results], dtype=np.float64),
    )


def open_set_figures(results: list[ProbeResult], enrolled: set[str]) -> dict[str, Any]:
    """accuracy, rank1 and roc_auc of probe results (see the module docstring)."""
    labels, nearest, scores = _columns(results)
    predictions = np.array([r.prediction for r in results])
    known = np.array([label in enrolled for label in labels])
    unknown = labels == UNKNOWN
    correct_match = known & (nearest == labels)
    curve = correct_match | unknown
    return {
        "accuracy": float(np.mean(predictions == labels)),
        "rank1": float(np.mean(nearest[known] == labels[known])) if known.any() else None,
        "roc_auc": roc_auc(scores[curve], correct_match[curve]) if correct_match.any() and unknown.any() else None,
        # at the threshold in force: strangers given a name, enrolled people not given theirs
        "fpir": float(np.mean(predictions[~known] != UNKNOWN)) if (~known).any() else None,
        "fnir": float(np.mean(predictions[known] != labels[known])) if known.any() else None,
    }


def tune_threshold(results: list[ProbeResult]) -> tuple[float, float]:
    """(threshold, accuracy there) maximising open-set accuracy over these probes."""
    labels, nearest, scores = _columns(results)
    correct_match = nearest == labels
    decidable = correct_match | (labels == UNKNOWN)  # the others are wrong at any threshold
    if not decidable.any():
        raise InputError("cannot tune: no probe is a correct match or a person not enrolled")
    threshold, accuracy = best_threshold(scores[decidable], correct_match[decidable])
    # A midpoint just past a score of exactly 1 (an enrolled image as probe) stays a cosine.
    return float(np.clip(threshold, -1.0, 1.0)), accuracy * decidable.sum() / len(results)


def answer_probes(
    gallery, files: list[Path], model: str | Path | None = None, batch_size: int = 64,  # noqa: ANN001
    workers: int | None = None,
) -> tuple[dict[Path, Any], list[Problem], dict[str, Any]]:
    """Each decodable probe's answer (a QueryResult with its best match), as a query gives it
    for the photo's largest face, and the detection report (a probe with no face found is
    answered from the whole photo: every probe needs an answer)."""
    encoder = gallery.encoder(model)
    preparer = gallery.preparer(encoder, fallback=True)
    done = embed_files(encoder, files, preparer, batch_size, workers)
    answers = gallery.search(done.vectors, top_k=1) if done.positions else []
    found = {files[pos]: answer for pos, answer in zip(done.positions, answers)}
    return found, done.problems, detection_report(preparer, done.no_face)


def failed_list(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"path": str(p.path), "error": p.error} for p in problems]


def run_open_set(
    gallery,  # noqa: ANN001 (facesearch.gallery.engine.Gallery; imported lazily by callers)
    probes: str | Path,
    labels: str | Path | None = None,
    tune: bool = False,
    model: str | Path | None = None,
    batch_size: int = 64,
    workers: int | None = None,
) -> tuple[dict[str, Any], list[ProbeResult]]:
    """Benchmark the gallery on a probe folder; with ``tune`` the best threshold is stored."""
    probes = Path(probes)
    files, label_of = labelled_probes(probes, labels)
    answers, problems, detection = answer_probes(gallery, files, model, batch_size, workers)
    if not answers:
        raise InputError(f"{probes}: no probe could be decoded")
    results = [
        ProbeResult(file.name, label_of[file], a.matches[0].identity, a.matches[0].score, a.identity)
        for file, a in answers.items()
    ]
    enrolled = {row["identity"] for row in gallery.identities()}
    decision = gallery.decision()
    report: dict[str, Any] = {
        "task": "open-set",
        "probes": len(results),
        "threshold": decision["threshold"],
        "scoring": decision["scoring"],
        **open_set_figures(results, enrolled),
        **detection,
        "failed": failed_list(problems),
    }
    if tune:
        threshold, accuracy = tune_threshold(results)
        gallery.set_threshold(threshold, source="tuned")
        report["tuned_threshold"] = threshold
        report["accuracy_at_tuned"] = accuracy
    return report, results


def identity_scores(
    queries: np.ndarray, stored: np.ndarray, names: np.ndarray, rule: str
) -> tuple[np.ndarray, np.ndarray]:
    """(people, queries x people similarities) under a gallery scoring rule.

    ``nearest``: a person's best-matching enrolled image (the HW2P2 rule);
    ``mean``: the cosine to the L2-normalised mean of the person's embeddings (a template).
    Exhaustive numpy over every person, for benchmarking a rule: queries serve them through
    the index (facesearch.gallery.scoring), and a test holds the two to the same answers.
    """
    check_rule(rule)
    people, person_of = np.unique(names, return_inverse=True)
    if rule == "mean":
        centres = np.zeros((len(people), stored.shape[1]), np.float64)
        np.add.at(centres, person_of, stored)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        return people, queries.astype(np.float64) @ centres.T
    order = np.argsort(person_of, kind="stable")
    starts = np.searchsorted(person_of[order], np.arange(len(people)))
    similarities = queries.astype(np.float64) @ stored[order].T.astype(np.float64)
    return people, np.maximum.reduceat(similarities, starts, axis=1)


def compare_scoring(
    gallery, probes: str | Path, labels: str | Path | None = None,  # noqa: ANN001
    batch_size: int = 64, workers: int | None = None,
) -> dict[str, Any]:
    """Open-set figures of each gallery scoring rule on the same probe embeddings (the
    gallery's encoder and stored embeddings), each at its own tuned threshold. The gallery's
    threshold and rule are left alone (`facesearch scoring` sets the rule queries use)."""
    probes = Path(probes)
    files, label_of = labelled_probes(probes, labels)
    stored, owners = gallery.stored_embeddings()
    if not owners:
        raise InputError("nothing to compare: the gallery is empty")
    encoder = gallery.encoder()
    done = embed_files(encoder, files, gallery.preparer(encoder, fallback=True), batch_size, workers)
    vectors, positions, problems = done.vectors, done.positions, done.problems
    if not positions:
        raise InputError(f"{probes}: no probe could be decoded")
    names = np.array(owners)
    enrolled = set(names.tolist())
    report: dict[str, Any] = {"task": "scoring", "probes": len(positions), "no_face": done.no_face,
                              "failed": failed_list(problems)}
    for rule in RULES:
        people, similarities = identity_scores(vectors, stored, names, rule)
        best = similarities.argmax(axis=1)
        results = [
            ProbeResult(files[pos].name, label_of[files[pos]], str(people[b]), float(similarities[row, b]), "")
            for row, (pos, b) in enumerate(zip(positions, best))
        ]
        threshold, accuracy = tune_threshold(results)
        figures = open_set_figures(results, enrolled)  # its "accuracy" needs predictions: unused
        report[rule] = {"rank1": figures["rank1"], "roc_auc": figures["roc_auc"], "tuned_threshold": threshold,
                        "accuracy_at_tuned": accuracy}
    return report


def write_submission(
    gallery, probes: str | Path, out: str | Path, model: str | Path | None = None,  # noqa: ANN001
    batch_size: int = 64, workers: int | None = None,
) -> dict[str, Any]:
    """HW2P2 submission (``facesearch.evaluation.hw2p2``): every probe's answer at the
    gallery's threshold. A probe that cannot be decoded is answered n000000 (and listed in
    ``failed``), so the file always has one row per probe."""
    files = probe_files(probes)
    answers, problems, detection = answer_probes(gallery, files, model, batch_size, workers)
    unknown = write_submission_file(out, files, {file: answer.identity for file, answer in answers.items()})
    return {
        "task": "submission",
        "probes": len(files),
        "submission": str(out),
        "threshold": gallery.decision()["threshold"],
        "unknown": unknown,
        **detection,
        "failed": failed_list(problems),
    }


def write_report(folder: str | Path, result: dict[str, Any], results: list[ProbeResult]) -> list[str]:
    """``bench --report FOLDER``: result.json, summary.md, and for the open-set task
    probes.csv and the plots. Returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    written = ["result.json"]
    if results:
        write_probes_csv(folder / "probes.csv", results)
        written += ["probes.csv", *write_plots(folder, results, result.get("tuned_threshold", result["threshold"]))]
    lines = [f"# facesearch bench: {result['task']}", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in result.items()
              if k not in ("task", "failed")]
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    return [*written, "summary.md"]


def write_probes_csv(path: str | Path, results: list[ProbeResult]) -> None:
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "label", "nearest", "score", "prediction"])
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)


def write_plots(folder: str | Path, results: list[ProbeResult], threshold: float) -> list[str]:
    """roc.png and similarities.png of the best-match scores (the curve ``roc_auc`` measures).
    The nearest identity is always an enrolled one, so nearest == label is a correct match."""
    from facesearch.evaluation.plots import histogram_plot, roc_plot

    labels, nearest, scores = _columns(results)
    positive = nearest == labels
    curve = positive | (labels == UNKNOWN)
    if not (positive.any() and (labels == UNKNOWN).any()):
        return []
    folder = Path(folder)
    roc_plot(folder / "roc.png", scores[curve], positive[curve], "open-set: correct matches vs not enrolled")
    histogram_plot(
        folder / "similarities.png", scores[curve], positive[curve],
        ("correct match (enrolled)", "not enrolled (best match)"), threshold,
    )
    return ["roc.png", "similarities.png"]


def run_pairs(
    encoder: FaceEncoder, pairs_file: str | Path, images: str | Path, batch_size: int = 64,
    workers: int | None = None, plots: str | Path | None = None, preparer: FacePreparer | None = None,
) -> dict[str, Any]:
    """1:1 verification on an LFW pairs file, each image's largest face (``preparer``;
    default: as the encoder says, mtcnn when it detects); ``plots``: a folder for roc.png and
    similarities.png (same-person against different-person pairs)."""
    from facesearch.evaluation.metrics import verification_report
    from facesearch.evaluation.verification import pair_vectors, read_pairs

    pairs = read_pairs(pairs_file, images)
    preparer = preparer or preparer_for(encoder.preprocessing, fallback=True)
    vectors, no_face = pair_vectors(encoder, pairs, preparer, batch_size, workers)
    scores = pairs.scores(vectors)
    if plots is not None:
        from facesearch.evaluation.plots import histogram_plot, roc_plot

        Path(plots).mkdir(parents=True, exist_ok=True)
        roc_plot(Path(plots) / "roc.png", scores, pairs.same, "pairs: same person vs different people")
        histogram_plot(Path(plots) / "similarities.png", scores, pairs.same, ("same person", "different people"))
    return {"task": "pairs", **verification_report(scores, pairs.same, pairs.folds), "flip": encoder.flip,
            **detection_report(preparer, no_face)}


def run_classification(
    model: str | Path, folder: str | Path, batch_size: int = 64, workers: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Closed-set accuracy of a trained model's own classifier on a labelled folder
    (``DIR/<identity>/<images>``, HW2P2 ``classification/dev``): top-1 and top-5. Images of
    identities the classifier does not know are counted apart, not scored."""
    import torch

    from facesearch.gallery.layouts import gallery_images
    from facesearch.models.encoder import load_classifier

    encoder, classifier = load_classifier(model, device)
    images, problems = gallery_images(folder)
    index = {name: i for i, name in enumerate(classifier.names)}
    usable = [image for image in images if image.identity in index]
    if not usable:
        raise InputError(f"{folder}: none of its identities is one of the model's {len(index)} classes")
    crops = FacePreparer(encoder.preprocessing.with_detection(False))  # the classifier's training input
    done = embed_files(
        encoder, [i.path for i in usable], crops, batch_size, workers,
        embed=lambda images: encoder.embed(torch.from_numpy(images), unit=False).numpy(),
    )
    raw, positions, failed = done.vectors, done.positions, done.problems
    if not positions:
        raise InputError(f"{folder}: no image could be decoded")
    labels = torch.tensor([index[usable[pos].identity] for pos in positions])
    top = classifier.scores(torch.from_numpy(raw)).topk(min(5, len(index)), dim=1).indices
    return {
        "task": "classification",
        "images": len(positions),
        "classes": len(index),
        "accuracy": float((top[:, 0] == labels).float().mean()),
        "top5_accuracy": float((top == labels[:, None]).any(dim=1).float().mean()),
        "unknown_identities": len(images) - len(usable),
        "failed": failed_list(problems + failed),
    }
