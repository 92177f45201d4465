"""deploy/Dockerfile and .dockerignore, read without a Docker engine: stages, user, healthcheck, contents."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
DEV_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "ruff", "mypy", "import-linter", "schemathesis"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def dockerignore_excludes(path: str) -> bool:
    """Whether the build context leaves ``path`` out (.dockerignore: the last matching pattern wins)."""
    excluded = False
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for raw in lines:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        regex = (
            re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        )
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


def test_the_image_is_multi_stage_and_runs_as_a_user_that_is_not_root_with_a_healthcheck() -> None:
    assert sum(word == "FROM" for word, _ in instructions()) >= 2
    final = final_stage()
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1] not in ("root", "0")
    assert any(word == "HEALTHCHECK" and "healthcheck.py" in rest for word, rest in final)
    assert any(word == "COPY" and rest.startswith("--from=build /opt/venv") for word, rest in final)


def test_the_image_installs_the_server_packages_against_the_lock_not_the_whole_lock() -> None:
    """The lock also pins the dev tools: installing it with -r would put them in the image."""
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert "-r requirements/lock.txt" not in runs
    assert "--constraint requirements/lock.txt" in runs
    for package in ("kernel[server]", "services/contacts", "services/gateway", "system"):
        assert package in runs
    assert "./client" not in runs
    assert "./services/dialer-agent" not in runs


def server_closure() -> set[str]:
    """Every distribution the server packages need (the image's contents), from installed metadata."""
    pending: list[tuple[str, frozenset[str]]] = [
        ("callmanager-system", frozenset()),
        ("callmanager-kernel", frozenset({"server"})),
    ]
    seen: set[str] = set()
    while pending:
        name, extras = pending.pop()
        key = f"{canonicalize_name(name)}{sorted(extras)}"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # an optional dependency not installed here
        for text in requires:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(e) for e in environments):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return {entry.split("[")[0] for entry in seen}


def test_no_development_tool_is_a_dependency_of_the_server_packages() -> None:
    closure = server_closure()
    assert "callmanager-gateway" in closure
    assert "uvicorn" in closure
    assert not closure & DEV_TOOLS, closure & DEV_TOOLS
    assert "callmanager-client" not in closure


def test_the_build_context_leaves_out_secrets_data_and_tests_but_has_what_the_dockerfile_copies() -> None:
    for left_out in (
        ".env",
        "system/.env",
        "var/callmanager.db",
        "var/backups/callmanager-20261207-030000.db",
        "kernel/src/kernel/__pycache__/settings.cpython-311.pyc",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "client/src/client/app.py",
        "bench/run.py",
    ):
        assert dockerignore_excludes(left_out), left_out
    copied = [
        rest.split()[0] for word, rest in instructions() if word == "COPY" and not rest.startswith("--")
    ]
    assert copied
    for source in copied:
        assert not dockerignore_excludes(source), source
    assert not dockerignore_excludes("services/gateway/src/gateway/app.py")


def test_the_container_healthcheck_fails_when_nothing_answers() -> None:
    from tests.support.servers import free_port

    checked = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "healthcheck.py"), str(free_port())],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert checked.returncode == 1
    assert "unhealthy" in checked.stderr
