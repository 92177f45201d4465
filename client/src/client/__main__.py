"""``callmanager-client`` / ``python -m client``: first-run setup when needed, then the main window."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from client.config import ConfigStore, choose_key_store, config_dir, load_key
from client.update import installed_version, switch_to_staged, watch_updates

if TYPE_CHECKING:
    from client.desk import Desk


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="callmanager-client", description="CallManager: cliente de escritorio"
    )
    parser.add_argument("--version", action="version", version=f"callmanager-client {installed_version()}")
    parser.add_argument("--url", help="URL del servidor (por defecto la guardada)")
    parser.add_argument("--lang", choices=("es", "en"), help="idioma de la interfaz")
    parser.add_argument("--setup", action="store_true", help="mostrar de nuevo el diálogo de conexión")
    parser.add_argument("--no-live", action="store_true", help="sin Socket.IO (solo HTTP)")
    return parser.parse_args(argv)


def run_setup(store: ConfigStore, language: str) -> bool:
    """Show the first-run dialog; True when the user saved working settings."""
    import customtkinter as ctk

    from client.api import GatewayApi
    from client.desk import release_tk_garbage
    from client.dispatch import Dispatcher, ThreadRunner
    from client.i18n import Translator
    from client.viewmodels.setup import SetupState, SetupViewModel
    from client.views.setup import SetupFrame

    translate = Translator(language)
    root = ctk.CTk()
    root.title(translate("setup.title"))
    dispatcher = Dispatcher()
    dispatcher.attach(root)
    runner = ThreadRunner(dispatcher, workers=1)
    vm = SetupViewModel(
        translate,
        runner,
        lambda url, key: GatewayApi(url, key),
        store,
        choose_key_store(store.folder),
        store.load(),
    )
    frame = SetupFrame(root, vm, translate)
    frame.pack(fill="both", expand=True, padx=8, pady=8)
    frame.on_done = root.destroy
    frame.on_cancel = root.destroy
    root.protocol("WM_DELETE_WINDOW", root.destroy)
    root.mainloop()
    runner.shutdown()
    release_tk_garbage()
    return vm.state is SetupState.SAVED


def open_desk(args: argparse.Namespace) -> Desk | None:
    """The main window for the saved or given server and key (first-run dialog when either is missing).

    The key comes from ``CALLMANAGER_API_KEY`` or the key store; None when no connection could be set up
    (the reason is printed). The window is built but not started.
    """
    folder = config_dir()
    store = ConfigStore(folder)
    config = store.load()
    language = args.lang or config.language
    url = (args.url or config.server_url).rstrip("/")
    keys = choose_key_store(folder)
    key = os.environ.get("CALLMANAGER_API_KEY") or (load_key(keys, folder, url) if url else None)
    if args.setup or not url or not key:
        if not run_setup(store, language):
            print("callmanager-client: conexión no configurada; no se abrió la ventana.", file=sys.stderr)
            return None
        config = store.load()
        url = config.server_url
        language = args.lang or config.language
        key = load_key(keys, folder, url)
        if not key:
            print("callmanager-client: no se encontró la llave guardada.", file=sys.stderr)
            return None

    from client.desk import build_desk
    from client.drafts import FileDrafts

    drafts = FileDrafts(folder / "drafts.json")  # typing kept until saved, past a crash
    desk = build_desk(url, key, language=language, live=not args.no_live, drafts=drafts)
    watch_updates(desk, url, key)  # in the background; a newer signed release is offered, then staged
    return desk


def main(argv: list[str] | None = None) -> int:
    """Run the desktop client; returns the exit code."""
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    if switch_to_staged(arguments):  # a verified newer release was staged: run that one instead
        return 0
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        print("callmanager-client: no hay pantalla (DISPLAY no está definido).", file=sys.stderr)
        return 2
    desk = open_desk(args)
    if desk is None:
        return 1
    desk.start()
    desk.root.mainloop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
