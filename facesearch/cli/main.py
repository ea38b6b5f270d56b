"""The ``facesearch`` command line: thin on purpose; the library does the work.

Contract (docs/design.md): with ``--json`` every command prints exactly one JSON object on stdout,
progress and logs go to stderr; exit 0 on success, 1 on a failure of the input or the state
(one-line message on stderr, no traceback), 2 on bad usage.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup

try:  # typer vendors click since 0.2x; before, it used click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from facesearch.cli import train_command
from facesearch.gallery.rules import RULES
from facesearch.index.spec import KINDS

class JsonUsageErrors(TyperGroup):
    """Bad usage (exit 2) with ``--json`` still prints one JSON object, ``{"error": ...}``, on
    stdout, as the contract promises for every outcome; the usage message stays on stderr.
    Usage errors surface in two places: parsing the group's own arguments, and invoking a
    command (its arguments are parsed, or it raises ``typer.BadParameter``)."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        self.wants_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
        with self._usage_errors_as_json():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with self._usage_errors_as_json():
            return super().invoke(ctx)

    @contextmanager
    def _usage_errors_as_json(self) -> Iterator[None]:
        try:
            yield
        except UsageError as exc:
            if getattr(self, "wants_json", False):
                typer.echo(json.dumps({"error": exc.format_message(), "usage": True}))
            raise


app = typer.Typer(
    cls=JsonUsageErrors,
    name="facesearch",
    help="Face search engine: enroll a gallery of known people, then ask who a face is.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]": literal brackets, not Rich markup
)
stderr = Console(stderr=True)

HomeOption = Annotated[
    Optional[Path],
    typer.Option(
        "--home",
        envvar="FACESEARCH_HOME",
        help="Folder holding the gallery database, index and models [default: ~/.facesearch].",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    Optional[str],
    typer.Option(
        "--database-url",
        envvar="FACESEARCH_DATABASE_URL",
        help="The gallery database, as an SQLAlchemy URL: postgresql://USER@HOST/DB (the postgres "
        "extra) or sqlite:///PATH [default: gallery.db in the home]. The index and model copies stay in the home.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
GroupArgument = Annotated[int, typer.Argument(help="A group of unnamed faces (`facesearch people`).")]
DeviceOption = Annotated[
    str, typer.Option("--device", help="Where the encoder runs: auto, cpu or cuda.")
]
FlipOption = Annotated[
    Optional[bool],
    typer.Option(
        "--flip/--no-flip",
        help="Flip test-time augmentation: embed each face and its mirror image (part of the "
        "encoder's fingerprint) [default: as the model file or gallery has it].",
        show_default=False,
    ),
]


def _choices(name: str, words: tuple[str, ...]) -> type[Enum]:
    """The library's words as a Typer choice (one vocabulary: the CLI never spells them)."""
    return Enum(name, {word: word for word in words}, type=str)  # type: ignore[return-value]


ScoringRule = _choices("ScoringRule", RULES)
IndexKind = _choices("IndexKind", KINDS)


ModelOption = Annotated[
    Optional[Path],
    typer.Option(
        "--model",
        help="Model file: from `facesearch train` (.pt), or an ONNX encoder with its FILE.onnx.json sidecar.",
        show_default=False,
    ),
]
DetectorOption = Annotated[
    Optional[str],
    typer.Option(
        "--detector",
        help="Face detector: mtcnn (shipped), yunet:PATH (an OpenCV YuNet ONNX file) or none (photos are "
        "face crops) [default: the choice the gallery was enrolled with; else as the model file says, "
        "mtcnn when it detects].",
        show_default=False,
    ),
]
NoDetectOption = Annotated[
    bool, typer.Option("--no-detect", help="Photos already are face crops: same as --detector none.")
]


def detector_choice(detector: str | None, no_detect: bool) -> str | None:
    """--detector / --no-detect as one choice (None: as the encoder and the gallery say)."""
    if no_detect and detector not in (None, "none"):
        raise typer.BadParameter("--no-detect and --detector contradict each other", param_hint="--no-detect")
    return "none" if no_detect else detector


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if verbose:
        logging.getLogger("facesearch").setLevel(logging.INFO)


def emit(as_json: bool, result: dict[str, Any], human: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        typer.echo(json.dumps(result))
    else:
        human(result)


@contextmanager
def failures(as_json: bool) -> Iterator[None]:
    """Turn input/state failures into a one-line message and exit 1 (JSON too, with --json)."""
    from sqlalchemy.exc import OperationalError

    from facesearch.errors import FaceSearchError

    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name not in TRAIN_EXTRA:
            raise
        _fail(as_json, f"this needs {exc.name}, which is not installed: pip install 'facesearch[train]'")
    except (FaceSearchError, OperationalError) as exc:
        _fail(as_json, str(exc.orig) if isinstance(exc, OperationalError) else str(exc))


TRAIN_EXTRA = ("torch", "torchvision", "onnxscript")
"""What `pip install 'facesearch[train]'` adds: training, torch model files, export."""


def _fail(as_json: bool, message: str) -> None:
    stderr.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps({"error": message}))
    raise typer.Exit(1) from None


@contextmanager
def progress_bars() -> Iterator[Callable[..., None]]:
    """A progress callback for the library that draws one Rich bar per stage on stderr;
    an optional fourth argument is shown after the bar (training: loss, accuracy, img/s)."""
    bars = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=stderr,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int, info: str = "") -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total, info=info)
        bars.update(tasks[stage], completed=done, total=total, info=info)

    with bars:
        yield update


@contextmanager
def gallery_for_photos(
    as_json: bool, home: Path | None, database_url: str | None, device: str, detector: str | None, no_detect: bool,
) -> Iterator[Any]:
    """The gallery a photo command works on, with its detector choice, failures reported as
    the contract says (exit 1, one line)."""
    chosen = detector_choice(detector, no_detect)
    with failures(as_json), open_gallery(home, database_url, device, chosen) as gallery:
        yield gallery


def open_gallery(
    home: Path | None, database_url: str | None = None, device: str = "auto", detector: str | None = None
) -> Any:
    from facesearch.gallery.engine import Gallery

    return Gallery(home, database_url, device=None if device == "auto" else device, detector=detector)


def on_gallery(
    home: Path | None, database_url: str | None, as_json: bool,
    call: Callable[[Any], dict[str, Any]], human: Callable[[dict[str, Any]], None],
) -> None:
    """The frame of the commands that make one change to a gallery: open it, ``call``, close
    it, then print the result (``human`` without --json); a failure is one line, exit 1."""
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            result = call(gallery)
        emit(as_json, result, human)


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
def cluster(
    full: Annotated[bool, typer.Option(help="Regroup every unnamed face (groups get new numbers).")] = False,
    threshold: Annotated[
        Optional[float], typer.Option(help="Average-linkage similarity at which groups stop merging [default: 0.2].",
                                      show_default=False)
    ] = None,
    min_quality: Annotated[
        Optional[float], typer.Option(help="Faces below this quality stay ungrouped [default: 0.05].", show_default=False)
    ] = None,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Group the unnamed faces into people (incremental: new faces join the groups there are,
    which keep their numbers); name a group with `facesearch name GROUP NAME`."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.cluster(full, threshold, min_quality),
               lambda r: typer.echo(f"{len(r['groups'])} groups of {sum(g['faces'] for g in r['groups'])} faces, "
                                    f"{r['ungrouped']} ungrouped ({r['seconds']} s)"))


@app.command()
def people(
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Named people and the groups of unnamed faces (`cluster`), with their face counts and
    one face each to show (the best quality)."""
    on_gallery(home, database_url, as_json, lambda gallery: {"people": gallery.people()}, _print_people)


def _print_people(r: dict[str, Any]) -> None:
    table = Table("person", "group", "faces", "face", box=None)
    for row in r["people"]:
        table.add_row(row["person"] or "-", "-" if row["group"] is None else str(row["group"]), str(row["faces"]),
                      "-" if row["face"] is None else str(row["face"]))
    Console().print(table)


@app.command()
def name(
    group: GroupArgument,
    person: Annotated[str, typer.Argument(help="Whose faces they are; an existing person gains them.")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Name a group once: its faces become the person's and answer queries by that name."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.name_group(group, person),
               lambda r: typer.echo(f"{r['person']}: {r['faces']} faces"))


@app.command()
def split(
    group: GroupArgument,
    faces: Annotated[list[int], typer.Argument(help="Ids of the faces to take out (`facesearch faces --group GROUP`).")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take some faces of a group into a new group: two people that were grouped as one."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.split(group, faces),
               lambda r: typer.echo(f"group {r['group']}: {r['faces']} faces"))


@app.command()
def merge(
    group: GroupArgument,
    into: Annotated[int, typer.Argument(help="The group that gains its faces and keeps its number.")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """One person grouped twice: GROUP's faces join INTO, without naming either."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.merge(group, into),
               lambda r: typer.echo(f"group {r['group']}: {r['faces']} faces"))


@app.command()
def rename(
    old: Annotated[str, typer.Argument(help="A person's name.")],
    new: Annotated[str, typer.Argument(help="Their new name; if someone has it, the two become one.")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rename a person, or merge them into another when NEW exists."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.rename(old, new),
               lambda r: typer.echo(f"{r['person']}: {r['faces']} faces"))


@app.command()
def move(
    face: Annotated[int, typer.Argument(help="A face id (`facesearch faces`).")],
    person: Annotated[str, typer.Argument(help="The person it shows.")],
    create: Annotated[bool, typer.Option(help="Make PERSON if nobody has that name yet.")] = False,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give one face to a person (out of its group, or from another person)."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.move(face, person, create),
               lambda r: typer.echo(f"face {r['face']} -> {r['person']} ({r['faces']} faces)"))


@app.command()
def faces(
    person: Annotated[Optional[str], typer.Option(help="Only this person's faces.", show_default=False)] = None,
    group: Annotated[Optional[int], typer.Option(help="Only this group's faces.", show_default=False)] = None,
    unnamed: Annotated[bool, typer.Option(help="Only the faces with no person.")] = False,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """The gallery's faces: id, person, group, photo, box and quality (`remove --face ID`)."""
    on_gallery(home, database_url, as_json, lambda gallery: {"faces": gallery.faces(person, group, unnamed)}, _print_faces)


def _print_faces(r: dict[str, Any]) -> None:
    table = Table("id", "person", "group", "quality", "photo", "box", box=None)
    for f in r["faces"]:
        table.add_row(str(f["id"]), f["person"] or "-", "-" if f["group"] is None else str(f["group"]),
                      "-" if f["quality"] is None else f"{f['quality']:.2f}", f["path"], str(f["box"] or "-"))
    Console().print(table)


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
    """Show, or set, the similarity below which a query answers n000000, and where it came
    from: default, encoder (its stated calibration), fpir (the gallery's photos), tuned
    (bench --tune) or manual."""
    if value is not None and fpir is not None:
        raise typer.BadParameter("give a VALUE or --fpir, not both", param_hint="--fpir")
    with failures(as_json):
        with open_gallery(home, database_url) as gallery:
            estimate = None
            if value is not None:
                gallery.set_threshold(value)
            elif fpir is not None:
                estimate = gallery.set_threshold_at_fpir(fpir).to_dict()
            decision = gallery.decision()
            result = {"threshold": decision["threshold"], "threshold_source": decision["threshold_source"]}
            if estimate is not None:
                result.update(fpir=estimate["fpir"], estimated_from=estimate["estimated_from"])

        def human(r: dict[str, Any]) -> None:
            extra = f" (fpir {r['fpir']}, from {r['estimated_from']} stranger queries)" if "fpir" in r else ""
            typer.echo(f"{r['threshold']:.4f} {r['threshold_source']}{extra}")

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


def main() -> None:
    app(prog_name="facesearch")


if __name__ == "__main__":
    main()
