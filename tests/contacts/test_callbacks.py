"""Callbacks as events on the contact stream, on SQLite and PostgreSQL: set by a wrap-up with a stable id,
rescheduled, reassigned and cancelled by whom the rules allow, listed by who may see them, reminded once
and made shared after the grace, all with a controlled clock, and rebuilt alike from the stream."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from contacts_support import ANA, BETO, LAURA, PABLO, FakeClock, create_contact, lock_contact
from sqlalchemy.engine import Engine

from contacts.agenda import Visibility, visibility
from contacts.callbacks import CallbackBook
from contacts.campaignbook import CampaignBook
from contacts.commands import (
    CallbackScope,
    Caller,
    CancelCallback,
    ImportRow,
    RecordDisposition,
    RescheduleCallback,
    Source,
)
from contacts.domain import SHARED_REASON, LockPolicy
from contacts.envelopes import envelope_of
from contacts.errors import CallbackNotFound, Forbidden, InvalidInput
from contacts.events import DispositionRecorded
from contacts.handlers import ContactsService
from contacts.projection import rebuild
from contacts.scheduler import CallbackSweep
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.envelope import Actor
from kernel.roles import Role
from kernel.store import EventStore, StreamAppend, create_engine

SUR_LEAD = Caller(user_id="u-sofia", username="sofia", role=Role.TEAM_LEAD, team="sur")
CARLOS = Caller(user_id="u-carlos", username="carlos", role=Role.AGENT, team="sur")


def _types(store: EventStore, contact_id: str) -> list[str]:
    return [e.type.rsplit(".", 1)[-1] for e in store.read_stream(contact_id)]


def _wrap_up(
    service: ContactsService,
    book: CallbackBook,
    caller: Caller,
    contact_id: str,
    due_at: datetime,
    scope: CallbackScope = CallbackScope.PERSONAL,
) -> str:
    """Wrap up with a callback; the callback's id as the book lists it."""
    lock_contact(service, caller, contact_id)
    command = RecordDisposition(
        caller=caller,
        now=service.now(),
        contact_id=contact_id,
        outcome="callback",
        callback_at=due_at,
        callback_scope=scope,
    )
    service.handle(command)
    [found] = [cb for cb in book.listed(Visibility()) if cb.contact_id == contact_id]
    return found.callback_id


@pytest.fixture
def book(engine: Engine) -> CallbackBook:
    return CallbackBook(engine)


def test_a_wrap_up_callback_gets_a_stable_id_from_its_stream_version(
    service: ContactsService, store: EventStore, book: CallbackBook, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-0001", name="Ana Mora")
    callback_id = _wrap_up(service, book, ANA, contact.id, clock.now + timedelta(hours=2))

    version = next(e.stream_version for e in store.read_stream(contact.id) if e.type.endswith("Recorded"))
    assert callback_id == f"{contact.id}.{version}"
    [listed] = book.listed(Visibility())
    assert (listed.user_id, listed.team, listed.scope, listed.name) == (
        ANA.user_id,
        "norte",
        "personal",
        "Ana Mora",
    )

    later = clock.now + timedelta(hours=5)
    service.handle(
        RescheduleCallback(
            caller=ANA, now=clock.now, contact_id=contact.id, callback_id=callback_id, due_at=later
        )
    )
    [moved] = book.listed(Visibility())
    assert (moved.callback_id, moved.due_at) == (callback_id, later)
    assert _types(store, contact.id)[-1] == "CallbackRescheduled"


def test_who_may_reschedule_and_cancel_a_callback(
    service: ContactsService, store: EventStore, book: CallbackBook, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-0002")
    callback_id = _wrap_up(service, book, ANA, contact.id, clock.now + timedelta(hours=1))
    later = clock.now + timedelta(hours=3)

    def move(caller: Caller, **changes: object) -> None:
        service.handle(
            RescheduleCallback(
                caller=caller, now=clock.now, contact_id=contact.id, callback_id=callback_id, **changes
            )  # type: ignore[arg-type]
        )

    for outsider in (BETO, SUR_LEAD, CARLOS):
        with pytest.raises(Forbidden):
            move(outsider, due_at=later)
        with pytest.raises(Forbidden):
            service.handle(
                CancelCallback(caller=outsider, now=clock.now, contact_id=contact.id, callback_id=callback_id)
            )
    move(ANA, scope=CallbackScope.SHARED)
    move(LAURA, due_at=later)
    move(PABLO, due_at=later + timedelta(minutes=30))
    with pytest.raises(Forbidden, match="reasignar"):
        move(ANA, assignee_id=BETO.user_id, assignee_name="beto", assignee_team="norte")
    with pytest.raises(Forbidden, match="fuera de su equipo"):
        move(LAURA, assignee_id=CARLOS.user_id, assignee_name="carlos", assignee_team="sur")
    move(LAURA, assignee_id=BETO.user_id, assignee_name="beto", assignee_team="norte")
    [listed] = book.listed(Visibility())
    assert (listed.user_id, listed.username, listed.team, listed.scope) == (
        BETO.user_id,
        "beto",
        "norte",
        "shared",
    )
    move(PABLO, assignee_id=CARLOS.user_id, assignee_name="carlos", assignee_team="sur")
    with pytest.raises(Forbidden):
        move(LAURA, due_at=later)  # no longer her team's
    with pytest.raises(InvalidInput, match="futuro"):
        move(PABLO, due_at=clock.now - timedelta(minutes=1))

    service.handle(
        CancelCallback(
            caller=CARLOS, now=clock.now, contact_id=contact.id, callback_id=callback_id, reason="ya compró"
        )
    )
    assert book.listed(Visibility()) == []
    with pytest.raises(CallbackNotFound):
        service.handle(
            CancelCallback(caller=PABLO, now=clock.now, contact_id=contact.id, callback_id=callback_id)
        )
    assert _types(store, contact.id).count("CallbackRescheduled") == 5
    assert _types(store, contact.id)[-1] == "CallbackCancelled"


def test_each_role_lists_the_callbacks_it_may_see(
    service: ContactsService, book: CallbackBook, clock: FakeClock
) -> None:
    due = clock.now + timedelta(hours=1)
    mine = _wrap_up(service, book, ANA, create_contact(service, ANA, "8812-0003").id, due)
    shared = _wrap_up(
        service,
        book,
        BETO,
        create_contact(service, BETO, "8812-0004").id,
        due + timedelta(minutes=1),
        CallbackScope.SHARED,
    )
    beto = _wrap_up(
        service, book, BETO, create_contact(service, BETO, "8812-0005").id, due + timedelta(minutes=2)
    )
    south = _wrap_up(
        service, book, CARLOS, create_contact(service, CARLOS, "8812-0006").id, due + timedelta(minutes=3)
    )

    def seen(caller: Caller, **asked: object) -> list[str]:
        return [cb.callback_id for cb in book.listed(visibility(caller, **asked))]  # type: ignore[arg-type]

    assert seen(ANA) == seen(ANA, mine=False) == [mine, shared]
    assert seen(LAURA, mine=False) == seen(LAURA, team="norte") == [mine, shared, beto]
    assert seen(PABLO, mine=False) == [mine, shared, beto, south]
    assert seen(PABLO, team="sur") == [south]
    assert [cb.callback_id for cb in book.listed(visibility(ANA), due_before=due)] == [mine]
    for caller, team in ((ANA, "norte"), (LAURA, "sur")):
        with pytest.raises(Forbidden, match="equipo"):
            visibility(caller, team=team)


def test_the_reminder_goes_out_once_within_its_minutes_before_due(
    service: ContactsService, store: EventStore, book: CallbackBook, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-0007", name="Luis")
    callback_id = _wrap_up(service, book, ANA, contact.id, clock.now + timedelta(minutes=30))
    sweep = CallbackSweep(service, book, reminder_minutes=5, grace_minutes=30, clock=clock)

    assert sweep.remind() == 0
    clock.advance(minutes=24)
    assert sweep.remind() == 0
    clock.advance(minutes=1)
    assert (sweep.remind(), sweep.remind()) == (1, 0)
    reminded = [e for e in store.read_stream(contact.id) if e.type.endswith("CallbackReminded")]
    assert len(reminded) == 1
    assert reminded[0].data["callback_id"] == callback_id
    assert reminded[0].data["contact_name"] == "Luis"
    assert reminded[0].data["phone"] == "+50688120007"
    [listed] = book.listed(Visibility())
    assert listed.reminded_at == clock.now

    # A reschedule owes a new reminder for the new time.
    service.handle(
        RescheduleCallback(
            caller=ANA,
            now=clock.now,
            contact_id=contact.id,
            callback_id=callback_id,
            due_at=clock.now + timedelta(hours=1),
        )
    )
    assert sweep.remind() == 0
    clock.advance(minutes=56)
    assert (sweep.remind(), sweep.remind()) == (1, 0)


def test_a_personal_callback_past_its_grace_becomes_shared_once(
    service: ContactsService, store: EventStore, book: CallbackBook, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-0008")
    callback_id = _wrap_up(service, book, ANA, contact.id, clock.now + timedelta(minutes=10))
    already_shared = _wrap_up(
        service,
        book,
        BETO,
        create_contact(service, BETO, "8812-0009").id,
        clock.now + timedelta(minutes=10),
        CallbackScope.SHARED,
    )
    sweep = CallbackSweep(service, book, reminder_minutes=5, grace_minutes=30, clock=clock)

    clock.advance(minutes=39)
    assert sweep.share_stale() == 0
    assert [cb.callback_id for cb in book.listed(visibility(BETO))] == [already_shared]
    clock.advance(minutes=1)
    assert (sweep.share_stale(), sweep.share_stale()) == (1, 0)

    [shared] = [e for e in store.read_stream(contact.id) if e.type.endswith("CallbackShared")]
    assert shared.data["reason"] == SHARED_REASON == "Rellamada compartida: el agente no la atendió"
    assert shared.actor.user_id == "system"
    assert {cb.callback_id: cb.scope for cb in book.listed(visibility(BETO))} == {
        callback_id: "shared",
        already_shared: "shared",
    }
    ana_still_owns = [cb for cb in book.listed(Visibility()) if cb.callback_id == callback_id]
    assert ana_still_owns[0].user_id == ANA.user_id


def test_the_callbacks_rebuild_to_the_same_rows_from_the_stream(
    service: ContactsService, engine: Engine, book: CallbackBook, clock: FakeClock
) -> None:
    first = create_contact(service, ANA, "8812-0010")
    second = create_contact(service, BETO, "8812-0011")
    one = _wrap_up(service, book, ANA, first.id, clock.now + timedelta(minutes=20))
    two = _wrap_up(service, book, BETO, second.id, clock.now + timedelta(minutes=3))
    service.handle(
        RescheduleCallback(
            caller=LAURA, now=clock.now, contact_id=first.id, callback_id=one, scope=CallbackScope.SHARED
        )
    )
    sweep = CallbackSweep(service, book, reminder_minutes=5, grace_minutes=1, clock=clock)
    clock.advance(minutes=5)
    sweep.remind()
    sweep.share_stale()
    before = book.listed(Visibility())
    assert [cb.callback_id for cb in before] == [two, one]

    rebuild(engine, DEFAULT_CATALOGUE)

    assert book.listed(Visibility()) == before


def test_one_pass_goes_through_every_owed_callback_batch_by_batch(
    service: ContactsService, store: EventStore, book: CallbackBook, clock: FakeClock
) -> None:
    ids = [create_contact(service, ANA, f"8812-02{n:02d}").id for n in range(5)]
    for contact_id in ids:
        _wrap_up(service, book, ANA, contact_id, clock.now + timedelta(minutes=3))
    sweep = CallbackSweep(service, book, reminder_minutes=5, grace_minutes=1, clock=clock, batch_size=2)

    assert (sweep.remind(), sweep.remind()) == (5, 0)
    clock.advance(minutes=4)
    assert (sweep.share_stale(), sweep.share_stale()) == (5, 0)
    assert [_types(store, cid)[-2:] for cid in ids] == [["CallbackReminded", "CallbackShared"]] * 5


def test_contacts_0008_gives_callbacks_pending_before_it_their_id_from_the_stream(
    service: ContactsService, engine: Engine, book: CallbackBook, clock: FakeClock
) -> None:
    from alembic import command

    from system.migrate import alembic_config, upgrade

    contact = create_contact(service, ANA, "8812-0300")
    callback_id = _wrap_up(service, book, ANA, contact.id, clock.now + timedelta(hours=1))
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "contacts@contacts_0006")

    upgrade(engine)

    [listed] = book.listed(Visibility())
    assert (listed.callback_id, listed.contact_id, listed.team, listed.reminded_at) == (
        callback_id,
        contact.id,
        "",
        None,
    )


def _stored_callbacks(
    service: ContactsService, store: EventStore, engine: Engine, clock: FakeClock, count: int
) -> list[str]:
    """``count`` contacts each with a personal callback (of one of twenty agents) due in 30 minutes, set
    by stored wrap-ups the rebuild folds in (a wrap-up command each would take minutes on PostgreSQL)."""
    rows = [ImportRow(row=i + 2, e164=f"+5068{i:07d}", name=f"Contacto {i}") for i in range(count)]
    result = service.create_or_merge(rows, "rellamadas", PABLO, source=Source.IMPORT)
    ids = [outcome.contact_id for outcome in result.outcomes]
    actor = Actor(user_id=ANA.user_id, role=ANA.role.value)
    appends = []
    for i, contact_id in enumerate(ids):
        wrap_up = DispositionRecorded(
            contact_id=contact_id,
            at=clock.now,
            user_id=f"u-{i % 20}",
            username=f"agente{i % 20}",
            outcome="callback",
            callback_at=clock.now + timedelta(minutes=30, seconds=i % 600),
            callback_id=f"{contact_id}.2",
            team="norte",
        )
        appends.append(StreamAppend(contact_id, 1, [envelope_of(wrap_up, actor)]))
    with store.transaction() as conn:
        store.append_many(conn, appends)
    rebuild(engine, DEFAULT_CATALOGUE)
    return ids


def test_a_pass_owing_a_thousand_reminders_appends_them_in_a_few_transactions(
    service: ContactsService, store: EventStore, engine: Engine, book: CallbackBook, clock: FakeClock
) -> None:
    ids = _stored_callbacks(service, store, engine, clock, 1000)
    sweep = CallbackSweep(service, book, reminder_minutes=60, grace_minutes=30, clock=clock, batch_size=300)
    commits: list[int] = []
    store.after_commit(lambda: commits.append(1))

    assert sweep.remind() == 1000
    assert len(commits) == 4  # 300 + 300 + 300 + 100
    assert (sweep.remind(), len(commits)) == (0, 4)

    reminded = {e.stream_id: e for e in store.read_all(limit=10_000) if e.type == "contacts.CallbackReminded"}
    assert sorted(reminded) == sorted(ids)
    for i, contact_id in enumerate(ids):
        event = reminded[contact_id]
        assert event.stream_version == 3
        assert event.actor.user_id == "system"
        assert event.correlation_id is None  # each stands alone, as one command's reminder did
        assert event.data == {
            "contact_id": contact_id,
            "at": clock.now.isoformat(),
            "callback_id": f"{contact_id}.2",
            "user_id": f"u-{i % 20}",
            "scope": "personal",
            "due_at": (clock.now + timedelta(minutes=30, seconds=i % 600)).isoformat(),
            "contact_name": f"Contacto {i}",
            "phone": f"+5068{i:07d}",
            "teams": None,
        }
    assert all(cb.reminded_at == clock.now for cb in book.listed(Visibility(), limit=2000))

    clock.advance(hours=2)
    assert sweep.share_stale() == 1000
    assert (len(commits), sweep.share_stale(), len(commits)) == (8, 0, 8)
    shared = [e for e in store.read_all(limit=10_000) if e.type == "contacts.CallbackShared"]
    assert sorted(e.stream_id for e in shared) == sorted(ids)
    assert {cb.scope for cb in book.listed(Visibility(), limit=2000)} == {"shared"}


def test_two_sweeps_running_at_once_send_each_reminder_once(
    service: ContactsService, store: EventStore, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    ids = _stored_callbacks(service, store, engine, clock, 600)
    other_engine = create_engine(database_url)  # a second process's own pool
    try:
        other = ContactsService(
            other_engine, EventStore(other_engine), LockPolicy(10, 60), DEFAULT_CATALOGUE, clock
        )
        sweeps = [
            CallbackSweep(s, CallbackBook(e), reminder_minutes=60, clock=clock, batch_size=100)
            for s, e in ((service, engine), (other, other_engine))
        ]
        start = threading.Barrier(2)

        def run(sweep: CallbackSweep) -> int:
            start.wait()
            return sweep.remind()

        with ThreadPoolExecutor(2) as pool:
            counts = list(pool.map(run, sweeps))
    finally:
        other_engine.dispose()

    reminded = [e.stream_id for e in store.read_all(limit=10_000) if e.type == "contacts.CallbackReminded"]
    assert sorted(reminded) == sorted(ids)
    assert sum(counts) == 600
    assert [sweep.remind() for sweep in sweeps[:1]] == [0]


def test_a_shared_reminder_names_the_teams_working_the_contacts_campaigns(
    service: ContactsService, store: EventStore, engine: Engine, book: CallbackBook, clock: FakeClock
) -> None:
    campaigns = CampaignBook(engine)
    campaigns.create(PABLO, clock.now, name="Cobros", lists=["deudores"], teams=["sur", "norte"])
    campaigns.create(PABLO, clock.now, name="Feria", lists=["feria"], teams=["oeste"])
    campaigns.create(PABLO, clock.now, name="Vieja", lists=["feria"], teams=["este"])
    campaigns.update(PABLO, clock.now, "vieja", {"archived": True})
    campaigns.create(PABLO, clock.now, name="Pausada", lists=["pausa"], teams=["este"], active=False)
    two_campaigns = create_contact(service, PABLO, "8812-0400", list_name="deudores")
    service.create_or_merge([ImportRow(row=2, e164="+50688120400")], "feria", PABLO)  # joins Feria too
    paused = create_contact(service, PABLO, "8812-0401", list_name="pausa")
    general = create_contact(service, PABLO, "8812-0402", list_name="suelta")
    personal = create_contact(service, PABLO, "8812-0403", list_name="deudores")
    due = clock.now + timedelta(minutes=3)
    for contact in (two_campaigns, paused, general):
        _wrap_up(service, book, BETO, contact.id, due, CallbackScope.SHARED)
    _wrap_up(service, book, ANA, personal.id, due)
    sweep = CallbackSweep(service, book, reminder_minutes=5, clock=clock, campaigns=campaigns)

    assert sweep.remind() == 4

    teams = {
        e.stream_id: e.data["teams"]
        for e in store.read_all(limit=1000)
        if e.type == "contacts.CallbackReminded"
    }
    assert teams == {
        two_campaigns.id: ["norte", "oeste", "sur"],
        paused.id: ["este"],
        general.id: None,  # General: every team
        personal.id: None,  # personal: its agent only, whatever the campaign
    }
