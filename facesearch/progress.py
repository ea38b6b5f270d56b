"""How long work reports its progress: one callable type for enroll, training and the caches,
so the CLI draws every bar from the same hook, and a library caller may pass its own."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """progress(stage, done, total, info): ``stage`` names the work ("embedding", "epoch 3"),
    ``info`` adds a short figure ("loss 1.23") or is empty."""

    def __call__(self, stage: str, done: int, total: int, info: str = "") -> None: ...


def quiet(stage: str, done: int, total: int, info: str = "") -> None:
    """Progress that reports nothing (the default everywhere)."""
