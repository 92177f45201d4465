"""The import-linter contract that keeps the gateway on generator's and importexport's public modules
names every other module of theirs: a module added later is forbidden to the gateway from day one."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import generator
import importexport

PUBLIC = {"commands", "views"}
ROOT = Path(__file__).resolve().parents[2]


def test_every_private_module_of_generator_and_importexport_is_forbidden_to_the_gateway() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["source_modules"] == ["gateway"] and "generator.batch" in c.get("forbidden_modules", [])
    )
    private = {
        f"{package.__name__}.{module.name}"
        for package in (generator, importexport)
        for module in pkgutil.iter_modules(package.__path__)
        if module.name not in PUBLIC
    }
    assert private - set(contract["forbidden_modules"]) == set()
    assert "ignore_imports" not in contract
