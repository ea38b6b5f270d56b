"""The names of the scoring rules a gallery may use (``facesearch scoring RULE``): plain words,
so the CLI offers them without importing numpy. What each rule does is ``scoring``."""

from __future__ import annotations

from facesearch.errors import InputError

RULES = ("nearest", "mean")
DEFAULT = "nearest"


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise InputError(f"unknown scoring rule {rule!r} (known: {', '.join(RULES)})")
    return rule
