"""The command reference (docs/cli.md), written from the CLI itself: every command with its
help, usage, arguments and options, as ``facesearch COMMAND --help`` gives them, in the order
``facesearch --help`` lists the commands.

    python -m facesearch.cli.reference > docs/cli.md

tests/test_docs.py fails when docs/cli.md misses a command or an option, or is not what this
writes: the reference cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import typer

HEADER = """# Command reference

Every command and option of `facesearch`, written from the CLI by `python -m
facesearch.cli.reference > docs/cli.md` (a test checks it is current). The JSON keys, exit codes
and bad inputs each command promises are in [design.md](design.md); longer explanations with
measured figures in [commands.md](commands.md).
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _group() -> Any:
    from facesearch.cli.main import app

    return typer.main.get_command(app)


def commands() -> dict[str, Any]:
    """The CLI's commands (click commands) by name, in ``--help``'s order."""
    group = _group()
    return {name: group.commands[name] for name in group.list_commands(typer.Context(group))}


def parameters(name: str, command: Any) -> list[tuple[str, str]]:
    """(names and type, help) of each argument and option of a command, as its --help has them."""
    context = typer.Context(command, info_name=f"facesearch {name}")
    records = [p.get_help_record(context) for p in command.params if not getattr(p, "hidden", False)]
    return [record for record in records if record]


def command_section(name: str, command: Any) -> str:
    """One command's part of the reference: its help, usage and a row per parameter."""
    context = typer.Context(command, info_name=f"facesearch {name}")
    lines = [f"## facesearch {name}", "", (command.help or "").strip(), "",
             "```", command.get_usage(context).removeprefix("Usage: "), "```", ""]
    rows = parameters(name, command)
    if rows:
        lines += ["| argument or option | what it does |", "|---|---|"]
        lines += [f"| `{_cell(names)}` | {_cell(help_text)} |" for names, help_text in rows]
        lines.append("")
    return "\n".join(lines)


def reference() -> str:
    """The whole of docs/cli.md."""
    group = _group()
    context = typer.Context(group, info_name="facesearch")
    top = [f"`{names}`: {help_text.rstrip('.')}" for names, help_text in
           (p.get_help_record(context) for p in group.params) if names and "--help" not in names]
    parts = [HEADER, "Options before the command: " + "; ".join(top) + ".\n", "Commands: " +
             ", ".join(f"[`{name}`](#facesearch-{name})" for name in commands()) + ".\n"]
    parts += [command_section(name, command) for name, command in commands().items()]
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
