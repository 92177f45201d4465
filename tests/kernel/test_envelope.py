"""The envelope travels as JSON between processes without losing anything."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson

from kernel.envelope import SYSTEM_ACTOR, Actor, Envelope, new_id, new_ids


def test_every_field_survives_a_json_round_trip() -> None:
    sent = Envelope(
        type="contacts.StatusChanged",
        stream_id="contact-8c1f",
        data={"estado": "No contesta", "intentos": 3, "notas": "Volver a llamar mañana 🙏", "extra": None},
        schema_version=2,
        stream_version=7,
        position=1234,
        occurred_at=datetime(2025, 6, 1, 8, 30, 0, 123456, tzinfo=UTC),
        actor=Actor(user_id="ana", role="agent", desk="mesa-2"),
        correlation_id=uuid.uuid4(),
        causation_id=uuid.uuid4(),
    )

    assert Envelope.from_json(sent.to_json()) == sent
    assert Envelope.from_json(sent.to_json().decode()) == sent


def test_a_local_time_keeps_its_instant_through_json() -> None:
    local = datetime(2025, 6, 1, 2, 30, tzinfo=timezone(timedelta(hours=-6)))
    sent = Envelope(type="t", stream_id="s", data={}, occurred_at=local)

    received = Envelope.from_json(sent.to_json())

    assert received.occurred_at == datetime(2025, 6, 1, 8, 30, tzinfo=UTC)


def test_missing_optional_fields_take_their_defaults() -> None:
    raw = {
        "id": str(uuid.uuid4()),
        "type": "contacts.ContactCreated",
        "stream_id": "contact-1",
        "occurred_at": "2025-01-01T00:00:00",
    }

    received = Envelope.from_dict(raw)

    assert received.occurred_at.tzinfo is not None
    assert received.occurred_at.utcoffset() == timedelta(0)
    assert (received.schema_version, received.stream_version, received.position) == (1, 0, 0)
    assert (received.correlation_id, received.causation_id, received.data) == (None, None, {})
    assert received.actor == Actor(user_id="")


def test_json_is_plain_and_readable_by_other_languages() -> None:
    sent = Envelope(type="t", stream_id="s", data={"nombre": "Iñaki"}, actor=SYSTEM_ACTOR)

    raw = orjson.loads(sent.to_json())

    assert raw["actor"] == {"user_id": "system", "role": "system", "desk": ""}
    assert raw["data"] == {"nombre": "Iñaki"}
    assert raw["id"] == str(sent.id)
    assert raw["occurred_at"].endswith("+00:00")


def test_a_caused_event_shares_the_correlation_of_its_cause() -> None:
    command = Envelope(type="contacts.LockContact", stream_id="contact-1", data={})
    event = Envelope(type="contacts.ContactLocked", stream_id="contact-1", data={}).caused_by(command)
    follow_up = Envelope(type="gateway.Notified", stream_id="n", data={}).caused_by(event)

    assert (event.causation_id, event.correlation_id) == (command.id, command.id)
    assert (follow_up.causation_id, follow_up.correlation_id) == (event.id, command.id)


def test_ids_are_version_7_and_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    first = new_id()  # the parent now holds unread random bits
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(writing, b"".join(new_id().bytes for _ in range(3)))
        os._exit(0)
    os.close(writing)
    from_child = os.read(reading, 48)
    os.close(reading)
    os.waitpid(child, 0)
    in_parent = [new_id() for _ in range(3)]

    child_ids = [uuid.UUID(bytes=from_child[i : i + 16]) for i in range(0, 48, 16)]
    assert first.version == 7
    assert all(i.version == 7 for i in child_ids + in_parent)
    low_bits = (1 << 62) - 1
    assert {i.int & low_bits for i in child_ids}.isdisjoint(i.int & low_bits for i in in_parent)
    assert len({first, *child_ids, *in_parent}) == 7


def test_a_bulk_of_ids_is_version_7_distinct_increasing_and_stamped_with_the_time() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    ids = new_ids(5_000)
    after = int(datetime.now(UTC).timestamp() * 1000)

    assert len(set(ids)) == 5_000
    assert ids == sorted(ids, key=lambda i: i.int)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(before - 1 <= i.int >> 80 <= after + 1 for i in ids)
    assert all(uuid.UUID(str(i)) == i for i in ids[:10])
    assert new_ids(0) == []
