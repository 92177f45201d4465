"""Import file layer speed: reading, header detection and the row pipeline on generated xlsx and csv.

``python -m bench importfile [--n 100000] [--keep DIR] [--fast-input]`` writes an ``--n``-row xlsx (with
openpyxl, as a user's program would: shared strings, phones as numbers or text) and a ``;`` csv, then
prints per file: open + checks, raw row reading, and the whole pipeline (read → classify → label repeats)
in rows/s, streamed with ``normalise_fast`` and with ``parse_phone``, and with every row kept for
``merge_duplicates``; and the cost per number of both phone paths.
Each measurement runs in its own process so the peak RSS printed is that step's.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import multiprocessing
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.machine import describe

HEADERS = ["Nombre", "Teléfono", "Estado", "Correo", "Nota", "Cédula"]


def sample_rows(n: int, seed: int = 7) -> Iterator[list[Any]]:
    """Rows shaped like real uploads: 5 % repeats, 2 % invalid phones, phones as floats, text, +506."""
    rnd = random.Random(seed)
    prefixes = [
        "83",
        "84",
        "85",
        "86",
        "87",
        "88",
        "89",
        "60",
        "61",
        "62",
        "63",
        "64",
        "70",
        "71",
        "72",
        "22",
    ]
    seen: list[str] = []
    for i in range(n):
        r = rnd.random()
        if r < 0.05 and seen:
            digits = rnd.choice(seen)
        elif r < 0.07:
            digits = str(rnd.randrange(10_000, 9_999_999))
        else:
            digits = rnd.choice(prefixes) + f"{rnd.randrange(1_000_000):06d}"
            if len(seen) < 10_000:
                seen.append(digits)
        shape = i % 4
        phone: Any
        if shape == 0:
            phone = float(digits)
        elif shape == 1:
            phone = f"{digits[:4]}-{digits[4:]}"
        elif shape == 2:
            phone = f"+506 {digits[:4]} {digits[4:]}"
        else:
            phone = digits
        yield [
            f"Cliente {i} Pérez",
            phone,
            rnd.choice(["SIN_GESTIONAR", "NC", "INTERESADO", ""]),
            f"c{i}@example.cr" if i % 3 else "",
            "llamar después de las 5" if i % 5 == 0 else None,
            f"1-{i % 10_000:04d}-{i % 1000:04d}",
        ]


def write_inputs(folder: Path, n: int, fast: bool) -> tuple[Path, Path]:
    """The xlsx and csv inputs with ``n`` data rows."""
    xlsx = folder / f"import_{n}.xlsx"
    csv_path = folder / f"import_{n}.csv"
    if not xlsx.exists():
        if fast:
            from importexport.writers import write_xlsx

            write_xlsx(xlsx, sample_rows(n), headers=HEADERS)
        else:
            import openpyxl

            book = openpyxl.Workbook(write_only=True)
            sheet = book.create_sheet("Contactos")
            sheet.append(HEADERS)
            for row in sample_rows(n):
                sheet.append(row)
            book.save(xlsx)
    if not csv_path.exists():
        with csv_path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f, delimiter=";")
            writer.writerow(HEADERS)
            writer.writerows(["" if c is None else c for c in row] for row in sample_rows(n))
    return xlsx, csv_path


def _peak_mb() -> float:
    from bench.export import peak_rss_mb

    return peak_rss_mb()


def _read_only(path: str) -> dict[str, float]:
    from importexport.spreadsheets import open_rows

    start = time.perf_counter()
    table = open_rows(path)
    opened = time.perf_counter() - start
    count = sum(1 for _ in table)
    return {"open_s": opened, "total_s": time.perf_counter() - start, "rows": count, "rss_mb": _peak_mb()}


def _pipeline(path: str, slow: bool, materialise: bool) -> dict[str, float]:
    """Read → classify → label repeats; streaming (DuplicateTracker) or all rows kept (merge_duplicates)."""
    from importexport.headers import detect_headers
    from importexport.rows import AcceptedRow, DuplicateTracker, Normaliser, classify_rows, merge_duplicates
    from importexport.spreadsheets import open_rows
    from kernel.phone import InvalidPhone, Phone, parse_phone
    from kernel.phonefast import normalise_fast

    def parse_returning(raw: object) -> Phone | InvalidPhone:
        try:
            return parse_phone(raw)
        except InvalidPhone as exc:
            return exc

    normalise: Normaliser = parse_returning if slow else normalise_fast
    start = time.perf_counter()
    table = open_rows(path)
    headers = detect_headers(table)
    kept: list[AcceptedRow] = []
    tracker = DuplicateTracker()
    rows = bad = merged = 0
    for outcome in classify_rows(table, headers, normalise):
        rows += 1
        if not isinstance(outcome, AcceptedRow):
            bad += 1
        elif materialise:
            kept.append(outcome)
        elif tracker.first_row_of(outcome) is not None:
            merged += 1
    classified = time.perf_counter() - start
    if materialise:
        merged = len(merge_duplicates(kept).merges)
    return {
        "classify_s": classified,
        "total_s": time.perf_counter() - start,
        "rows": rows,
        "rejected": bad,
        "merged": merged,
        "rss_mb": _peak_mb(),
    }


def _phone_costs(path: str, count: int) -> dict[str, float]:
    from importexport.rows import cell_text
    from importexport.spreadsheets import open_rows
    from kernel.phone import InvalidPhone, parse_phone
    from kernel.phonefast import PhoneNormaliser

    # As the pipeline does: text cells are unescaped ("'+506 ..." written by our exporter) first.
    cells = [row[1] for _, row in zip(range(count), open_rows(path), strict=False)][1:]
    raws = [cell_text(c) if isinstance(c, str) else c for c in cells]
    normaliser = PhoneNormaliser()
    normaliser(raws[0])
    start = time.perf_counter()
    for raw in raws:
        normaliser(raw)
    fast = time.perf_counter() - start
    start = time.perf_counter()
    for raw in raws:
        with contextlib.suppress(InvalidPhone):
            parse_phone(raw)
    slow = time.perf_counter() - start
    return {"n": len(raws), "fast_us": fast / len(raws) * 1e6, "slow_us": slow / len(raws) * 1e6}


def _child(queue: Any, fn: Callable[..., dict[str, float]], args: tuple[Any, ...]) -> None:
    queue.put(fn(*args))


def isolated(fn: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    """Run ``fn(*args)`` in a fresh process so its peak RSS is its own."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, fn, args))
    process.start()
    result: dict[str, float] = queue.get()
    process.join()
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench importfile")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the inputs in")
    parser.add_argument(
        "--fast-input", action="store_true", help="write the xlsx with our writer, not openpyxl"
    )
    parser.add_argument("--phones", type=int, default=50_000, help="numbers for the per-number comparison")
    args = parser.parse_args(argv)
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        xlsx, csv_path = write_inputs(folder, args.n, args.fast_input)
        print(
            f"inputs: {args.n:,} rows; xlsx {xlsx.stat().st_size / 1e6:.1f} MB, "
            f"csv {csv_path.stat().st_size / 1e6:.1f} MB (written in {time.perf_counter() - start:.1f} s)"
        )
        for path in (xlsx, csv_path):
            kind = path.suffix[1:]
            read = isolated(_read_only, str(path))
            print(
                f"{kind:>4} read only: open+checks {read['open_s']:.2f} s, {read['rows']:,.0f} rows in "
                f"{read['total_s']:.2f} s ({read['rows'] / read['total_s']:,.0f} rows/s), "
                f"peak RSS {read['rss_mb']:.0f} MB"
            )
            runs = (
                ("streamed, normalise_fast", False, False),
                ("streamed, parse_phone", True, False),
                ("all rows kept + merge_duplicates, normalise_fast", False, True),
            )
            for label, slow, materialise in runs:
                run = isolated(_pipeline, str(path), slow, materialise)
                rate = run["rows"] / run["classify_s"]
                print(
                    f"{kind:>4} pipeline ({label}): {run['rows']:,.0f} rows in {run['classify_s']:.2f} s "
                    f"({rate:,.0f} rows/s), {run['total_s']:.2f} s total; {run['rejected']:,.0f} rejected, "
                    f"{run['merged']:,.0f} merged; peak RSS {run['rss_mb']:.0f} MB"
                )
        costs = isolated(_phone_costs, str(xlsx), args.phones + 1)
        print(
            f"per number over {costs['n']:,.0f} file phones: parse_phone {costs['slow_us']:.1f} µs, "
            f"normalise_fast {costs['fast_us']:.2f} µs ({costs['slow_us'] / costs['fast_us']:.1f}x)"
        )
    return 0
