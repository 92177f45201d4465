"""First run: the server URL and API key, tested against the gateway before they are saved."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from client.api import ContactQuery, Gateway, NotFound, error_text
from client.config import ClientConfig, ConfigStore, FileKeyStore, KeyStoreChoice
from client.dispatch import Runner
from client.i18n import Translator
from client.models import Me


class SetupState(StrEnum):
    """Where the dialog stands."""

    EDITING = "editing"
    TESTING = "testing"
    SAVED = "saved"
    FAILED = "failed"


class SetupViewModel:
    """Validates the URL and key, checks them against ``/health`` and ``/me``, then saves them."""

    def __init__(
        self,
        translate: Translator,
        runner: Runner,
        api_factory: Callable[[str, str], Gateway],
        configs: ConfigStore,
        keys: KeyStoreChoice,
        initial: ClientConfig,
    ) -> None:
        self.t = translate
        self._runner = runner
        self._api_factory = api_factory
        self._configs = configs
        self._keys = keys
        self.url = initial.server_url or "http://127.0.0.1:5000"
        self.key = ""
        self.language = initial.language
        self.state = SetupState.EDITING
        self.message = ""
        self.me: Me | None = None
        self.saved_config: ClientConfig | None = None
        self.on_change: Callable[[], None] = lambda: None

    def validate(self) -> str:
        """The first problem with what was typed ("" when fine)."""
        url = self.url.strip()
        if not (url.startswith("http://") or url.startswith("https://")) or len(url) < 10:
            return self.t("setup.url_invalid")
        if not self.key.strip():
            return self.t("setup.key_missing")
        return ""

    def submit(self) -> None:
        """Test the connection; on success save URL, language and key and report where the key went."""
        problem = self.validate()
        if problem:
            self.state = SetupState.FAILED
            self.message = problem
            self.on_change()
            return
        url, key = self.url.strip().rstrip("/"), self.key.strip()
        self.state = SetupState.TESTING
        self.message = self.t("setup.testing")
        self.on_change()
        api = self._api_factory(url, key)

        def check() -> Me:
            api.health()
            try:
                return api.me()
            except NotFound:
                api.list_contacts(ContactQuery(), 1)  # no /me on this server: prove the key with a read
                return Me(username="", role="")

        self._runner.submit(check, lambda me: self._passed(url, key, me), self._failed)

    def _failed(self, exc: Exception) -> None:
        self.state = SetupState.FAILED
        self.message = error_text(exc)
        self.on_change()

    def _passed(self, url: str, key: str, me: Me) -> None:
        self.me = me
        config = ClientConfig(server_url=url, language=self.language, username=me.username)
        where = self._save_key(url, key)
        self._configs.save(config)
        self.saved_config = config
        self.state = SetupState.SAVED
        role = self.t(f"role.{me.role}") if self.t.has(f"role.{me.role}") else me.role or "?"
        who = self.t("setup.ok", username=me.username or "?", role=role)
        self.message = f"{who}\n{where}"
        self.on_change()

    def _save_key(self, url: str, key: str) -> str:
        if self._keys.in_keyring:
            try:
                self._keys.store.save(url, key)
            except Exception:  # a keyring backend may fail at write time
                return self._save_in_file(url, key, "el llavero del sistema no aceptó la llave")
            return self.t("setup.keyring_ok")
        return self._save_in_file(url, key, self._keys.fallback_reason)

    def _save_in_file(self, url: str, key: str, reason: str) -> str:
        store = FileKeyStore(self._configs.folder)
        path = store.save(url, key)
        return self.t("setup.keyring_fallback", reason=reason, path=Path(path))
