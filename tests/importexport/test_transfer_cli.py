"""``callmanager import`` and ``callmanager export``: on the embedded database, and through a gateway."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
import structlog
from typer.testing import CliRunner, Result

from kernel.settings import Settings
from system.cli import app
from tests.support.servers import EmbeddedServer, start_embedded

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Invoke ``callmanager`` in an empty directory, with no CallManager setting in the environment."""
    for name, field in Settings.model_fields.items():
        for alias in getattr(field.validation_alias, "choices", [name]):
            monkeypatch.delenv(str(alias), raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
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


def spreadsheet(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (
        ["Teléfono", "Nombre", "Estado"],
        [88123456.0, "Ana Pérez", "NC"],
        ["6012-3456", "Luis", "interesado"],
        ["12", "malo", ""],
        ["8812-3456", "Ana María", ""],
    ):
        sheet.append(row)
    book.save(path)
    return path


def csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))


def test_import_dry_run_then_import_then_export_on_the_embedded_database(run: Run, tmp_path: Path) -> None:
    source = spreadsheet(tmp_path / "clientes.xlsx")

    trial = run("import", str(source), "--dry-run")
    imported = run("import", str(source), "--list", "marzo", "--report", "informe.csv")
    again = run("import", str(source), "--list", "marzo")
    exported = run("export", "salida.csv", "--status", "NC", "--list", "marzo")
    everything = run("export", "todo.xlsx")

    assert trial.exit_code == 0, trial.output
    assert "se insertarían" in trial.output
    assert "modo completar vacíos" in trial.output
    assert "no se escribió nada" in trial.output
    assert imported.exit_code == 0, imported.output
    assert "insertados" in imported.output
    assert "fila 4 «12»: número demasiado corto" in imported.output
    assert [row[2] for row in csv_rows(tmp_path / "informe.csv")[1:]] == ["rechazada", "combinada"]
    assert again.exit_code == 0
    assert "sin cambios" in again.output
    assert exported.exit_code == 0, exported.output
    rows = csv_rows(tmp_path / "salida.csv")
    assert rows[0][:5] == ["id", "teléfono", "nombre", "estado", "nota"]
    assert [row[1:4] for row in rows[1:]] == [["8812-3456", "Ana María", "NC"]]
    assert everything.exit_code == 0
    sheet = openpyxl.load_workbook(tmp_path / "todo.xlsx").active
    assert sheet is not None
    assert sheet.max_row == 3


def test_a_refused_file_exits_with_its_reason(run: Run, tmp_path: Path) -> None:
    (tmp_path / "sin.csv").write_text("nombre;correo\nAna;a@b.cr\n", encoding="utf-8")

    result = run("import", "sin.csv")

    assert result.exit_code == 1
    assert "No se encontró la columna de teléfono" in result.output
    assert run("export", "salida.pdf").exit_code == 2


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    started = start_embedded(tmp_path_factory.mktemp("cli-server"))
    try:
        yield started
    finally:
        started.process.stop()


def test_import_and_export_through_the_gateway(run: Run, server: EmbeddedServer, tmp_path: Path) -> None:
    key = server.create_user("lucia", "TeamLead")
    source = spreadsheet(tmp_path / "clientes.xlsx")
    (tmp_path / "sin.csv").write_text("nombre\nAna\n", encoding="utf-8")
    remote = ("--server", server.base_url, "--key", key)

    imported = run("import", str(source), "--list", "remoto", "--report", "informe.xlsx", *remote)
    refused = run("import", "sin.csv", *remote)
    exported = run("export", "remoto.csv", "--list", "remoto", *remote)
    agent = run(
        "export", "x.csv", "--server", server.base_url, "--key", server.create_user("andres", "Agent")
    )

    assert imported.exit_code == 0, imported.output
    assert "insertados" in imported.output
    report = openpyxl.load_workbook(tmp_path / "informe.xlsx").active
    assert report is not None
    assert report.max_row == 3
    assert refused.exit_code == 1
    assert "columna de teléfono" in refused.output
    assert "HTTP 422" in refused.output
    assert exported.exit_code == 0, exported.output
    assert sorted(row[2] for row in csv_rows(tmp_path / "remoto.csv")[1:]) == ["Ana María", "Luis"]
    assert agent.exit_code == 1
    assert "HTTP 403" in agent.output
