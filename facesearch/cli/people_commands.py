"""The commands of people nobody has named yet: group the unnamed faces, then name, split,
merge, rename and move, and list the faces."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from facesearch.cli.app import DatabaseOption, GroupArgument, HomeOption, JsonOption, app, on_gallery


@app.command()
def cluster(
    full: Annotated[bool, typer.Option(help="Regroup every unnamed face (groups get new numbers).")] = False,
    threshold: Annotated[
        Optional[float], typer.Option(help="Average-linkage similarity at which groups stop merging [default: 0.2].",
                                      show_default=False)
    ] = None,
    min_quality: Annotated[
        Optional[float], typer.Option(help="Faces below this quality stay ungrouped [default: 0.05].", show_default=False)
    ] = None,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Group the unnamed faces into people (incremental: new faces join the groups there are,
    which keep their numbers); name a group with `facesearch name GROUP NAME`."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.cluster(full, threshold, min_quality),
               lambda r: typer.echo(f"{len(r['groups'])} groups of {sum(g['faces'] for g in r['groups'])} faces, "
                                    f"{r['ungrouped']} ungrouped ({r['seconds']} s)"))


@app.command()
def people(
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Named people and the groups of unnamed faces (`cluster`), with their face counts and
    one face each to show (the best quality)."""
    on_gallery(home, database_url, as_json, lambda gallery: {"people": gallery.people()}, _print_people)


def _print_people(r: dict[str, Any]) -> None:
    table = Table("person", "group", "faces", "face", box=None)
    for row in r["people"]:
        table.add_row(row["person"] or "-", "-" if row["group"] is None else str(row["group"]), str(row["faces"]),
                      "-" if row["face"] is None else str(row["face"]))
    Console().print(table)


@app.command()
def name(
    group: GroupArgument,
    person: Annotated[str, typer.Argument(help="Whose faces they are; an existing person gains them.")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Name a group once: its faces become the person's and answer queries by that name."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.name_group(group, person),
               lambda r: typer.echo(f"{r['person']}: {r['faces']} faces"))


@app.command()
def split(
    group: GroupArgument,
    faces: Annotated[list[int], typer.Argument(help="Ids of the faces to take out (`facesearch faces --group GROUP`).")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take some faces of a group into a new group: two people that were grouped as one."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.split(group, faces),
               lambda r: typer.echo(f"group {r['group']}: {r['faces']} faces"))


@app.command()
def merge(
    group: GroupArgument,
    into: Annotated[int, typer.Argument(help="The group that gains its faces and keeps its number.")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """One person grouped twice: GROUP's faces join INTO, without naming either."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.merge(group, into),
               lambda r: typer.echo(f"group {r['group']}: {r['faces']} faces"))


@app.command()
def rename(
    old: Annotated[str, typer.Argument(help="A person's name.")],
    new: Annotated[str, typer.Argument(help="Their new name; if someone has it, the two become one.")],
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rename a person, or merge them into another when NEW exists."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.rename(old, new),
               lambda r: typer.echo(f"{r['person']}: {r['faces']} faces"))


@app.command()
def move(
    face: Annotated[int, typer.Argument(help="A face id (`facesearch faces`).")],
    person: Annotated[str, typer.Argument(help="The person it shows.")],
    create: Annotated[bool, typer.Option(help="Make PERSON if nobody has that name yet.")] = False,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give one face to a person (out of its group, or from another person)."""
    on_gallery(home, database_url, as_json, lambda gallery: gallery.move(face, person, create),
               lambda r: typer.echo(f"face {r['face']} -> {r['person']} ({r['faces']} faces)"))


@app.command()
def faces(
    person: Annotated[Optional[str], typer.Option(help="Only this person's faces.", show_default=False)] = None,
    group: Annotated[Optional[int], typer.Option(help="Only this group's faces.", show_default=False)] = None,
    unnamed: Annotated[bool, typer.Option(help="Only the faces with no person.")] = False,
    home: HomeOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """The gallery's faces: id, person, group, photo, box and quality (`remove --face ID`)."""
    on_gallery(home, database_url, as_json, lambda gallery: {"faces": gallery.faces(person, group, unnamed)}, _print_faces)


def _print_faces(r: dict[str, Any]) -> None:
    table = Table("id", "person", "group", "quality", "photo", "box", box=None)
    for f in r["faces"]:
        table.add_row(str(f["id"]), f["person"] or "-", "-" if f["group"] is None else str(f["group"]),
                      "-" if f["quality"] is None else f"{f['quality']:.2f}", f["path"], str(f["box"] or "-"))
    Console().print(table)
