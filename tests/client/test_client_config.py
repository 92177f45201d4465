"""Where the client keeps its settings on each platform, and that the key never lands in config.json."""

from __future__ import annotations

from pathlib import Path

from client.config import ClientConfig, ConfigStore, FileKeyStore, choose_key_store, config_dir, load_key
from client.i18n import LANGUAGES, Translator, keys


def test_config_dir_follows_each_platform():
    home = Path("/home/ana")
    assert (
        config_dir({"APPDATA": r"C:\Users\ana\AppData\Roaming"}, "win32", home)
        == Path(r"C:\Users\ana\AppData\Roaming") / "CallManager"
    )
    assert config_dir({}, "darwin", home) == home / "Library" / "Application Support" / "CallManager"
    assert config_dir({"XDG_CONFIG_HOME": "/x/cfg"}, "linux", home) == Path("/x/cfg/callmanager")
    assert config_dir({}, "linux", home) == home / ".config" / "callmanager"
    assert config_dir({"XDG_CONFIG_HOME": "relativo"}, "linux", home) == home / ".config" / "callmanager"
    assert config_dir({"CALLMANAGER_CLIENT_CONFIG_DIR": "/tmp/cm"}, "linux", home) == Path("/tmp/cm")


def test_config_round_trip_and_unreadable_file_gives_defaults(tmp_path):
    store = ConfigStore(tmp_path)
    assert store.load() == ClientConfig()
    store.save(ClientConfig("http://srv:5000", "en", "ana"))
    assert store.load() == ClientConfig("http://srv:5000", "en", "ana")
    store.path.write_text("{roto")
    assert store.load() == ClientConfig()


def test_key_is_found_in_the_fallback_file(tmp_path):
    FileKeyStore(tmp_path).save("http://srv:5000", "k")
    choice = choose_key_store(tmp_path)
    assert load_key(choice, tmp_path, "http://srv:5000") == "k"
    assert load_key(choice, tmp_path, "http://otro") is None


def test_every_text_has_both_languages():
    es, en = Translator("es"), Translator("en")
    assert LANGUAGES == ("es", "en")
    for key in keys():
        assert es(key)
        assert en(key)
    assert es("tool.import") == "📥 Importar"
    assert Translator("fr").language == "es"


def test_client_opens_beside_the_server_only_with_a_display():
    from client.launch import client_command, display_available

    assert display_available({}, "linux") == (False, "no hay pantalla (DISPLAY/WAYLAND_DISPLAY no definidos)")
    assert display_available({"DISPLAY": ":0"}, "linux") == (True, "")
    assert display_available({}, "win32") == (True, "")
    assert client_command("http://127.0.0.1:5000", "en")[-4:] == [
        "--url",
        "http://127.0.0.1:5000",
        "--lang",
        "en",
    ]


def test_client_without_a_display_says_so_and_exits(monkeypatch, capsys):
    import sys

    from client.__main__ import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main([]) == 2
    assert "no hay pantalla" in capsys.readouterr().err
