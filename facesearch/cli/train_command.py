"""The ``train`` command, built from TrainConfig's fields: each option is defined once, in
``facesearch.training.config``, with its help and bounds, and becomes a flag here.

Every flag defaults to "not given", so that a recipe (``--config FILE``) fills what the
command line leaves out, and TrainConfig's defaults fill the rest; the help shows those
defaults. Importing this module costs no torch.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from facesearch.training.augment import AugmentConfig
from facesearch.training.recipes import FIELDS, base_type

COMMAND_ONLY = ("config", "resume", "checkpoint", "as_json")


def _annotation(name: str) -> Any:
    """Typer's view of one TrainConfig field: an optional value of its type, with its help,
    its bounds and its default shown."""
    field = FIELDS[name]
    meta = field.metadata
    kind, _ = base_type(name)
    default = field.default if field.default is not inspect.Parameter.empty else None
    helptext = meta["help"]
    if "[default" not in helptext and default not in (None, (), "") and not callable(default) and not isinstance(default, bool):
        helptext += f" [default: {default}]"
    if name == "data":
        return Annotated[Optional[Path], typer.Argument(help=helptext, show_default=False, metavar="DATA")]
    flag = "--" + name.replace("_", "-")
    if kind is bool:
        return Annotated[Optional[bool], typer.Option(f"{flag}/--no-{flag[2:]}", help=helptext, show_default=False)]
    bounds = {k: v for k, v in (("min", meta["low"]), ("max", meta["high"])) if v is not None}
    if typing.get_origin(kind) is tuple:
        return Annotated[Optional[list[Path]], typer.Option(flag, help=helptext, show_default=False)]
    if kind is AugmentConfig:
        return Annotated[Optional[str], typer.Option(flag, help=helptext, show_default=False)]
    if meta["path"]:
        return Annotated[Optional[Path], typer.Option(flag, help=helptext, show_default=False)]
    python_type = {int: int, float: float, str: str}[kind]
    if python_type is str:
        bounds = {}
    return Annotated[Optional[python_type], typer.Option(flag, help=helptext, show_default=False, **bounds)]


def parameters() -> list[inspect.Parameter]:
    """The command's parameters: DATA, every TrainConfig option, then the command's own."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(name, keyword, default=None, annotation=_annotation(name)) for name in FIELDS]
    params += [
        inspect.Parameter("config", keyword, default=None, annotation=Annotated[Optional[Path], typer.Option(
            "--config", help="A recipe: TrainConfig's options in a TOML file (recipes/); flags win over it.",
            show_default=False)]),
        inspect.Parameter("resume", keyword, default=False, annotation=Annotated[bool, typer.Option(
            help="Continue from the run folder's checkpoint.")]),
        inspect.Parameter("checkpoint", keyword, default=None, annotation=Annotated[Optional[Path], typer.Option(
            help="Resume from this checkpoint (such as another run's phase1.pt).", show_default=False)]),
        inspect.Parameter("as_json", keyword, default=False, annotation=Annotated[bool, typer.Option(
            "--json", help="Print one JSON object on stdout.")]),
    ]
    return params


def command(run: Callable[..., None]) -> Callable[..., None]:
    """``run(options, config, resume, checkpoint, as_json)`` as a function whose signature
    Typer reads as the ``train`` command's (``options``: the TrainConfig flags given)."""

    def train(**given: Any) -> None:
        own = {name: given.pop(name) for name in COMMAND_ONLY}
        run(given, **own)

    train.__doc__ = run.__doc__
    params = parameters()
    train.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    train.__annotations__ = {p.name: p.annotation for p in params}
    return train
