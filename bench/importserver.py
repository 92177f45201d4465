"""An import through the running embedded server, against the same import in the bench (issue 18's target).

``callmanager up --no-client`` on a fresh data folder; a ProjectManager key; the ``--n``-row xlsx of
``bench importexport`` uploaded to ``POST /import``; ``GET /jobs/{id}`` polled until the job ends. It prints
the job's own seconds (its ``created_at`` → ``updated_at``, what the earlier figures used), the wall time
from upload to done, and the server's CPU seconds over that time (relay and live feed included). With
``--profile FILE`` it records the server with py-spy (``--subprocesses``, so the reading process too).

    python -m bench importserver --n 100000 --rounds 2
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from bench.gateway import cpu_seconds, free_port, server_env, start_server
from bench.importexport import write_input
from bench.machine import describe


def _key(data: Path) -> str:
    from gateway.users import UserDirectory
    from kernel.store import create_engine
    from system.migrate import upgrade

    engine = create_engine(f"sqlite:///{data / 'callmanager.db'}")
    try:
        upgrade(engine)
        return UserDirectory(engine).create_user("importador", "ProjectManager")[1].plaintext
    finally:
        engine.dispose()


def _one_round(n: int, inputs: Path, profile: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-importserver-") as folder:
        data = Path(folder) / "data"
        data.mkdir()
        key = _key(data)
        port = free_port()
        env = server_env(CALLMANAGER_DATA_DIR=str(data))
        server = start_server(
            "callmanager", ["system", "up", "--no-client", "--port", str(port)], env, Path(folder), port
        )
        spy = None
        try:
            if profile is not None:
                spy = subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--subprocesses",
                        "--pid",
                        str(server.popen.pid),
                        "--rate",
                        "200",
                        "--format",
                        "speedscope",
                        "--output",
                        str(profile),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            path = write_input(inputs, n, with_openpyxl=False)
            headers = {"X-API-Key": key}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                cpu0, wall0 = cpu_seconds(server.popen.pid), time.perf_counter()
                with path.open("rb") as f:
                    files = {
                        "file": (
                            path.name,
                            f,
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        )
                    }
                    answer = client.post("/import", files=files)
                answer.raise_for_status()
                job_id = answer.json()["id"]
                while True:
                    job = client.get(f"/jobs/{job_id}").json()
                    if job["state"] in ("finished", "failed", "cancelled"):
                        break
                    time.sleep(0.05)
                wall = time.perf_counter() - wall0
                cpu = cpu_seconds(server.popen.pid) - cpu0
            if job["state"] != "finished":
                raise RuntimeError(f"the import ended {job['state']}: {job.get('error')}")
            seconds = (
                datetime.fromisoformat(job["updated_at"]) - datetime.fromisoformat(job["created_at"])
            ).total_seconds()
            return {"job_s": seconds, "wall_s": wall, "server_cpu_s": cpu}
        finally:
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
            server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench importserver", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the input in")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy speedscope file of the last round")
    args = parser.parse_args(argv)
    if args.profile is not None and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy on PATH")
    print(describe())
    inputs = args.keep or Path(tempfile.mkdtemp(prefix="bench-importserver-input-"))
    inputs.mkdir(parents=True, exist_ok=True)
    for k in range(args.rounds):
        profile = args.profile if k == args.rounds - 1 else None
        figures = _one_round(args.n, inputs, profile)
        print(
            f"round {k + 1}: {args.n:,} rows, job {figures['job_s']:.2f} s, "
            f"upload→done {figures['wall_s']:.2f} s, server CPU {figures['server_cpu_s']:.2f} s"
        )
    return 0
