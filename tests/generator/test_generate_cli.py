"""``callmanager generate``: files written and read back, and ``--save`` into a data dir."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
import structlog
from typer.testing import CliRunner, Result

from contacts.queries import ContactQueries
from contacts.views import ContactFilters
from kernel.phone import parse_phone
from kernel.settings import Settings
from kernel.store import create_engine
from system.cli import app

HEADERS = ["numero", "formateado", "e164", "operador"]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke ``callmanager`` in an empty directory, with no CallManager setting in the environment."""
    for name, field in Settings.model_fields.items():
        for alias in getattr(field.validation_alias, "choices", [name]):
            monkeypatch.delenv(str(alias), raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        # The command configures logging for the process; put the test session's back afterwards.
        root = logging.getLogger()
        handlers, level, config = root.handlers[:], root.level, structlog.get_config()
        try:
            return runner.invoke(app, list(args))
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            structlog.reset_defaults()
            structlog.configure(**config)

    return invoke


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f, delimiter=";"))


def test_csv_holds_the_numbers_split_equally_and_the_same_seed_repeats_them(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    first = run("generate", "--count", "300", "--method", "simple", "--seed", "5", "--out", "a.csv")
    again = run("generate", "-n", "300", "-m", "simple", "--seed", "5", "-o", "b.csv")

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    rows = read_csv(tmp_path / "a.csv")
    assert rows[0] == HEADERS
    assert len(rows) == 301
    assert len({r[0] for r in rows[1:]}) == 300
    assert [r[3] for r in rows[1:]].count("claro") == 100
    for number, formatted, _e164, operator in rows[1:]:
        assert formatted == f"{number[:4]}-{number[4:]}"
        assert parse_phone(number).operator == operator
    assert read_csv(tmp_path / "b.csv") == rows
    assert "Claro" in first.stderr


def test_xlsx_holds_the_numbers_with_the_configured_shares(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    result = run("generate", "--count", "200", "--out", "numeros.xlsx")

    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(tmp_path / "numeros.xlsx", read_only=True).active
    assert sheet is not None
    rows = [[str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADERS
    assert len(rows) == 201
    operators = [r[3] for r in rows[1:]]
    assert (operators.count("kolbi"), operators.count("telefonica"), operators.count("claro")) == (80, 70, 50)


def test_without_a_file_the_numbers_are_printed(run: Callable[..., Result]) -> None:
    result = run("generate", "--count", "7", "--seed", "1")
    assert result.exit_code == 0, result.output
    printed = result.stdout.split()
    assert len(printed) == 7
    assert all(parse_phone(p).operator for p in printed)


def test_an_unknown_file_type_is_refused(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("generate", "--count", "5", "--out", "numeros.txt")
    assert result.exit_code == 2
    assert ".csv o .xlsx" in result.stderr
    assert not (tmp_path / "numeros.txt").exists()


def test_saved_numbers_become_contacts_and_a_second_run_adds_no_duplicate(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = run(
        "generate", "-n", "150", "--seed", "9", "--save", "--list", "campaña-1", "--data-dir", str(data_dir)
    )
    second = run(
        "generate", "-n", "150", "--seed", "9", "--save", "--list", "campaña-2", "--data-dir", str(data_dir)
    )

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "guardados 150" in second.stderr
    assert "redibujados 150" in second.stderr
    engine = create_engine(f"sqlite:///{data_dir / 'callmanager.db'}")
    try:
        queries = ContactQueries(engine)
        one = queries.list_contacts(ContactFilters(list_name="campaña-1"), 1000).items
        two = queries.list_contacts(ContactFilters(list_name="campaña-2"), 1000).items
    finally:
        engine.dispose()
    assert len(one) == len(two) == 150
    assert {c.phone_e164 for c in one}.isdisjoint({c.phone_e164 for c in two})
    assert all(c.operator in {"kolbi", "telefonica", "claro"} for c in one)
