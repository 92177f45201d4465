"""Write ``requirements/desk.txt``: exact pins for the desk programs (client, dialer agent) and PyInstaller.

The ranges come from the client's, the dialer agent's and the kernel's ``pyproject.toml`` (the kernel
without its ``server`` extra), held to the versions of ``requirements/lock.txt``. pip resolves them once per
desk platform (Windows, the target; Linux, where CI builds and tests) with that platform's markers, and
every pin gets the marker of the platforms that need it, so one file installs on both. Needs network
access; run it with the interpreter of the desks' Python version (3.11)::

    python desk/lock.py

``python desk/lock.py --main`` gives ``requirements/lock.txt`` (every distribution and the dev tools, its
versions kept) the same markers; ``make lock`` runs both after re-resolving the main lock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESK_PROJECTS = ("kernel", "client", "services/dialer-agent")
BUILD_TOOLS = ("pyinstaller>=6.22,<7", "pyinstaller-hooks-contrib>=2026.10")
EXTRAS = {"services/dialer-agent": ("keyring",)}
# Every distribution of the main lock, with the extras it is installed with.
MAIN_PROJECTS = (
    "kernel", "services/contacts", "services/generator", "services/importexport", "services/gateway",
    "services/dialer-agent", "client", "system", ".",
)  # fmt: skip
MAIN_EXTRAS = {"kernel": ("server",), "services/dialer-agent": ("keyring",), ".": ("dev",)}
MAIN_HEADER = [
    "# Exact versions for every CallManager distribution and the dev tools.",
    "# Regenerate with: make lock",
]
DESK_HEADER = [
    "# Exact versions for the desk programs (client, dialer agent) and their PyInstaller build.",
    "# From the ranges of kernel/, client/ and services/dialer-agent/ held to lock.txt; one file for",
    "# Windows desks and Linux builds (platform markers). Regenerate with: python desk/lock.py",
]

# The target of each resolve: pip's --platform tag and the markers pip evaluates for it.
PLATFORMS: dict[str, tuple[str, dict[str, str]]] = {
    "win32": ("win_amd64", {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}),
    "linux": (
        "manylinux2014_x86_64",
        {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    ),
}

# Runs pip in a child interpreter with the target's markers (pip evaluates markers for the host otherwise).
_PIP_AS = """
import json, sys
from pip._vendor.packaging import markers
overrides = json.loads(sys.argv[1])
base = markers.default_environment
markers.default_environment = lambda: {**base(), **overrides}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def requirements_of(projects: tuple[str, ...], extras: dict[str, tuple[str, ...]]) -> list[str]:
    """The third-party requirement ranges of ``projects`` (with their ``extras``)."""
    lines: list[str] = []
    for project in projects:
        data = tomllib.loads((ROOT / project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        wanted = list(data.get("dependencies", []))
        for extra in extras.get(project, ()):
            wanted += data.get("optional-dependencies", {}).get(extra, [])
        lines += [line for line in wanted if not line.startswith("callmanager-")]
    return sorted(set(lines))


def resolve(platform: str, requirements: list[str], workdir: Path) -> dict[str, str]:
    """Name → version of everything pip would install for ``platform`` (CPython 3.11, wheels only)."""
    tag, overrides = PLATFORMS[platform]
    report = workdir / f"{platform}.json"
    (workdir / "in.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    command = [
        sys.executable, "-c", _PIP_AS, json.dumps(overrides),
        "install", "--dry-run", "--quiet", "--ignore-installed", "--only-binary=:all:",
        "--platform", tag, "--python-version", "3.11", "--implementation", "cp",
        "--target", str(workdir / "target"), "--report", str(report),
        "-c", str(ROOT / "requirements" / "lock.txt"), "-r", str(workdir / "in.txt"),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - our own interpreter
    installed = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in installed}


def marker_for(platforms: set[str]) -> str:
    """The environment marker selecting ``platforms`` ('' for all of them). Linux-only pins are marked
    "not Windows" (``uvloop ; sys_platform != "win32"``) so a macOS developer still gets them."""
    if platforms == set(PLATFORMS):
        return ""
    if platforms == {"linux"}:
        return ' ; sys_platform != "win32"'
    return " ; " + " or ".join(f'sys_platform == "{p}"' for p in sorted(platforms))


def write_lock(requirements: list[str], out: Path, header: list[str]) -> int:
    """Resolve ``requirements`` for every platform and write the merged, marked pins to ``out``."""
    pins: dict[tuple[str, str], set[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for platform in PLATFORMS:
            for name, version in resolve(platform, requirements, Path(tmp)).items():
                pins.setdefault((name, version), set()).add(platform)
    lines = [f"{name}=={version}{marker_for(where)}" for (name, version), where in pins.items()]
    out.write_text("\n".join(header + sorted(lines, key=str.lower)) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)} ({len(lines)} pins)")
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    """Write ``requirements/desk.txt`` (or, with ``--main``, mark ``requirements/lock.txt``)."""
    parser = argparse.ArgumentParser(description="Platform-marked exact pins for Windows and Linux.")
    parser.add_argument("--main", action="store_true", help="rewrite requirements/lock.txt instead")
    args = parser.parse_args(argv)
    if args.main:
        write_lock(
            requirements_of(MAIN_PROJECTS, MAIN_EXTRAS), ROOT / "requirements" / "lock.txt", MAIN_HEADER
        )
    else:
        desk = requirements_of(DESK_PROJECTS, EXTRAS) + list(BUILD_TOOLS)
        write_lock(sorted(desk), ROOT / "requirements" / "desk.txt", DESK_HEADER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
