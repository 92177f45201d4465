"""Who is logged in, what their role may do, the live connection state and the status bar text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from client.api import ApiError, Forbidden, Gateway, NotFound, error_text
from client.dispatch import Runner
from client.i18n import Translator
from client.live import ConnectionState
from client.models import Me, StatusOption
from client.viewmodels.catalogue import StatusCatalogue


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the client offers to a role (the server enforces the same table)."""

    force_release: bool = False
    import_export: bool = False
    generate: bool = False
    delete: bool = False
    metrics: bool = False
    all_metrics: bool = False
    manage_campaigns: bool = False


_BY_ROLE = {
    "Agent": Capabilities(),
    "TeamLead": Capabilities(force_release=True, import_export=True, metrics=True),
    "ProjectManager": Capabilities(True, True, True, True, True, True, True),
    "TI": Capabilities(True, True, True, True, True, True, True),
}


def capabilities_for(role: str) -> Capabilities:
    """The capabilities of ``role`` (PRODUCT.md's table); unknown roles get the agent's."""
    return _BY_ROLE.get(role, Capabilities())


def capabilities_from_names(names: Sequence[str]) -> Capabilities:
    """Capabilities from the names ``GET /me`` lists (``contacts.import``, ``metrics.all``, ...)."""
    have = set(names)
    return Capabilities(
        force_release="contacts.force_release" in have,
        import_export=bool({"contacts.import", "contacts.export"} & have),
        generate="contacts.generate" in have,
        delete="contacts.delete" in have,
        metrics=bool({"metrics.team", "metrics.all"} & have),
        all_metrics="metrics.all" in have,
        manage_campaigns="campaigns.manage" in have,
    )


class SessionViewModel:
    """Holds the logged-in user, the catalogue and the connection state; notifies the view on change."""

    def __init__(self, api: Gateway, runner: Runner, translate: Translator) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self.me: Me | None = None
        self.role_known = False
        self.capabilities = Capabilities()
        self.catalogue = StatusCatalogue()
        self.catalogue_notice = ""
        self.state = ConnectionState.CONNECTING
        self.state_detail = ""
        self.count_text = ""
        self.notice = ""
        self.listeners: list[Callable[[], None]] = []
        self.catalogue_listeners: list[Callable[[StatusCatalogue], None]] = []

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def start(self) -> None:
        """Ask the gateway who we are and for the status catalogue."""
        self._runner.submit(self._api.me, self._got_me, self._me_failed)
        self._runner.submit(lambda: list(self._api.statuses()), self._got_statuses, self._statuses_failed)

    def _got_me(self, me: Me) -> None:
        self.me = me
        self.role_known = bool(me.role)
        if me.capabilities is not None:
            self.capabilities = capabilities_from_names(me.capabilities)
        else:
            self.capabilities = capabilities_for(me.role)
        self._changed()

    def _me_failed(self, exc: Exception) -> None:
        if isinstance(exc, NotFound):
            # The server has no /me: probe a read that only ProjectManager/TI may make.
            self._runner.submit(self._api.config, self._probe_config_ok, self._probe_config_failed)
            return
        self.notice = exc.message if isinstance(exc, ApiError) else str(exc)
        self._changed()

    def _probe_config_ok(self, _config: object) -> None:
        self.me = Me(username="", role="")
        self.capabilities = capabilities_for("ProjectManager")
        self.notice = "El servidor no informa el usuario (/me); su llave puede leer la configuración."
        self._changed()

    def _probe_config_failed(self, exc: Exception) -> None:
        self.me = Me(username="", role="")
        if isinstance(exc, Forbidden):
            self.capabilities = Capabilities(import_export=True)
            self.notice = "El servidor no informa el usuario (/me); las herramientas no permitidas lo dirán."
        else:
            self.notice = exc.message if isinstance(exc, ApiError) else str(exc)
        self._changed()

    def _got_statuses(self, options: list[StatusOption]) -> None:
        if options:
            self.catalogue = StatusCatalogue(options, bundled=False)
            self.catalogue_notice = ""
        for listener in self.catalogue_listeners:
            listener(self.catalogue)
        self._changed()

    def _statuses_failed(self, exc: Exception) -> None:
        reason = error_text(exc)
        self.catalogue_notice = f"Catálogo de estados local: el servidor no lo entregó ({reason})."
        for listener in self.catalogue_listeners:
            listener(self.catalogue)
        self._changed()

    def set_connection(self, state: ConnectionState, detail: str = "") -> None:
        """Record the live connection state (called on the UI thread)."""
        self.state = state
        self.state_detail = detail
        self._changed()

    def set_count(self, text: str) -> None:
        """The contact count shown in the status bar."""
        if text != self.count_text:
            self.count_text = text
            self._changed()

    @property
    def connection_text(self) -> str:
        """``conectado`` / ``reconectando…`` / ``desconectado`` (with the reason when disconnected)."""
        text = self.t(f"conn.{self.state.value}")
        if self.state is ConnectionState.DISCONNECTED and self.state_detail:
            return f"{text}: {self.state_detail}"
        return text

    @property
    def user_text(self) -> str:
        """``ana (Agente)``, or what is known when the server does not say."""
        if self.me is None or not self.me.username:
            return self.t("status.user_unknown")
        role = self.t(f"role.{self.me.role}") if self.t.has(f"role.{self.me.role}") else self.me.role
        text = self.t("status.user", username=self.me.display_name or self.me.username, role=role)
        return f"{text} · {self.me.team}" if self.me.team else text

    @staticmethod
    def clock_text(now: datetime) -> str:
        """The status bar clock (local time)."""
        return now.astimezone().strftime("%H:%M:%S")
