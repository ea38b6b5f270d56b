"""Folder layouts the commands read: where the images are and whose they are."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from facesearch import UNKNOWN
from facesearch.errors import InputError
from facesearch.embedding.imaging import is_candidate


@dataclass(frozen=True)
class LabelledImage:
    identity: str | None  # None: a photo of people nobody has named (enroll --unnamed)
    path: Path


@dataclass(frozen=True)
class Problem:
    """An input that was not used, with the reason (reported, never silently dropped)."""

    path: Path
    error: str


MAX_IDENTITY = 200


def check_identity(name: str) -> str:
    """An identity name given as text (serve's enroll), refused unless it could be a folder
    name of a gallery: not empty, no path separators, no control characters, not ``.``/``..``,
    not the reserved ``n000000``."""
    if not name or not name.strip():
        raise InputError("the identity name is empty")
    if len(name) > MAX_IDENTITY:
        raise InputError(f"the identity name is {len(name)} characters long, over the limit of {MAX_IDENTITY}")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"the identity name {name!r} is not a plain name (no '/', '\\', '.' or '..')")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise InputError(f"the identity name {name!r} holds control characters")
    if name == UNKNOWN:
        raise InputError(f"the identity {UNKNOWN!r} is reserved for 'no correspondence' and cannot be enrolled")
    return name


def gallery_images(root: str | Path) -> tuple[list[LabelledImage], list[Problem]]:
    """Images of a gallery folder: ``DIR/<identity>/<images>`` and ``DIR/<identity>.<ext>``.

    Images may sit at any depth below an identity folder. Hidden files and obvious non-image
    files (notes, CSVs) are ignored; an identity folder with no image is reported.
    """
    root = _folder(root, "enroll takes DIR/<identity>/<images>")
    images: list[LabelledImage] = []
    problems: list[Problem] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = sorted(p for p in entry.rglob("*") if p.is_file() and is_candidate(p))
            if not files:
                problems.append(Problem(entry, "empty folder: no images for this identity"))
            images.extend(LabelledImage(entry.name, path) for path in files)
        elif entry.is_file() and is_candidate(entry):
            images.append(LabelledImage(entry.stem, entry))
    for image in images:
        if image.identity == UNKNOWN:
            raise InputError(
                f"{image.path}: the identity {UNKNOWN!r} is reserved for 'no correspondence' "
                "and cannot be enrolled"
            )
    if not images and not problems:
        raise InputError(
            f"{root}: no images found (expected DIR/<identity>/<images> or DIR/<identity>.<ext>)"
        )
    return images, problems


def unnamed_images(root: str | Path) -> tuple[list[LabelledImage], list[Problem]]:
    """Every image below ``root``, at any depth, with no name (``enroll --unnamed``: a photo
    library, whose folders are albums, not people). Hidden files and folders are skipped."""
    root = _folder(root, "enroll --unnamed takes a folder of photos, at any depth")
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and is_candidate(p) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise InputError(f"{root}: no images found below it")
    return [LabelledImage(None, path) for path in files], []


def _folder(root: str | Path, usage: str) -> Path:
    """``root`` as a Path when it is a folder, else the one-line error enroll gives."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder ({usage})")
    return root
