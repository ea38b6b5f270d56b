"""The ``facesearch`` command line: thin on purpose; the library does the work.

The app and what every command shares are in ``facesearch.cli.app``; the commands in the
modules named for what they work on, imported here in the order ``--help`` lists them.
"""

from __future__ import annotations

# Each registers its commands on the app; --help lists them in the order of these lines.
from facesearch.cli import gallery_commands  # noqa: F401
from facesearch.cli import people_commands  # noqa: F401
from facesearch.cli import model_commands  # noqa: F401
from facesearch.cli.app import IndexKind, ScoringRule, app

__all__ = ["IndexKind", "ScoringRule", "app", "main"]


def main() -> None:
    app(prog_name="facesearch")


if __name__ == "__main__":
    main()
