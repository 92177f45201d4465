"""Reading a file in a process of its own gives what reading it here gives, and never outlives the import."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from pathlib import Path

import pytest
from conftest import MakeText, MakeXlsx

from contacts.commands import ImportRow
from importexport.classification import (
    Classified,
    FileMessage,
    Opened,
    ReaderDied,
    ReadOptions,
    Scanned,
    read_apart,
    read_file,
)
from importexport.spreadsheets import FileRejected


def phones(count: int) -> list[str]:
    return [f"8{300 + i // 10_000:03d}-{i % 10_000:04d}" for i in range(count)]


def messages(path: Path, options: ReadOptions, apart: bool) -> tuple[list[FileMessage], list[int]]:
    checked: list[int] = []
    read = read_apart if apart else read_file
    return list(read(path, options, checked.append)), checked


def reader_processes() -> list[int]:
    """Pids of this process's children running the reading program (Linux ``/proc``)."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"serve_reading" in command and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                    pids.append(int(pid))
    return pids


def test_a_file_read_apart_yields_exactly_what_reading_it_here_yields(make_xlsx: MakeXlsx) -> None:
    numbers = phones(45_000)
    rows: list[list[object]] = [["Reporte de marzo"], ["Teléfono", "Nombre", "Correo", "Estado", "Cédula"]]
    rows += [[n, f"Cliente {i}", "malo@" if i % 997 == 0 else "", "NC", i] for i, n in enumerate(numbers)]
    rows += [[numbers[7], "Repetido", "", "", ""], ["123", "Corto", "", "", ""], [None] * 5]
    path = make_xlsx(rows)
    options = ReadOptions(batch_rows=20_000, preview=True)

    here, checked_here = messages(path, options, apart=False)
    apart, checked_apart = messages(path, options, apart=True)

    assert apart == here
    assert checked_apart == checked_here == [20_000, 40_000]
    opened, scanned, *batches = here
    assert isinstance(opened, Opened)
    assert opened.file == {"kind": "xlsx", "header_row": 2, "sheet": "Hoja1"}
    assert scanned == Scanned(45_002)
    found = [batch for batch in batches if isinstance(batch, Classified)]
    assert len(found) == len(batches)
    # A small first batch (writing starts sooner), then batch_rows; the file's end leaves the last reports.
    assert [len(batch.rows) for batch in found] == [5_000, 20_000, 20_000, 0]
    assert [batch.read for batch in found] == [5_001, 25_001, 45_001, 45_002]
    assert [issue.row for batch in found for issue in batch.errors] == [45_004]
    assert [(m.row, m.into) for batch in found for m in batch.merged] == [(45_003, 10)]
    assert sum(len(batch.warnings) for batch in found) == 46
    assert not reader_processes()


def test_classified_rows_cross_to_the_importer_unchanged_even_with_text_json_cannot_carry() -> None:
    def row(number: int, name: str) -> ImportRow:
        return ImportRow(
            row=number,
            e164="+50688001122",
            national="8800 1122",
            phone="8800-1122",
            name=name,
            note="llamar después 🙏",
            status="Nuevo",
            email="",
            extra={"cédula": "1-234-567", "ciudad": ""},
            operator=None if number % 2 else "kolbi",
        )

    plain = Classified([row(2, "Ana Pérez"), row(3, "Luis")], 3, [], [], [], [])
    odd = Classified([row(4, "Ana \udc80")], 4, [], [], [], [])  # a lone surrogate: not JSON text

    assert pickle.loads(pickle.dumps(plain)) == plain
    assert pickle.loads(pickle.dumps(odd)) == odd


def test_a_refusal_in_the_reading_process_reaches_the_importer_as_the_same_refusal(
    make_text: MakeText,
) -> None:
    path = make_text("telefono\n" + "\n".join(phones(8)) + "\n")

    with pytest.raises(FileRejected, match="más de 5 filas de datos"):
        messages(path, ReadOptions(max_rows=5), apart=True)
    assert not reader_processes()


def test_an_importer_that_stops_listening_stops_the_reading_process_at_once(make_text: MakeText) -> None:
    path = make_text("telefono;nombre\n" + "\n".join(f"{p};n" for p in phones(60_000)) + "\n")
    reading = read_apart(path, ReadOptions(batch_rows=1_000), lambda rows: None)
    assert isinstance(next(reading), Opened)
    (reader,) = reader_processes()
    # Background work: the writes, and everything else on the machine, come first.
    assert os.getpriority(os.PRIO_PROCESS, reader) == 19

    reading.close()

    assert not reader_processes()  # stopped when close returned, not left reading the rest of the file


def test_a_reading_process_that_is_killed_fails_the_import_instead_of_ending_it_short(
    make_text: MakeText,
) -> None:
    path = make_text("telefono;nombre\n" + "\n".join(f"{p};n" for p in phones(60_000)) + "\n")
    reading = read_apart(path, ReadOptions(batch_rows=1_000), lambda rows: None)
    assert isinstance(next(reading), Opened)
    (reader,) = reader_processes()

    os.kill(reader, signal.SIGKILL)

    with pytest.raises(ReaderDied, match=f"exit code -{signal.SIGKILL}"):
        for _ in reading:
            pass
    assert not reader_processes()


def test_the_systems_tuned_reading_process_yields_what_reading_here_yields(make_text: MakeText) -> None:
    from system.reader import READER_COMMAND

    path = make_text("Teléfono;Nombre\n" + "".join(f"{n};Cliente {i}\n" for i, n in enumerate(phones(3_000))))
    options = ReadOptions(batch_rows=1_000)
    here, _ = messages(path, options, apart=False)

    apart = list(read_apart(path, options, lambda rows: None, READER_COMMAND))

    assert apart == here
    assert not reader_processes()
