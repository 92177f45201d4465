"""Why the gateway keeps aiohttp beside httpx: the two as forwarding clients on the gateway's event loop.

The gateway forwards ``GET /contacts`` pages to the contacts service (distributed mode). It does so from
its event loop with :mod:`aiohttp`; every other internal call uses :mod:`httpx` (sync, in worker threads).
This benchmark measures the choice instead of assuming it: one uvicorn process serves a JSON page shaped
like a contacts page (``--items`` contacts, ~400 bytes each), and this process fetches it ``--requests``
times with ``--concurrency`` requests in flight through

- ``aiohttp``: one ``ClientSession`` on the loop (what the gateway does);
- ``httpx-async``: one ``httpx.AsyncClient`` on the loop (the one-library alternative);
- ``httpx-threads``: the sync ``httpx.Client`` in a thread pool (what the gateway did before).

It prints requests per second and the client's CPU milliseconds per request (``time.process_time``; the
server is another process, so this is the forwarding cost the gateway pays).

    python -m bench httpclients --requests 4000 --concurrency 20 --items 100
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.machine import describe

_SERVER = """
import json, sys
items = [{"id": f"00000000-0000-0000-0000-{i:012d}", "phone": "+50688{i:06d}", "name": "Nombre Apellido",
          "status": "NUEVO", "note": "x" * 200, "version": 1} for i in range(int(sys.argv[2]))]
page = json.dumps({"items": items, "next_cursor": "abc"}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": page})
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the page server did not start at {url}")


async def _run_async(fetch: Callable[[], Awaitable[int]], requests: int, concurrency: int) -> None:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await fetch() != 200:
                raise RuntimeError("unexpected status")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _aiohttp(url: str, requests: int, concurrency: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def fetch() -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status

        await _run_async(fetch, requests, concurrency)


async def _httpx_async(url: str, requests: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def fetch() -> int:
            response = await client.get(url)
            return response.status_code

        await _run_async(fetch, requests, concurrency)


async def _httpx_threads(url: str, requests: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    loop = asyncio.get_running_loop()
    with (
        httpx.Client(limits=limits) as client,
        concurrent.futures.ThreadPoolExecutor(concurrency) as pool,
    ):

        async def fetch() -> int:
            response = await loop.run_in_executor(pool, client.get, url)
            return response.status_code

        await _run_async(fetch, requests, concurrency)


CLIENTS = {"aiohttp": _aiohttp, "httpx-async": _httpx_async, "httpx-threads": _httpx_threads}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench httpclients", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--items", type=int, default=100, help="contacts per page (the default page is 100)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per client; the best is printed")
    args = parser.parse_args(argv)

    port = _free_port()
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-httpclients-{os.getpid()}.py"
    script.write_text(_SERVER)
    server = subprocess.Popen([sys.executable, str(script), str(port), str(args.items)])
    url = f"http://127.0.0.1:{port}/contacts"
    try:
        _wait_up(url)
        size = len(httpx.get(url).content)
        print(describe())
        print(f"page: {args.items} contacts, {size:,} bytes; ", end="")
        print(f"{args.requests} requests, {args.concurrency} in flight")
        print(f"{'client':<14} {'req/s':>8} {'client CPU ms/req':>18}")
        results: dict[str, tuple[float, float]] = {}
        for name, run in CLIENTS.items():
            best = None
            for _ in range(args.rounds):
                wall0, cpu0 = time.perf_counter(), time.process_time()
                asyncio.run(run(url, args.requests, args.concurrency))
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                figure = (args.requests / wall, cpu * 1000 / args.requests)
                best = figure if best is None or figure[0] > best[0] else best
            assert best is not None
            results[name] = best
            print(f"{name:<14} {best[0]:>8.0f} {best[1]:>18.3f}")
        summary = {name: {"rps": round(r, 1), "cpu_ms": round(c, 3)} for name, (r, c) in results.items()}
        print(json.dumps(summary))
    finally:
        server.terminate()
        server.wait(10)
        script.unlink(missing_ok=True)
    return 0
