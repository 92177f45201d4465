"""Campaign rules in the work queue, on SQLite and PostgreSQL: lists (a contact in several), teams, calling
hours in Costa Rica time, the daily cap, archive, the order among a team's campaigns, and progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from contacts_support import ANA, BETO, PABLO, FakeClock, change_status, create_contact, end_call
from contacts_support import request_call as request
from sqlalchemy.engine import Engine

from contacts.campaignbook import CampaignBook
from contacts.campaigns import Reason
from contacts.commands import Caller, CallOutcome, ImportRow, Outcome
from contacts.dnc import DncList
from contacts.errors import CampaignNotWorked, InvalidInput, QueueEmpty
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.queue import WorkQueue
from kernel.roles import Role
from kernel.store import EventStore

SUR = Caller(user_id="u-sofia", username="sofia", role=Role.AGENT, team="sur")
WEEKDAYS_8_TO_5 = {day: [["08:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def queue(engine: Engine, store: EventStore, service: ContactsService) -> WorkQueue:
    return WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))


def _campaign(queue: WorkQueue, clock: FakeClock, name: str, **rules: object) -> str:
    return queue.campaigns.create(PABLO, clock.now, name=name, **rules).id


def _import(service: ContactsService, list_name: str, *phones: str) -> list[Outcome]:
    rows = [ImportRow(row=n, e164=phone) for n, phone in enumerate(phones, start=1)]
    return [row.outcome for row in service.create_or_merge(rows, list_name, PABLO).outcomes]


def _called(service: ContactsService, contact_id: str, call_id: str, outcome: CallOutcome) -> None:
    request(service, ANA, contact_id, call_id)
    end_call(service, ANA, contact_id, call_id, outcome)


def test_a_campaign_holds_its_lists_and_general_holds_the_rest(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    cobros = _campaign(queue, clock, "Cobros", lists=["deudores"])
    debtor = create_contact(service, PABLO, "8812-0001", list_name="deudores")
    other = create_contact(service, PABLO, "8812-0002", list_name="feria")

    from_cobros = queue.next_contact(ANA, cobros)
    from_general = queue.next_contact(BETO, "general")

    assert from_cobros.contact.id == debtor.id
    assert from_cobros.campaign == "Cobros"
    assert from_general.contact.id == other.id
    with pytest.raises(QueueEmpty):
        queue.next_contact(ANA, cobros)
    outside = queue.eligibility(ANA, other.id, cobros)
    assert [f.reason for f in outside.findings] == [Reason.NOT_IN_CAMPAIGN, Reason.LOCKED]


def test_an_import_into_another_list_adds_the_contact_to_that_list_once(
    queue: WorkQueue, service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    assert _import(service, "feria", "+50688120011") == [Outcome.INSERTED]
    assert _import(service, "renovaciones", "+50688120011") == [Outcome.LISTED]
    assert _import(service, "renovaciones", "+50688120011") == [Outcome.UNCHANGED]
    renew = _campaign(queue, clock, "Renovaciones", lists=["renovaciones"])
    fair = _campaign(queue, clock, "Feria", lists=["feria"])

    contact = queries.get_by_phone("+50688120011")
    assert contact.list_name == "feria"
    history = queries.history(contact.id)
    assert [(h.field, h.new) for h in history if h.field == "list"] == [
        ("list", "feria"),
        ("list", "renovaciones"),
    ]
    assert queue.eligibility(ANA, contact.id, renew).eligible
    assert queue.eligibility(ANA, contact.id, fair).eligible
    general = queue.eligibility(ANA, contact.id, "general")
    assert [f.reason for f in general.findings] == [Reason.NOT_IN_CAMPAIGN]
    assert queue.next_contact(ANA, renew).contact.id == contact.id


def test_next_without_a_campaign_works_the_teams_campaigns_by_priority_then_name(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    queue.campaigns.update(PABLO, clock.now, "general", {"active": False})
    late = _campaign(queue, clock, "Alfa", lists=["a"], teams=["norte"], priority=200)
    first = _campaign(queue, clock, "Zeta", lists=["z"], teams=["norte"], priority=10)
    south = _campaign(queue, clock, "Sur", lists=["s"], teams=["sur"], priority=0)
    in_a = create_contact(service, PABLO, "8812-0021", list_name="a")
    in_z = create_contact(service, PABLO, "8812-0022", list_name="z")
    in_s = create_contact(service, PABLO, "8812-0023", list_name="s")

    assert [queue.next_contact(ANA).contact.id for _ in range(2)] == [in_z.id, in_a.id]
    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(BETO)
    assert "Zeta" in empty.value.message
    assert "Alfa" in empty.value.message
    assert queue.next_contact(SUR).contact.id == in_s.id
    with pytest.raises(CampaignNotWorked):
        queue.next_contact(ANA, south)
    assert queue.eligibility(ANA, in_s.id, south).findings[0].reason is Reason.NOT_YOUR_TEAM
    assert {c.id for c in queue.campaigns.for_team("norte")} == {late, first}


def test_a_team_without_an_active_campaign_is_told_so(queue: WorkQueue, clock: FakeClock) -> None:
    queue.campaigns.update(PABLO, clock.now, "general", {"active": False})
    _campaign(queue, clock, "Sur", lists=["s"], teams=["sur"])

    with pytest.raises(QueueEmpty, match="ninguna campaña activa para el equipo norte") as empty:
        queue.next_contact(ANA)
    assert empty.value.counts == {"campaigns": 0}


def test_outside_calling_hours_nothing_is_offered_until_they_open_in_costa_rica_time(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    # The clock starts on Monday 2026-03-02 09:00 UTC, 03:00 in Costa Rica (UTC-6, no summer time).
    contact = create_contact(service, PABLO, "8812-0031")
    queue.campaigns.update(PABLO, clock.now, "general", {"calling_hours": WEEKDAYS_8_TO_5})

    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(ANA)

    opens = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert "hasta las 08:00 (hora de Costa Rica)" in empty.value.message
    assert empty.value.until == opens
    why = queue.eligibility(ANA, contact.id)
    assert [(f.reason, f.until) for f in why.findings] == [(Reason.OUTSIDE_HOURS, opens)]
    clock.now = opens
    assert queue.next_contact(ANA).contact.id == contact.id
    clock.now = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)  # Friday 17:30 in Costa Rica
    message = queue.eligibility(ANA, contact.id).findings[0].message
    assert "el 2026-03-09 a las 08:00 (hora de Costa Rica)" in message
    queue.campaigns.update(PABLO, clock.now, "general", {"calling_hours": None})
    assert Reason.OUTSIDE_HOURS not in {f.reason for f in queue.eligibility(ANA, contact.id).findings}


def test_the_daily_cap_counts_calls_of_the_local_day(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    queue.campaigns.update(PABLO, clock.now, "general", {"max_per_day": 1, "retry_minutes": {"busy": 0}})
    contact = create_contact(service, PABLO, "8812-0041")
    _called(service, contact.id, "c1", CallOutcome.BUSY)
    clock.advance(minutes=1)

    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(ANA)
    assert empty.value.counts["daily_capped"] == 1
    why = queue.eligibility(ANA, contact.id)
    assert [f.reason for f in why.findings] == [Reason.DAILY_CAPPED]
    assert "hoy 1" in why.findings[0].message
    midnight_in_costa_rica = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    assert why.findings[0].until == midnight_in_costa_rica

    clock.now = midnight_in_costa_rica
    assert queue.next_contact(ANA).reason is Reason.RETRY_DUE


def test_a_call_late_yesterday_in_costa_rica_is_not_counted_today_though_it_is_today_in_utc(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    """Found by the property test on SQLite: the day's start was bound as a local time and compared by
    its wall clock with UTC text, so calls of the last six hours of yesterday counted as today's."""
    queue.campaigns.update(PABLO, clock.now, "general", {"max_per_day": 1, "retry_minutes": {"answered": 0}})
    contact = create_contact(service, PABLO, "8812-0042")
    clock.now = datetime(2026, 3, 4, 5, 59, tzinfo=UTC)  # 23:59 of March 3 in Costa Rica
    _called(service, contact.id, "c1", CallOutcome.ANSWERED)
    clock.now = datetime(2026, 3, 4, 18, 0, tzinfo=UTC)  # noon of March 4 in Costa Rica

    assert Reason.DAILY_CAPPED not in {f.reason for f in queue.eligibility(ANA, contact.id).findings}
    assert queue.next_contact(ANA).contact.id == contact.id


def test_archived_campaigns_are_inactive_and_hidden_and_general_cannot_be_archived(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    old = _campaign(queue, clock, "Vieja", lists=["v"])
    create_contact(service, PABLO, "8812-0051", list_name="v")

    archived = queue.campaigns.update(PABLO, clock.now, old, {"archived": True})

    assert archived.archived
    assert not archived.active
    assert [c.id for c in queue.campaigns.all()] == ["general"]
    assert [c.id for c in queue.campaigns.all(archived=True)] == ["general", old]
    with pytest.raises(QueueEmpty, match="archivada"):
        queue.next_contact(ANA, old)
    with pytest.raises(InvalidInput, match="desarchívela"):
        queue.campaigns.update(PABLO, clock.now, old, {"active": True})
    with pytest.raises(InvalidInput, match="General"):
        queue.campaigns.update(PABLO, clock.now, "general", {"archived": True})
    back = queue.campaigns.update(PABLO, clock.now, old, {"archived": False, "active": True})
    assert back.working


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"calling_hours": {"lunes": [["08:00", "17:00"]]}}, "calling_hours", "Día no válido"),
        ({"calling_hours": {"mon": [["17:00", "08:00"]]}}, "calling_hours", "termina antes de empezar"),
        ({"calling_hours": {"mon": [["8h", "17:00"]]}}, "calling_hours", "Hora no válida"),
        ({"timezone": "Marte/Olympus"}, "timezone", "Zona horaria desconocida"),
        ({"max_per_day": 0}, "max_per_day", "por día"),
        ({"priority": -1}, "priority", "prioridad"),
        ({"lists": "deudores"}, "lists", "lista de hasta"),
        ({"teams": [" "]}, "teams", "equipos"),
        ({"active": "sí"}, "active", "verdadero o falso"),
        ({"colour": "red"}, "colour", "desconocido"),
    ],
)
def test_campaign_edits_are_validated_with_spanish_messages(
    queue: WorkQueue, clock: FakeClock, changes: dict[str, object], field: str, words: str
) -> None:
    campaign = _campaign(queue, clock, "Prueba", lists=["p"])
    with pytest.raises(InvalidInput, match=words) as refused:
        queue.campaigns.update(PABLO, clock.now, campaign, changes)
    assert refused.value.field == field
    assert queue.campaigns.get(campaign).lists == ("p",)


@pytest.mark.parametrize("changes", [{"lists": ["x"]}, {"teams": ["norte"]}, {"archived": True}])
def test_general_keeps_every_contact_and_every_team(
    queue: WorkQueue, clock: FakeClock, changes: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput, match="General"):
        queue.campaigns.update(PABLO, clock.now, "general", changes)


def test_rules_are_kept_as_given(queue: WorkQueue, service: ContactsService, clock: FakeClock) -> None:
    made = queue.campaigns.create(
        PABLO,
        clock.now,
        name="Tarde",
        lists=["a", "b"],
        teams=["norte"],
        timezone="America/Mexico_City",
        calling_hours={"sat": [["13:00", "24:00"]], "mon": [["13:00", "18:00"]]},
        max_per_day=2,
        priority=5,
    )

    again = queue.campaigns.get(made.id)
    assert again == made
    assert again.to_data()["calling_hours"] == {"mon": [["13:00", "18:00"]], "sat": [["13:00", "24:00"]]}
    assert (again.lists, again.teams, again.timezone, again.max_per_day, again.priority) == (
        ("a", "b"),
        ("norte",),
        "America/Mexico_City",
        2,
        5,
    )
    contact = create_contact(service, PABLO, "8812-0061", list_name="a")
    (closed,) = queue.eligibility(ANA, contact.id, made.id).findings  # Monday 03:00 in Mexico City
    assert closed.reason is Reason.OUTSIDE_HOURS
    assert "hasta las 13:00 (hora de America/Mexico_City)" in closed.message


def test_all_in_retry_says_until_when_in_costa_rica_time(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    contact = create_contact(service, PABLO, "8812-0071")
    _called(service, contact.id, "r1", CallOutcome.NO_ANSWER)

    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(ANA)

    # no_answer waits 120 minutes: 09:00 UTC + 2 h = 05:00 in Costa Rica.
    assert "todos en espera de reintento hasta las 05:00 (hora de Costa Rica)" in empty.value.message
    assert empty.value.until == clock.now + timedelta(hours=2)


def test_progress_counts_the_campaigns_contacts(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    cobros = _campaign(queue, clock, "Cobros", lists=["deudores"], max_attempts=1)
    fresh = create_contact(service, PABLO, "8812-0081", list_name="deudores")
    reached = create_contact(service, PABLO, "8812-0082", list_name="deudores")
    _called(service, reached.id, "p1", CallOutcome.ANSWERED)
    closed = create_contact(service, PABLO, "8812-0083", list_name="deudores")
    change_status(service, PABLO, closed.id, "COMPLETADA")
    create_contact(service, PABLO, "8812-0084", list_name="deudores")
    queue.dnc.add("8812-0084", "", PABLO, clock.now)
    create_contact(service, PABLO, "8812-0085", list_name="otra")
    queue.next_contact(ANA, cobros)

    progress = queue.progress(cobros).to_data()

    assert progress == {
        "campaign": cobros,
        "total": 4,
        "never_tried": 3,
        "in_retry": 1,
        "reached": 1,
        "closed": 1,
        "dnc": 1,
        "capped": 1,
        "locked": 1,
    }
    assert fresh.id  # the one claimed above: never tried, now locked to Ana
