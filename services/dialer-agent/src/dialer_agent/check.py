"""``callmanager-dialer --check``: is the server reachable, is the key valid, is the softphone there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import requests

from dialer_agent.softphone import Softphone


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One verdict of the check."""

    ok: bool
    message: str


def check_server(server: str, timeout: float = 5.0) -> CheckLine:
    """GET /health: the server answers."""
    try:
        response = requests.get(f"{server}/health", timeout=timeout)
    except requests.RequestException as exc:
        return CheckLine(False, f"Servidor {server}: no responde ({type(exc).__name__})")
    if response.status_code == 200:
        return CheckLine(True, f"Servidor {server}: disponible")
    return CheckLine(False, f"Servidor {server}: responde con error {response.status_code}")


def check_key(server: str, api_key: str | None, timeout: float = 5.0) -> CheckLine:
    """GET /me with the key: who it belongs to."""
    if not api_key:
        return CheckLine(False, "Clave de API: no configurada")
    try:
        response = requests.get(f"{server}/me", headers={"X-API-Key": api_key}, timeout=timeout)
    except requests.RequestException as exc:
        return CheckLine(False, f"Clave de API: no se pudo comprobar ({type(exc).__name__})")
    if response.status_code in (401, 403):
        return CheckLine(False, "Clave de API: no válida o sin permiso")
    if response.status_code != 200:
        return CheckLine(False, f"Clave de API: el servidor respondió {response.status_code}")
    try:
        me = response.json()
    except ValueError:
        return CheckLine(False, "Clave de API: respuesta no válida del servidor")
    name = me.get("display_name") or me.get("username") or "?"
    return CheckLine(True, f"Clave de API: válida, de {name} (rol {me.get('role', '?')})")


def check_softphone(softphone: Softphone, kind: str) -> CheckLine:
    """The driver's own reachability check."""
    problem = softphone.check()
    if problem is None:
        return CheckLine(True, f"Softphone ({kind}): disponible")
    return CheckLine(False, f"Softphone ({kind}): {problem}")


def run_check(
    server: str,
    api_key: str | None,
    softphone: Softphone,
    kind: str,
    say: Callable[[CheckLine], None],
) -> bool:
    """Run every check, ``say`` each verdict; True when all are fine."""
    lines = [check_server(server), check_key(server, api_key), check_softphone(softphone, kind)]
    for line in lines:
        say(line)
    return all(line.ok for line in lines)
