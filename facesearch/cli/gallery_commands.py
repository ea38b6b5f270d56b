"""The commands of a gallery: enroll, ask (query, embed, verify, serve), look and remove, and
its settings (threshold, scoring, index, info)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from facesearch.cli.app import (
    DatabaseOption, DetectorOption, DeviceOption, FlipOption, HomeOption, IndexKind, JsonOption, ModelOption,
    NoDetectOption, ScoringRule, app, detector_choice, emit, failures, gallery_for_photos, on_gallery, open_gallery,
    progress_bars, stderr,
)


@app.command()
def enroll(
    folder: Annotated[Path, typer.Argument(help="DIR/<identity>/<images> or DIR/<identity>.<ext>")],
    model: ModelOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per encoder batch.")] = 64,
    workers: Annotated[
        Optional[int], typer.Option(min=0, help="Decode threads [default: by input size].")
    ] = None,
    commit_every: Annotated[
        int, typer.Option(min=1, help="Faces per transaction (a crash loses at most these).")
    ] = 2048,
    reembed: Annotated[
        bool,
        typer.Option(help="First re-embed the whole gallery with --model (another encoder)."),
    ] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any file failed.")] = False,
    unnamed: Annotated[
        bool, typer.Option(help="A photo library: every image below FOLDER, at any depth, and every face in it, "
                           "stored with no name (to group with `cluster` and name later).")
    ] = False,
    index_kind: Annotated[
        Optional[IndexKind],
        typer.Option(
            "--index",
            help="Search index: flat (exact), ivf or hnsw (approximate, for large galleries); "
            "kept for later enrolls [default: the gallery's, flat when new].",
            show_default=False,
        ),
    ] = None,
    flip: FlipOption = None,
    detector: DetectorOption = None,
    no_detect: NoDetectOption = False,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Embed, store and index every new image of a gallery folder (incremental); from each
    photo its largest face, when the encoder (or --detector) finds faces; with --unnamed,
    every face of every photo, without a name."""
    chosen = detector_choice(detector, no_detect)
    with failures(as_json):
        if reembed and model is None:
            raise typer.BadParameter("--reembed needs --model", param_hint="--reembed")
        with open_gallery(home, database_url, device, chosen) as gallery, progress_bars() as progress:
            if index_kind is not None:
                gallery.set_index(index_kind.value)
            reembedded = gallery.reembed(model, batch_size, workers, progress, flip) if reembed else 0
            report = gallery.enroll(folder, model, batch_size, workers, commit_every, progress, flip, unnamed)
        result = report.to_dict()
        if reembed:
            result["reembedded"] = reembedded
        emit(as_json, result, _print_enroll)
        nothing_usable = report.enrolled == 0 and report.skipped == 0
        if report.failed and (strict or nothing_usable):
            raise typer.Exit(1)


def _print_enroll(r: dict[str, Any]) -> None:
    for failure in r["failed"]:
        stderr.print(f"failed: {failure['path']}: {failure['error']}", highlight=False)
    for several in r["several_faces"]:
        stderr.print(f"note: {several['path']}: {several['faces']} faces, took the largest at "
                     f"{several['taken']['box']}", highlight=False)
    for conflict in r["conflicts"]:
        kept = f"; it stays enrolled as {conflict['enrolled_as']!r}" if conflict["enrolled_as"] else ""
        stderr.print(f"conflict: {', '.join(conflict['paths'])}: the same photo labelled "
                     f"{' and '.join(map(repr, conflict['identities']))}; not enrolled{kept}", highlight=False)
    typer.echo(
        f"enrolled {r['enrolled']}, skipped {r['skipped']} already enrolled, "
        f"failed {len(r['failed'])}; gallery: {r['identities']} identities, {r['faces']} faces"
        + (f" ({r['unnamed']} of the new ones unnamed)" if r["unnamed"] else "")
    )


@app.command()
def query(
    image: Annotated[
        Optional[Path], typer.Argument(help="A photo (every face in it is answered) or a face crop.", show_default=False)
    ] = None,
    embedding: Annotated[
        Optional[Path],
        typer.Option("--embedding", help="Search with embeddings instead of a photo: JSON (a list of numbers, "
                     "lists of them, or `facesearch embed`'s output) or .npy, unit vectors of the gallery's encoder.",
                     show_default=False),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Identities to list.")] = 5,
    max_faces: Annotated[
        Optional[int], typer.Option("--max-faces", min=1, help="Answer at most the N largest faces.")
    ] = None,
    min_face: Annotated[int, typer.Option("--min-face", min=0, help="Ignore faces smaller than PX pixels.")] = 0,
    model: ModelOption = None,
    detector: DetectorOption = None,
    no_detect: NoDetectOption = False,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is in this photo? For every face, the best identity, or n000000 when no one
    scores above the threshold; the top-level answer is the largest face's."""
    if image is None and embedding is None:
        raise typer.BadParameter("Missing argument 'IMAGE': give a photo, or --embedding FILE", param_hint="IMAGE")
    if image is not None and embedding is not None:
        raise typer.BadParameter("give a photo or --embedding FILE, not both", param_hint="IMAGE")
    with gallery_for_photos(as_json, home, database_url, device, detector, no_detect) as gallery:
        if embedding is not None:
            from facesearch.embedding.photo_faces import read_embeddings

            vectors = read_embeddings(embedding, gallery.embedding_dim())
            result = gallery.query_embeddings(vectors, top_k).to_dict()
        else:
            result = gallery.query(image, top_k, model, max_faces, min_face).to_dict()
    emit(as_json, result, _print_query)


@app.command()
def embed(
    photo: Annotated[Path, typer.Argument(help="A photo: every face in it is embedded.")],
    model: ModelOption = None,
    detector: DetectorOption = None,
    no_detect: NoDetectOption = False,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every face of a photo: its box, landmarks and embedding, with the encoder's fingerprint
    (the gallery's encoder, or --model). The embeddings go back in with `query --embedding`."""
    with gallery_for_photos(as_json, home, database_url, device, detector, no_detect) as gallery:
        fingerprint, faces = gallery.embed(photo, model)
    result = {"model": {"fingerprint": fingerprint, "dim": len(faces[0].embedding)},
              "faces": [face.to_dict() for face in faces]}
    emit(as_json, result, lambda r: [typer.echo(f"face at {f['box']}: {len(f['embedding'])} numbers") for f in r["faces"]])


@app.command()
def verify(
    first: Annotated[Path, typer.Argument(help="A photo.")],
    second: Annotated[Path, typer.Argument(help="Another photo.")],
    threshold: Annotated[
        Optional[float], typer.Option(help="Same person at or above this cosine [default: the gallery's, else "
                                      "the encoder's stated one, else 0.5].", show_default=False)
    ] = None,
    face_a: Annotated[int, typer.Option(min=0, help="Which face of the first photo, by size (0: the largest).")] = 0,
    face_b: Annotated[int, typer.Option(min=0, help="Which face of the second photo, by size (0: the largest).")] = 0,
    model: ModelOption = None,
    detector: DetectorOption = None,
    no_detect: NoDetectOption = False,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """1:1: is the largest face of the two photos the same person? The score and the
    threshold it was judged at."""
    with gallery_for_photos(as_json, home, database_url, device, detector, no_detect) as gallery:
        result = gallery.verify(first, second, model, threshold, (face_a, face_b)).to_dict()
    emit(as_json, result, lambda r: typer.echo(
            f"{'same person' if r['same'] else 'different people'}: score {r['score']:.4f} "
            f"(threshold {r['threshold']:.4f}, {r['threshold_source']})"))


def _print_query(r: dict[str, Any]) -> None:
    faces = r.get("faces") or [r]
    for number, face in enumerate(faces, start=1):
        score = "-" if face["score"] is None else f"{face['score']:.4f}"
        where = f"face {number} at {face['box']}: " if len(faces) > 1 else ""
        typer.echo(f"{where}{face['identity']}  score {score}  (threshold {r['threshold']:.4f})")
        table = Table("rank", "identity", "score", "image", box=None)
        for rank, match in enumerate(face["matches"], start=1):
            table.add_row(str(rank), match["identity"], f"{match['score']:.4f}", match["image"])
        Console().print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (other than loopback only with FACESEARCH_TOKEN set).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (each loads the gallery).")] = 1,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest request body; over it: 413.")] = 10.0,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the gallery over HTTP: the /v1 API (the CLI's JSON), a search page at /, docs at
    /docs. Every /v1 call needs `Authorization: Bearer $FACESEARCH_TOKEN` when it is set."""
    with failures(False):
        from facesearch.serving.server import serve as run_server

        run_server(home, host, port, workers, max_upload_mb, database_url)


@app.command()
def identities(home: HomeOption = None, database_url: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List enrolled identities with their number of faces."""
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            result = {"identities": gallery.identities()}

        def human(r: dict[str, Any]) -> None:
            for row in r["identities"]:
                typer.echo(f"{row['faces']:6d}  {row['identity']}")

        emit(as_json, result, human)


@app.command()
def remove(
    identity: Annotated[
        Optional[str], typer.Argument(help="The identity to delete, with all their faces.", show_default=False)
    ] = None,
    face: Annotated[Optional[int], typer.Option("--face", help="Delete one face instead, by its id (`facesearch faces`).",
                                                show_default=False)] = None,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a person (their rows, embeddings and index vectors), or one face with --face:
    none of the data remains in the database files."""
    if (identity is None) == (face is None):
        raise typer.BadParameter("give an IDENTITY, or --face ID (one of them)", param_hint="IDENTITY")
    on_gallery(home, database_url, as_json,
               lambda gallery: {"removed_face": gallery.remove_face(face)} if face is not None
               else {"removed": identity, "faces": gallery.remove(identity)},
               lambda r: typer.echo(
            f"removed face {r['removed_face']}" if "removed_face" in r else f"removed {r['removed']} ({r['faces']} faces)"))


@app.command()
def threshold(
    value: Annotated[
        Optional[float],
        typer.Argument(min=-1.0, max=1.0, help="New threshold (cosine similarity); omit to show."),
    ] = None,
    fpir: Annotated[
        Optional[float],
        typer.Option("--fpir", help="Set it without labels, from the gallery's own photos: where this share of "
                     "strangers (people not enrolled) would get a name, such as 0.05.", show_default=False),
    ] = None,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show, or set, the similarity below which a query answers n000000, where it came from
    (default, encoder: its stated calibration, fpir: the gallery's photos, tuned: bench --tune,
    or manual), and the share of strangers it would name on the gallery's own photos. A
    threshold set with --fpir keeps that rate as the gallery grows: it is estimated again
    whenever the number of people changes by a tenth."""
    if value is not None and fpir is not None:
        raise typer.BadParameter("give a VALUE or --fpir, not both", param_hint="--fpir")
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            if value is not None:
                gallery.set_threshold(value)
            elif fpir is not None:
                gallery.set_threshold_at_fpir(fpir)
            result = gallery.threshold_report()

        def human(r: dict[str, Any]) -> None:
            extra = f" (fpir {r['fpir']})" if "fpir" in r else ""
            if "estimated_fpir" in r:
                extra += f"; on this gallery's photos it names about {r['estimated_fpir']:.1%} of strangers " \
                         f"(estimated from {r['estimated_from']} stranger queries)"
            typer.echo(f"{r['threshold']:.4f} {r['threshold_source']}{extra}")
            if "note" in r:
                stderr.print(f"note: {r['note']}", highlight=False, markup=False, soft_wrap=True)

        emit(as_json, result, human)


@app.command()
def scoring(
    rule: Annotated[
        Optional[ScoringRule],
        typer.Argument(help="nearest: a person's best image decides (HW2P2); mean: their template "
                       "(the mean of their embeddings). Omit to show.", show_default=False),
    ] = None,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show, or set, how a person is scored against a query face (query, bench and serve)."""
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            before = gallery.decision()["scoring"]
            if rule is not None:
                gallery.set_scoring(rule.value)
            result = gallery.decision()
            if result["scoring"] != before and result["threshold_source"] == "tuned":
                result["note"] = f"the threshold was tuned under {before}: run `facesearch bench PROBES --tune` again"

        def human(r: dict[str, Any]) -> None:
            typer.echo(r["scoring"])
            if "note" in r:
                typer.echo(r["note"], err=True)

        emit(as_json, result, human)


@app.command("index")
def index_settings(
    kind: Annotated[
        Optional[IndexKind], typer.Argument(help="New index kind; omit to show.", show_default=False)
    ] = None,
    nprobe: Annotated[
        Optional[int], typer.Option(min=1, help="IVF: cells searched per query (recall vs speed).")
    ] = None,
    ef_search: Annotated[
        Optional[int], typer.Option(min=1, help="HNSW: search beam width (recall vs speed).")
    ] = None,
    rerank: Annotated[
        Optional[int],
        typer.Option(min=1, help="ivf-sq8, ivf-sq6, ivf-pq: candidates a query scored exactly on the stored vectors [default: 64]; "
                     "more keeps recall up past a few million faces.", show_default=False),
    ] = None,
    uri: Annotated[
        Optional[str],
        typer.Option(help="milvus: a server (http://HOST:19530) or a Milvus Lite file (*.db) [default: index.milvus.db in the home].",
                     show_default=False),
    ] = None,
    collection: Annotated[
        Optional[str], typer.Option(help="milvus: the collection [default: facesearch_<gallery uuid>].", show_default=False)
    ] = None,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show, or choose, the gallery's search index; a new kind is built at once (milvus: the
    milvus extra; the collection is filled from the database)."""
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            given = {"nprobe": nprobe, "ef_search": ef_search, "rerank": rerank, "uri": uri, "collection": collection}
            params = {k: v for k, v in given.items() if v is not None}
            if kind is not None or params:
                gallery.set_index(kind.value if kind else gallery.index_info()["kind"], **params)
            result = {"index": gallery.index_info()}

        def human(r: dict[str, Any]) -> None:
            params = ", ".join(f"{k}={v}" for k, v in r["index"]["params"].items())
            typer.echo(f"{r['index']['kind']}" + (f" ({params})" if params else ""))

        emit(as_json, result, human)


@app.command()
def info(home: HomeOption = None, database_url: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Gallery summary: model, counts, threshold, index state, device."""
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            result = gallery.info()

        def human(r: dict[str, Any]) -> None:
            for key, value in r.items():
                if key == "warnings":
                    continue
                if isinstance(value, dict):
                    value = ", ".join(f"{k}={v}" for k, v in value.items())
                typer.echo(f"{key:>16}: {value}")

        for warning in result["warnings"]:
            stderr.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        emit(as_json, result, human)
