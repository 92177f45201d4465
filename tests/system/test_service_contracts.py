"""The import-linter contracts that keep the other services on contacts' public modules, and the gateway on
generator's and importexport's, name every other module of theirs: a module added later is forbidden
from day one."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import contacts
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


CONTACTS_PUBLIC = {
    "commands",
    "asks",
    "client",
    "views",
    "errors",
    "events",
    "statuses",
    "campaigns",
    "message",
}


def test_every_private_module_of_contacts_is_forbidden_to_the_other_services() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["source_modules"] == ["generator", "importexport", "gateway"]
    )
    private = {
        f"contacts.{module.name}"
        for module in pkgutil.iter_modules(contacts.__path__)
        if module.name not in CONTACTS_PUBLIC
    }
    assert private, "contacts has private modules"
    assert private - set(contract["forbidden_modules"]) == set()
    assert "ignore_imports" not in contract
