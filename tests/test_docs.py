"""Docs that the code keeps true: the command reference (docs/cli.md) has every command and
option of `facesearch --help` and is what the CLI writes; the design contract names every
command; the code points to the repository's copy of the design, not one outside it."""

from __future__ import annotations

import re
from pathlib import Path

from facesearch.cli.reference import commands, parameters, reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def sections(text: str) -> dict[str, str]:
    """The reference's text under each ``## facesearch NAME`` heading."""
    parts = re.split(r"^## facesearch (\S+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_command_reference_has_every_command_and_option() -> None:
    written = sections((DOCS / "cli.md").read_text())
    missing = []
    for name, command in commands().items():
        if name not in written:
            missing.append(f"command {name}")
            continue
        for names, _ in parameters(name, command):
            for option in re.findall(r"--?[\w-]+", names.split(" <")[0]) or [names.split(" ")[0]]:
                if option not in written[name]:
                    missing.append(f"{name} {option}")
    assert not missing, f"docs/cli.md lacks {missing}: run python -m facesearch.cli.reference > docs/cli.md"
    assert set(written) == set(commands()), "docs/cli.md describes commands the CLI does not have"


def test_the_command_reference_is_what_the_cli_writes() -> None:
    assert (DOCS / "cli.md").read_text() == reference(), "run python -m facesearch.cli.reference > docs/cli.md"


def test_the_design_contract_names_every_command() -> None:
    design = (DOCS / "design.md").read_text()
    assert [name for name in commands() if f"`{name}" not in design] == []


def test_the_code_points_to_the_design_in_the_repository() -> None:
    outside = [str(path.relative_to(ROOT)) for folder in ("facesearch", "tests", "benchmarks", "scripts", "docs")
               for path in (ROOT / folder).rglob("*") if path.suffix in {".py", ".md"} and path.is_file()
               and path.name != "test_docs.py" and "shared/DESIGN.md" in path.read_text(errors="ignore")]
    assert outside == [] and "shared/DESIGN.md" not in (ROOT / "README.md").read_text()
