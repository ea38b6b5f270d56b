"""The house's floor plan, checked: no import cycles among the project's modules, the gallery
reached only through ``Gallery``, and the CLI's words taken from the library."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facesearch"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports, anywhere in its body (a lazy import inside a
    function is still an arrow of the plan). ``from a import b`` points at ``a.b`` when that is
    a module, else at ``a``."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        arrows: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                arrows.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    arrows.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {a for a in arrows if a in modules and a != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_the_project_modules() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "facesearch.gallery.engine" in graph["facesearch.cli.app"]
    assert cycles(graph) == []


def test_the_search_engine_does_not_import_training_or_torch_networks() -> None:
    """enroll, query and serve run without torch: no arrow from the gallery, the index or the
    serving layer into training/ (models/ is reached only through the encoder loader)."""
    graph = import_graph()
    for name, arrows in graph.items():
        if name.startswith(("facesearch.gallery", "facesearch.index", "facesearch.serving")):
            assert not any(a.startswith("facesearch.training") for a in arrows), name


def test_the_gallery_is_reached_only_through_gallery() -> None:
    """Outside the gallery's own rooms nothing touches its store, lock or home: callers use
    ``Gallery``'s methods."""
    reach = re.compile(r"(?<!facesearch\.)\bgallery\.(store|lock|home)\b")  # an object, not the module
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in (PACKAGE, ROOT / "benchmarks")
        for path in folder.rglob("*.py")
        if PACKAGE / "gallery" not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if reach.search(line)
    ]
    assert offenders == []


def test_the_cli_offers_the_librarys_words() -> None:
    from facesearch.cli.main import IndexKind, ScoringRule
    from facesearch.gallery.rules import RULES
    from facesearch.index.spec import KINDS

    assert tuple(kind.value for kind in IndexKind) == KINDS
    assert tuple(rule.value for rule in ScoringRule) == RULES


def test_the_readme_is_a_front_page_whose_links_exist() -> None:
    """At most 15 KB; the reference, the measurements and the run history live in docs/ and
    benchmarks/results/, and every page it links to is there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15 * 1024
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and all((ROOT / link).exists() for link in links), [link for link in links if not (ROOT / link).exists()]
