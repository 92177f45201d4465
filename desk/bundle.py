"""What the desk spec files share: the packages a desk bundle must never carry.

Imported by ``client.spec`` and ``dialer.spec`` (PyInstaller runs them with ``desk/`` on ``sys.path``).
socketio/engineio only *try* to import aiohttp, redis and uvloop; left in a build environment that has
them, they drag the server stack (and pydantic, mypy, hypothesis behind it) into the bundle.
"""

from __future__ import annotations

SERVER_PACKAGES = [
    "aiohttp",
    "alembic",
    "contacts",
    "fastapi",
    "gateway",
    "generator",
    "granian",
    "hypothesis",
    "importexport",
    "kernel.bus",
    "kernel.store",
    "mypy",
    "psycopg",
    "pytest",
    "redis",
    "sqlalchemy",
    "starlette",
    "system",
    "uvicorn",
    "uvloop",
]

# engineio uses the websocket transport only when it can import websocket-client; without it a bundle
# silently falls back to long-polling.
WEBSOCKET_MODULES = ["websocket", "websocket._app", "websocket._core"]
