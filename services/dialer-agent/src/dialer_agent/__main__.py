"""``callmanager-dialer``: run the desk dialer agent, or ``--check`` the desk's setup."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from dialer_agent.bootstrap import agent_version, build_desk, build_softphone
from dialer_agent.check import CheckLine, run_check
from dialer_agent.settings import (
    DialerSettings,
    SettingsError,
    default_settings_file,
    load_settings,
    resolve_api_key,
)
from dialer_agent.status import LiveStatus, LogStatus, StatusView
from kernel.logs import mask_secrets

_OPTIONS = {
    "server": "--server",
    "api_key": "--api-key",
    "api_key_file": "--api-key-file",
    "desk": "--desk",
    "softphone": "--softphone",
    "prefix": "--prefix",
    "data_dir": "--data-dir",
    "baresip_ctrl": "--baresip-ctrl",
    "baresip_dial_template": "--baresip-dial-template",
    "no_answer_seconds": "--no-answer-seconds",
    "interphone_title": "--interphone-title",
    "interphone_number_box": "--interphone-number-box",
    "interphone_call_button": "--interphone-call-button",
    "interphone_hangup_button": "--interphone-hangup-button",
    "command_template": "--command-template",
    "hangup_template": "--hangup-template",
    "uri_scheme": "--uri-scheme",
}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every option overrides the environment and the settings file."""
    parser = argparse.ArgumentParser(
        prog="callmanager-dialer",
        description="Agente de marcación del puesto: recibe las llamadas de CallManager y las marca "
        "en el softphone del puesto.",
    )
    parser.add_argument("--version", action="version", version=f"callmanager-dialer {agent_version()}")
    parser.add_argument("--check", action="store_true", help="comprobar servidor, clave y softphone")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help=f"archivo de ajustes ({default_settings_file()})",
    )
    parser.add_argument("--server", help="dirección del servidor, p. ej. https://callmanager.local")
    parser.add_argument("--api-key", help="clave de API (mejor: --api-key-file o el llavero)")
    parser.add_argument("--api-key-file", type=Path, help="archivo con la clave, permisos 600")
    parser.add_argument("--desk", help="nombre del puesto (por omisión, el nombre del equipo)")
    parser.add_argument("--softphone", choices=["interphone", "baresip", "command"])
    parser.add_argument("--prefix", help="prefijo de línea externa (solo dígitos)")
    parser.add_argument("--data-dir", type=Path, help="carpeta de datos (bandeja de salida)")
    parser.add_argument("--baresip-ctrl", help="HOST:PUERTO de ctrl_tcp de baresip (127.0.0.1:4444)")
    parser.add_argument("--baresip-dial-template", help="qué se marca en baresip, con {number}")
    parser.add_argument("--no-answer-seconds", type=float, help="colgar si no contestan (30)")
    parser.add_argument("--interphone-title", help="expresión regular del título de la ventana")
    parser.add_argument("--interphone-number-box", help="control de la casilla del número (clave=valor;…)")
    parser.add_argument("--interphone-call-button", help="control del botón Llamar (clave=valor;…)")
    parser.add_argument("--interphone-hangup-button", help="control del botón Colgar (clave=valor;…)")
    parser.add_argument("--command-template", help="comando para marcar, p. ej. 'linphonecsh dial {number}'")
    parser.add_argument("--hangup-template", help="comando para colgar (opcional)")
    parser.add_argument("--uri-scheme", choices=["tel", "sip"], help="abrir enlaces tel:/sip: con el sistema")
    parser.add_argument("-v", "--verbose", action="store_true", help="registro detallado")
    return parser


def settings_from(args: argparse.Namespace) -> DialerSettings:
    """Settings from parsed arguments over the environment over the settings file."""
    overrides: dict[str, Any] = {name: getattr(args, name) for name in _OPTIONS}
    return load_settings(overrides, args.settings if args.settings else default_settings_file())


def configure_logging(verbose: bool, interactive: bool) -> None:
    """structlog to stderr: readable in a terminal, JSON lines otherwise; secrets masked."""
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False) if interactive else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO if not interactive else logging.WARNING)
    for noisy in ("socketio", "engineio", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _say(line: CheckLine) -> None:
    print(("✔ " if line.ok else "✘ ") + line.message)


def check(settings: DialerSettings) -> int:
    """``--check``: 0 when server, key and softphone are all fine."""
    try:
        api_key: str | None = resolve_api_key(settings)
    except SettingsError as exc:
        print(f"✘ Clave de API: {exc}")
        api_key = None
    softphone = build_softphone(settings)
    try:
        ok = run_check(settings.server, api_key, softphone, settings.softphone, _say)
    finally:
        softphone.close()
    return 0 if ok and api_key else 1


def serve(settings: DialerSettings, verbose: bool) -> int:
    """Run the desk until Ctrl+C or SIGTERM."""
    api_key = resolve_api_key(settings)
    interactive = sys.stdout.isatty()
    configure_logging(verbose, interactive)
    view: StatusView = LiveStatus() if interactive else LogStatus()
    desk = build_desk(settings, api_key, view)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    desk.start()
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        desk.stop()
        view.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``callmanager-dialer``."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        if args.check:
            return check(settings)
        return serve(settings, args.verbose)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"callmanager-dialer: ajustes no válidos: {problems}", file=sys.stderr)
        return 2
    except (SettingsError, ValueError) as exc:
        print(f"callmanager-dialer: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
