"""The one place that builds the desk from its settings: softphone, outbox, reporter, link, agent."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from dialer_agent.agent import Agent
from dialer_agent.baresip import BaresipDriver
from dialer_agent.command import CommandDriver
from dialer_agent.interphone import InterphoneDriver
from dialer_agent.link import SocketLink
from dialer_agent.outbox import Outbox
from dialer_agent.reporter import Reporter
from dialer_agent.settings import DialerSettings
from dialer_agent.softphone import Softphone
from dialer_agent.status import StatusView


def agent_version() -> str:
    """The installed distribution's version."""
    try:
        return version("callmanager-dialer-agent")
    except PackageNotFoundError:
        return "0.0.0"


def build_softphone(settings: DialerSettings) -> Softphone:
    """The driver ``settings.softphone`` names, configured (baresip's connection not yet started)."""
    if settings.softphone == "baresip":
        return BaresipDriver(settings.baresip_address, settings.baresip_dial_template)
    if settings.softphone == "interphone":
        return InterphoneDriver(
            title_re=settings.interphone_title,
            number_box=settings.interphone_number_box,
            call_button=settings.interphone_call_button,
            hangup_button=settings.interphone_hangup_button,
            attempts=settings.interphone_attempts,
        )
    if settings.command_template is None and settings.uri_scheme is None:
        raise ValueError("el softphone 'command' necesita --command-template o --uri-scheme")
    return CommandDriver(
        template=settings.command_template,
        hangup_template=settings.hangup_template,
        uri_scheme=None if settings.command_template else settings.uri_scheme,
    )


@dataclass
class Desk:
    """A running desk: start it, then stop it from any thread."""

    agent: Agent
    link: SocketLink
    reporter: Reporter
    softphone: Softphone
    outbox: Outbox

    def start(self) -> None:
        """Start the softphone connection, the reporter, the agent loop and the gateway link."""
        if isinstance(self.softphone, BaresipDriver):
            self.softphone.start()
        self.reporter.start()
        threading.Thread(target=self.agent.run, name="desk-loop", daemon=True).start()
        threading.Thread(target=self.link.run, name="gateway-link", daemon=True).start()

    def stop(self) -> None:
        """Disconnect, stop every thread, close the softphone and the outbox (pending reports stay)."""
        self.link.stop()
        self.agent.stop()
        self.reporter.stop()
        self.softphone.close()
        self.outbox.close()


def build_desk(
    settings: DialerSettings, api_key: str, view: StatusView, softphone: Softphone | None = None
) -> Desk:
    """Wire a desk from settings; ``softphone`` replaces the configured driver (tests)."""
    phone = softphone if softphone is not None else build_softphone(settings)
    outbox = Outbox(settings.outbox_path)
    auth = {"api_key": api_key, "desk": settings.desk, "agent": f"callmanager-dialer/{agent_version()}"}
    link = SocketLink(settings.server, auth)
    reporter = Reporter(outbox, link, settings.ack_timeout_seconds)
    agent = Agent(
        desk=settings.desk,
        softphone=phone,
        reporter=reporter,
        send_state=lambda message: link.emit("desk_state", message),
        view=view,
        prefix=settings.prefix,
        no_answer_seconds=settings.no_answer_seconds,
        max_call_seconds=settings.max_call_seconds,
    )
    link.on("connect", agent.on_connected)
    link.on("disconnect", lambda *_: agent.on_disconnected())
    link.on("dial", agent.on_dial)
    link.on("hangup", agent.on_hangup)
    return Desk(agent, link, reporter, phone, outbox)
