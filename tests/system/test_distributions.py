"""Each distribution declares what its code imports, so it installs and runs on its own.

Why the repository keeps eight distributions instead of one: a desk installs only ``callmanager-kernel``,
``callmanager-client`` and ``callmanager-dialer`` (no server stack), and each service's pyproject says
what that service needs. That is only worth something if it is true, so this test reads every module
(lazy imports inside functions included; ``if TYPE_CHECKING:`` blocks excluded) and checks that each
third-party import is provided by the distribution's own requirements — directly, through one of its
extras, or through the requirements of what it requires (a first-party distribution, or a framework that
brings its foundation, like FastAPI's Starlette). An import only the full development environment
happens to provide fails here.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [
    "kernel",
    "services/contacts",
    "services/generator",
    "services/importexport",
    "services/gateway",
    "services/dialer-agent",
    "client",
    "system",
]
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_EXTRAS = re.compile(r"[A-Za-z0-9_.-]+\[([^\]]+)\]")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(text: str) -> tuple[str, list[str], str]:
    """Name, extras and marker of one requirement line."""
    name = _NAME.match(text)
    assert name is not None, text
    extras = _EXTRAS.match(text)
    marker = text.partition(";")[2].strip()
    wanted = [e.strip() for e in extras.group(1).split(",")] if extras else []
    return _norm(name.group(0)), wanted, marker


def _applies(marker: str, extras: list[str]) -> bool:
    """Whether a requirement's marker holds here for the given extras (platform markers are kept: a
    Windows-only requirement is still declared)."""
    found = re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    return not found or any(e in extras for e in found)


@cache
def _closure(name: str, extras: tuple[str, ...]) -> frozenset[str]:
    """``name`` and every distribution its requirements (with ``extras``) bring, recursively."""
    found = {name}
    try:
        lines = requires(name) or []
    except PackageNotFoundError:
        return frozenset(found)
    for line in lines:
        dep, dep_extras, marker = _requirement(line)
        if _applies(marker, list(extras)) and dep not in found:
            found |= _closure(dep, tuple(dep_extras))
    return frozenset(found)


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in ``path``, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(sub) for sub in ast.walk(node))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_distribution_declares_what_it_imports(folder: str) -> None:
    project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    own = _norm(project["name"])
    # The distribution's own extras count for its own modules (kernel's server parts need kernel[server]).
    all_extras = tuple(project.get("optional-dependencies", {}))
    provided = set(_closure(own, all_extras))
    providers = packages_distributions()
    undeclared: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder / "src").rglob("*.py")):
        for module in _imports(path):
            if module in sys.stdlib_module_names or module not in providers:
                continue
            if not any(_norm(dist) in provided for dist in providers[module]):
                undeclared.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, f"{project['name']} imports what it does not declare: {undeclared}"


def test_the_closure_is_read_from_installed_metadata() -> None:
    """The check above means something only if the metadata it reads is there (editable installs)."""
    client = _closure("callmanager-client", ())
    assert {"customtkinter", "python-socketio", "websocket-client"} <= client
    assert "sqlalchemy" not in client, "the desk client must not bring the server's database stack"
