"""Training recipes: a run's options kept in a TOML file (``facesearch train --config FILE``).

A recipe's keys are TrainConfig's fields (``lr``, ``arcface_epochs``, or as flags spell them,
``arcface-epochs``); flags given on the command line win over the file. Paths in a recipe are
read like paths on the command line: relative to the working directory, so the recipes in
``recipes/`` name ``../shared/datasets/...`` from the project's root (``~`` is the user's home). A key TrainConfig does
not have, a value of the wrong type or out of bounds, or a file that cannot be read is refused
with one line naming it, before anything runs.

A recipe may be a chain of runs, each from the one before (how the shipped reference was
made): the top-level keys hold for every run, and each ``[[stage]]`` table adds or overrides
keys for one run, in order. Every stage names its ``out``; a stage without ``init`` starts
from the previous stage's model file. Flags hold for every stage, except ``--out``, which
names the last stage's model file.
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

from facesearch.errors import InputError
from facesearch.training.augment import AugmentConfig
from facesearch.training.config import TrainConfig

FIELDS: dict[str, Field] = {f.name: f for f in fields(TrainConfig)}
TYPES: dict[str, Any] = typing.get_type_hints(TrainConfig)


def base_type(name: str) -> tuple[Any, bool]:
    """(the field's type without ``None``, whether it may be None)."""
    hint = TYPES[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe's options, checked against TrainConfig (values as the file gives them); a
    chain of stages is refused here (``read_stages`` reads those)."""
    stages = read_stages(path)
    if len(stages) > 1:
        raise InputError(f"{path}: a recipe of {len(stages)} stages, where one run was expected")
    return stages[0]


def read_stages(path: str | Path) -> list[dict[str, Any]]:
    """Each run of the recipe, in order, as its options (one for a plain recipe); every
    stage of a chain has its ``out`` and, but the first, an ``init`` (the previous ``out``
    unless it names one)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the recipe ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not a TOML recipe ({exc})") from None
    chain = data.pop("stage", None)
    shared = _options(data, path, "")
    if chain is None:
        return [shared]
    if not isinstance(chain, list) or not chain or not all(isinstance(t, dict) for t in chain):
        raise InputError(f"{path}: stage must be one or more [[stage]] tables")
    stages: list[dict[str, Any]] = []
    for number, table in enumerate(chain, 1):
        stage = {**shared, **_options(table, path, f"stage {number}: ")}
        if "out" not in stage:
            raise InputError(f"{path}: stage {number}: every stage names its out")
        if stages and "init" not in table:
            stage["init"] = stages[-1]["out"]
        stages.append(stage)
    return stages


def _options(table: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    values = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise InputError(f"{path}: {where}unknown key {key!r} (the keys are train's options: facesearch train --help)")
        values[name] = check(name, value, f"{path}: {where}{key}")
    return values


def check(name: str, value: Any, where: str) -> Any:
    """``value`` for the field ``name`` if it has the field's type and bounds, else an
    InputError that starts with ``where``."""
    kind, _ = base_type(name)
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind)
    if kind is AugmentConfig:
        if isinstance(value, list) and all(isinstance(v, str) for v in value) or isinstance(value, str):
            return value
        raise InputError(f"{where} must be a string or a list of augmentation names, not {value!r}")
    if typing.get_origin(kind) is tuple:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise InputError(f"{where} must be a list of strings, not {value!r}")
    fits = (isinstance(value, bool) if kind is bool else
            isinstance(value, int) and not isinstance(value, bool) if kind is int else
            isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
            isinstance(value, str))
    if not fits:
        raise InputError(f"{where} must be {expected}, not {value!r}")
    meta = FIELDS[name].metadata
    if meta["low"] is not None and value < meta["low"] or meta["high"] is not None and value > meta["high"]:
        bounds = f"at least {meta['low']}" if meta["high"] is None else f"between {meta['low']} and {meta['high']}"
        raise InputError(f"{where} must be {bounds}, not {value!r}")
    return float(value) if kind is float else value


def config_from(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from options as a recipe or the command line give them: path options
    made absolute against the working directory (the run's output paths kept as given),
    augmentations by name, ``device`` "auto" as unset."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if FIELDS[name].metadata["path"] and name not in ("out", "run_dir"):
            value = ([str(Path(v).expanduser().resolve()) for v in value] if isinstance(value, (list, tuple))
                     else str(Path(value).expanduser().resolve()))
        if name == "augment":
            value = AugmentConfig.parse(value)
        if name == "unlabelled":
            value = tuple(value)
        if name in ("out", "run_dir"):
            value = str(value)
        if name == "device" and value == "auto":
            continue
        out[name] = value
    return TrainConfig(**out)
