"""Package names loaded on first use (PEP 562), so that importing one light module of a
package (``facesearch.training.config``, ``facesearch.models.reference``) does not import
torch through the package's ``__init__``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[name]``'s module (a
    submodule of the package) when ``name`` is first asked for."""

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    return getattr_
