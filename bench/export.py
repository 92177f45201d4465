"""Export speed and memory: our streamed xlsx writer against openpyxl write-only and rustpy-xlsxwriter.

``python -m bench export [--n 100000] [--only mine,openpyxl,rustpy,csv,rows] [--level 1] [--verify]``
writes ``--n`` contact rows (the nine export columns, times as aware datetimes) with each writer in its
own process and prints seconds, rows/s, file size and the process's peak RSS. ``rows`` is the cost of
making the rows alone (subtract it to see a writer's own cost). Each xlsx is read back with calamine
(row count and last row); ``--verify`` also reads it back with openpyxl (slow at 1,000,000 rows).
Targets: 1,000,000 rows faster than openpyxl write-only, peak RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.machine import describe

UTC = datetime.UTC
BASE = datetime.datetime(2024, 1, 1, tzinfo=UTC)
STATUSES = ("SIN_GESTIONAR", "NC", "CUELGA", "INTERESADO", "SERVICIOS_ACTIVOS")


def contact_rows(n: int) -> Iterator[tuple[Any, ...]]:
    """Rows in the order of ``CONTACT_HEADERS``; a note with a formula now and then."""
    for i in range(n):
        national = f"{8300 + i % 1700:04d}-{i % 10_000:04d}"
        yield (
            f"{i:08x}-7d1c-4c8e-9a55-{i * 7919 % 10**12:012d}",
            national,
            f"Cliente {i} Pérez" if i % 7 else None,
            STATUSES[i % len(STATUSES)],
            ('=HYPERLINK("x")' if i % 1000 == 0 else "llamar después de las 5") if i % 3 == 0 else None,
            "ana" if i % 50 == 0 else None,
            BASE + datetime.timedelta(minutes=i) if i % 2 else None,
            BASE + datetime.timedelta(seconds=i),
            BASE + datetime.timedelta(seconds=2 * i),
        )


def _naive(row: tuple[Any, ...]) -> list[Any]:
    """openpyxl and rustpy-xlsxwriter refuse aware datetimes: convert to Costa Rica time first."""
    from importexport.writers import COSTA_RICA_TIME

    return [
        v.astimezone(COSTA_RICA_TIME).replace(tzinfo=None) if isinstance(v, datetime.datetime) else v
        for v in row
    ]


def run_rows(path: str, n: int, level: int) -> None:
    for _ in contact_rows(n):
        pass


def run_mine(path: str, n: int, level: int) -> None:
    from importexport.writers import write_xlsx

    write_xlsx(path, contact_rows(n), compresslevel=level)


def run_csv(path: str, n: int, level: int) -> None:
    from importexport.writers import write_csv

    write_csv(path, contact_rows(n))


def run_openpyxl(path: str, n: int, level: int) -> None:
    import openpyxl

    from importexport.writers import CONTACT_HEADERS, escape_formula

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Contactos")
    sheet.append(list(CONTACT_HEADERS))
    for row in contact_rows(n):
        sheet.append([escape_formula(v) if isinstance(v, str) else v for v in _naive(row)])
    book.save(path)


def run_rustpy(path: str, n: int, level: int) -> None:
    import rustpy_xlsxwriter

    from importexport.writers import CONTACT_HEADERS

    records = (dict(zip(CONTACT_HEADERS, _naive(row), strict=True)) for row in contact_rows(n))
    rustpy_xlsxwriter.FastExcel(path).sheet("Contactos", records).save()


WRITERS: dict[str, tuple[str, Callable[[str, int, int], None]]] = {
    "rows": ("", run_rows),
    "mine": ("xlsx", run_mine),
    "openpyxl": ("xlsx", run_openpyxl),
    "rustpy": ("xlsx", run_rustpy),
    "csv": ("csv", run_csv),
}


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak RSS, this one's by default (VmHWM: unlike ru_maxrss it does not count the parent
    it was forked from)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(queue: Any, name: str, path: str, n: int, level: int) -> None:
    start = time.perf_counter()
    WRITERS[name][1](path, n, level)
    seconds = time.perf_counter() - start
    queue.put({"s": seconds, "rss_mb": peak_rss_mb()})


def measure(name: str, path: str, n: int, level: int) -> dict[str, float]:
    """Seconds and peak RSS of one writer, in a fresh process."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, name, path, n, level))
    process.start()
    result: dict[str, float] = queue.get()
    process.join()
    return result


def read_back(path: Path, openpyxl_too: bool) -> str:
    """Row count and last row per reader, to show the file is whole."""
    import python_calamine

    start = time.perf_counter()
    count, shown = 0, None
    for row in python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).iter_rows():
        count += 1
        shown = row[:2]
    text = f"calamine {count:,} rows in {time.perf_counter() - start:.1f} s, last {shown}"
    if openpyxl_too:
        import openpyxl

        start = time.perf_counter()
        book = openpyxl.load_workbook(path, read_only=True)
        sheet = book.active
        assert sheet is not None
        count, formulas = 0, 0
        for row in sheet.iter_rows():
            count += 1
            formulas += sum(1 for cell in row if getattr(cell, "data_type", None) == "f")
        book.close()
        text += f"; openpyxl {count:,} rows, {formulas} formula cells, in {time.perf_counter() - start:.1f} s"
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench export")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--only", default="rows,mine,openpyxl,rustpy,csv")
    parser.add_argument("--level", type=int, default=1, help="deflate level of our xlsx writer")
    parser.add_argument("--verify", action="store_true", help="also read each xlsx back with openpyxl")
    args = parser.parse_args(argv)
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            extension, _ = WRITERS[name]
            path = Path(tmp) / f"{name}.{extension or 'none'}"
            result = measure(name, str(path), args.n, args.level)
            size = f", {path.stat().st_size / 1e6:.1f} MB" if path.exists() else ""
            rate = args.n / result["s"]
            print(
                f"{name:>8}: {args.n:,} rows in {result['s']:.2f} s ({rate:,.0f} rows/s){size}, "
                f"peak RSS {result['rss_mb']:.0f} MB"
            )
            if extension == "xlsx":
                print(f"{'':>10}{read_back(path, args.verify)}")
            if path.exists():
                path.unlink()
    return 0
