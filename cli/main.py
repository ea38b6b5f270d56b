"""The ``facesearch`` command line: thin on purpose; the library does the work.

Contract (DESIGN.md): with ``--json`` every command prints exactly one JSON object on stdout,
progress and logs go to stderr; exit 0 on success, 1 on a failure of the input or the state
(one-line message on stderr, no traceback), 2 on bad usage.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(
    name="facesearch",
    help="Face search engine: enroll a gallery of known people, then ask who a face is.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DeviceOption = Annotated[
    str, typer.Option("--device", help="Where the encoder runs: auto, cpu or cuda.")
]
ModelOption = Annotated[
    Optional[Path],
    typer.Option("--model", help="Model file (from `facesearch train`).", show_default=False),
]


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
    except (FaceSearchError, OperationalError) as exc:
        message = str(exc.orig) if isinstance(exc, OperationalError) else str(exc)
        stderr.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
        if as_json:
            typer.echo(json.dumps({"error": message}))
        raise typer.Exit(1) from None


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback for the library that draws one Rich bar per stage on stderr."""
    bars = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


def open_gallery(home: Path | None, device: str = "auto") -> Any:
    from facesearch.engine import Gallery

    return Gallery(home, device=None if device == "auto" else device)


@app.command()
def enroll(
    folder: Annotated[Path, typer.Argument(help="DIR/<identity>/<images> or DIR/<identity>.<ext>")],
    model: ModelOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per encoder batch.")] = 64,
    workers: Annotated[
        Optional[int], typer.Option(min=0, help="Decode processes [default: by input size].")
    ] = None,
    commit_every: Annotated[
        int, typer.Option(min=1, help="Faces per transaction (a crash loses at most these).")
    ] = 2048,
    reembed: Annotated[
        bool,
        typer.Option(help="First re-embed the whole gallery with --model (another encoder)."),
    ] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any file failed.")] = False,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Embed, store and index every new image of a gallery folder (incremental)."""
    with failures(as_json):
        if reembed and model is None:
            raise typer.BadParameter("--reembed needs --model", param_hint="--reembed")
        with open_gallery(home, device) as gallery, progress_bars() as progress:
            reembedded = gallery.reembed(model, batch_size, workers, progress) if reembed else 0
            report = gallery.enroll(
                folder, model, batch_size, workers, commit_every, progress=progress
            )
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
    typer.echo(
        f"enrolled {r['enrolled']}, skipped {r['skipped']} already enrolled, "
        f"failed {len(r['failed'])}; gallery: {r['identities']} identities, {r['faces']} faces"
    )


@app.command()
def query(
    image: Annotated[Path, typer.Argument(help="A face crop.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Identities to list.")] = 5,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is this? The best identity, or n000000 when no one scores above the threshold."""
    with failures(as_json):
        with open_gallery(home, device) as gallery:
            result = gallery.query(image, top_k, model).to_dict()
        emit(as_json, result, _print_query)


def _print_query(r: dict[str, Any]) -> None:
    typer.echo(f"{r['identity']}  score {r['score']:.4f}  (threshold {r['threshold']:.4f})")
    table = Table("rank", "identity", "score", "image", box=None)
    for rank, match in enumerate(r["matches"], start=1):
        table.add_row(str(rank), match["identity"], f"{match['score']:.4f}", match["image"])
    Console().print(table)


@app.command()
def identities(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List enrolled identities with their number of faces."""
    with failures(as_json):
        with open_gallery(home) as gallery:
            result = {"identities": gallery.identities()}

        def human(r: dict[str, Any]) -> None:
            for row in r["identities"]:
                typer.echo(f"{row['faces']:6d}  {row['identity']}")

        emit(as_json, result, human)


@app.command()
def remove(
    identity: Annotated[str, typer.Argument(help="The identity to delete, with all their faces.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a person: their rows, embeddings and index vectors (none of their data remains)."""
    with failures(as_json):
        with open_gallery(home) as gallery:
            result = {"removed": identity, "faces": gallery.remove(identity)}
        emit(as_json, result, lambda r: typer.echo(f"removed {r['removed']} ({r['faces']} faces)"))


@app.command()
def threshold(
    value: Annotated[
        Optional[float],
        typer.Argument(min=-1.0, max=1.0, help="New threshold (cosine similarity); omit to show."),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show, or set, the similarity below which a query answers n000000."""
    with failures(as_json):
        with open_gallery(home) as gallery:
            if value is not None:
                gallery.set_threshold(value)
            result = {"threshold": gallery.threshold}
        emit(as_json, result, lambda r: typer.echo(f"{r['threshold']:.4f}"))


@app.command()
def info(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Gallery summary: model, counts, threshold, index state, device."""
    with failures(as_json):
        with open_gallery(home) as gallery:
            result = gallery.info()

        def human(r: dict[str, Any]) -> None:
            for key, value in r.items():
                if isinstance(value, dict):
                    value = ", ".join(f"{k}={v}" for k, v in value.items())
                typer.echo(f"{key:>16}: {value}")

        emit(as_json, result, human)


@app.command()
def synth(
    folder: Annotated[Path, typer.Argument(help="Where to write <identity>/<nnnn>.jpg.")],
    identities: Annotated[int, typer.Option("--identities", min=1)] = 20,
    images: Annotated[int, typer.Option("--images", min=1, help="Images per identity.")] = 5,
    size: Annotated[int, typer.Option(min=16)] = 112,
    seed: Annotated[int, typer.Option()] = 0,
    first_image: Annotated[int, typer.Option(help="Index of the first image per identity.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Write synthetic faces (deterministic) for demos and tests."""
    from facesearch.synthetic import write_dataset

    paths = write_dataset(folder, identities, images, size, seed, first_sample=first_image)
    result = {"dir": str(folder), "identities": identities, "images": len(paths)}
    emit(as_json, result, lambda r: typer.echo(f"wrote {r['images']} images of {r['identities']} identities to {r['dir']}"))


def main() -> None:
    app(prog_name="facesearch")


if __name__ == "__main__":
    main()
