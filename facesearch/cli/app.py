"""What every command shares: the Typer app, its common options, and the frame that keeps the
contract (docs/design.md): with ``--json`` every command prints exactly one JSON object on
stdout, progress and logs go to stderr; exit 0 on success, 1 on a failure of the input or the
state (one-line message on stderr, no traceback), 2 on bad usage.

The commands live in the modules named for what they work on (``gallery_commands``,
``people_commands``, ``model_commands``), each registering on this ``app``; ``main`` gathers them.
"""

from __future__ import annotations

import json
import logging
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


