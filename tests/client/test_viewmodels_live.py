"""The live feed: reconnects, resumes from the last position, drops replays; the list resyncs."""

from __future__ import annotations

from client_doubles import FakeGateway, ManualScheduler, RecordingSink, make_contact

from client.dispatch import Dispatcher, InlineRunner
from client.i18n import Translator
from client.live import ConnectionState, LiveFeed, backoff_delay
from client.viewmodels.contacts import ContactListViewModel


class ScriptedSocket:
    """One connection attempt: fails to connect, or delivers ``events`` and then drops."""

    def __init__(self, script, log):
        self.script = script
        self.log = log
        self.handlers = {}

    def on(self, event, handler):
        self.handlers[event] = handler

    def connect(self, url, *, auth, transports, wait_timeout):
        self.log.append(dict(auth))
        if self.script.get("refuse"):
            raise ConnectionError(self.script["refuse"])

    def wait(self):
        for name, payload in self.script.get("events", []):
            self.handlers[name](payload)
        if self.script.get("stop"):
            self.script["feed"].stop()

    def disconnect(self):
        pass


def run_feed(scripts):
    auths, events, states, waits = [], [], [], []
    sockets = iter(scripts)
    feed = LiveFeed(
        "http://gw",
        "k1",
        on_event=lambda name, payload: events.append((name, payload.get("position"))),
        on_state=lambda state, detail: states.append(state),
        socket_factory=lambda: ScriptedSocket(next(sockets), auths),
        wait=lambda seconds: waits.append(seconds) or False,
    )
    for script in scripts:
        script["feed"] = feed
    feed.run()
    return feed, auths, events, states, waits


def updated(position):
    return ("contact_updated", {"id": "c1", "fields": {}, "position": position})


def test_reconnect_sends_the_last_position_and_drops_replayed_events():
    feed, auths, events, states, waits = run_feed(
        [
            {"events": [updated(1), updated(2), updated(3)]},
            {"refuse": "Connection refused"},
            {"events": [updated(2), updated(3), updated(4)], "stop": True},
        ]
    )
    assert auths == [
        {"api_key": "k1"},
        {"api_key": "k1", "last_position": 3},
        {"api_key": "k1", "last_position": 3},
    ]
    assert [p for _, p in events] == [1, 2, 3, 4]
    assert feed.last_position == 4
    assert states == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.RECONNECTING,
        ConnectionState.RECONNECTING,
        ConnectionState.RECONNECTING,
        ConnectionState.RECONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.DISCONNECTED,
    ]
    assert waits == [backoff_delay(1), backoff_delay(1)]


def test_resync_moves_the_position_and_is_passed_on():
    _, auths, events, _, _ = run_feed(
        [
            {"events": [updated(5)]},
            {"events": [("resync", {"position": 900}), updated(901)], "stop": True},
        ]
    )
    assert events == [("contact_updated", 5), ("resync", 900), ("contact_updated", 901)]
    assert auths[1]["last_position"] == 5


def test_a_refused_key_shows_disconnected_with_the_reason_and_backs_off():
    states = []
    attempts = []

    class Refusing(ScriptedSocket):
        def connect(self, url, *, auth, transports, wait_timeout):
            attempts.append(1)
            if len(attempts) == 3:
                feed.stop()
            raise ConnectionError("401 Unauthorized")

    waits = []
    feed = LiveFeed(
        "http://gw",
        "mala",
        lambda *_: None,
        lambda s, d: states.append((s, d)),
        socket_factory=lambda: Refusing({}, []),
        wait=lambda s: waits.append(s) or False,
    )
    feed.run()
    assert (ConnectionState.DISCONNECTED, "401 Unauthorized") in states
    assert waits[:2] == [0.5, 1.0]


def test_backoff_doubles_up_to_ten_seconds():
    assert [backoff_delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_events_reach_the_list_through_the_dispatcher_and_resync_reloads_it():
    api = FakeGateway([make_contact(1)])
    vm = ContactListViewModel(api, InlineRunner(), ManualScheduler(), Translator("es"))
    sink = RecordingSink()
    vm.sink = sink
    vm.reload()
    dispatcher = Dispatcher()
    feed = LiveFeed(
        "http://gw", "k", lambda name, payload: dispatcher.post(vm.apply, name, payload), lambda *_: None
    )
    feed.receive("contact_updated", {"id": "c000001", "fields": {"name": "Nueva"}, "position": 1})
    feed.receive("contact_updated", {"id": "c000001", "fields": {"name": "Vieja"}, "position": 1})
    assert sink.rows[0].name == "Cliente 1", "nothing changes before the UI thread drains"
    dispatcher.drain()
    assert sink.rows[0].name == "Nueva"
    api.contacts["c000002"] = make_contact(2)
    feed.receive("resync", {"position": 50})
    dispatcher.drain()
    assert sink.iids() == ["c000001", "c000002"]
    assert feed.auth() == {"api_key": "k", "last_position": 50}


def test_dispatcher_runs_what_worker_threads_post_in_order():
    import threading

    dispatcher = Dispatcher()
    seen = []
    threads = [threading.Thread(target=lambda i=i: dispatcher.post(seen.append, i)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dispatcher.drain() == 20
    assert sorted(seen) == list(range(20))


def test_only_a_connection_with_nothing_to_resume_from_asks_for_a_fresh_read():
    fresh = []
    scripts = [{"events": []}, {"events": [updated(1)]}, {"events": [], "stop": True}]
    sockets = iter(scripts)
    feed = LiveFeed(
        "http://gw",
        "k",
        lambda *_: None,
        lambda *_: None,
        socket_factory=lambda: ScriptedSocket(next(sockets), []),
        wait=lambda _s: False,
        on_fresh=lambda: fresh.append(feed.last_position),
    )
    for script in scripts:
        script["feed"] = feed
    feed.run()
    assert fresh == [None, None], "first connect and the one before any event; not after position 1"
