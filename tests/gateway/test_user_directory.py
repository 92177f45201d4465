"""The user directory on SQLite and PostgreSQL: keys shown once, stored only hashed, revocable, rotatable."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.schema import metadata
from gateway.users import (
    DenialReason,
    InvalidUser,
    KeyNotFound,
    UserDirectory,
    UserExists,
    UserInactive,
    UserNames,
    UserNotFound,
)
from kernel.roles import Role

KEY_SHAPE = re.compile(r"cm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def every_stored_value(engine: sa.Engine) -> list[str]:
    """Every column of every row of every gateway table, as text."""
    values: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                values.extend(str(value) for value in row)
    return values


def test_a_new_user_gets_a_random_key_shown_once_and_stored_only_as_a_hash(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    issued = [directory.create_user(f"agente{i}", Role.AGENT)[1] for i in range(3)]
    issued.append(directory.rotate_key("agente0"))
    assert all(KEY_SHAPE.fullmatch(key.plaintext) for key in issued)
    assert len({key.plaintext for key in issued}) == 4
    assert issued[0].plaintext not in repr(issued[0])
    stored = every_stored_value(any_engine)
    for key in issued:
        secret = key.plaintext.split("_", 2)[2]
        assert not any(key.plaintext in value or secret in value for value in stored)


def test_verify_finds_the_principal_and_says_why_not_otherwise(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    user, issued = directory.create_user("Luis", "TeamLead", team="Sur", display_name="Luis Mora")
    verdict = directory.verify(issued.plaintext)
    assert verdict.principal is not None
    assert (verdict.principal.user_id, verdict.principal.username, verdict.principal.role) == (
        user.id,
        "luis",
        Role.TEAM_LEAD,
    )
    assert (verdict.principal.team, verdict.principal.key_id) == ("Sur", issued.key_id)
    assert directory.verify(None).reason is DenialReason.MISSING
    assert directory.verify("hola").reason is DenialReason.MALFORMED
    forged = issued.plaintext[:-1] + ("x" if not issued.plaintext.endswith("x") else "y")
    assert directory.verify(forged).reason is DenialReason.WRONG_SECRET
    assert directory.verify("cm_" + "0" * 12 + "_" + "a" * 43).reason is DenialReason.UNKNOWN_KEY
    directory.revoke_key(issued.key_id)
    assert directory.verify(issued.plaintext).reason is DenialReason.REVOKED


def test_deactivating_a_user_revokes_every_key(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    _, first = directory.create_user("ana", Role.AGENT)
    second = directory.issue_key("ana")
    user = directory.deactivate("ana")
    assert not user.active
    assert user.deactivated_at is not None
    assert directory.authenticate(first.plaintext) is None
    assert directory.authenticate(second.plaintext) is None
    assert all(not key.active for key in directory.list_keys("ana"))
    with pytest.raises(UserInactive):
        directory.rotate_key("ana")
    assert directory.deactivate("ana").deactivated_at == user.deactivated_at


def test_rotating_revokes_the_old_keys_and_issues_one_new(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    _, old = directory.create_user("ana", Role.AGENT)
    extra = directory.issue_key("ana")
    new = directory.rotate_key("ana")
    assert directory.authenticate(old.plaintext) is None
    assert directory.authenticate(extra.plaintext) is None
    principal = directory.authenticate(new.plaintext)
    assert principal is not None
    assert principal.username == "ana"
    assert [key.id for key in directory.list_keys("ana") if key.active] == [new.key_id]


def test_usernames_are_unique_regardless_of_case(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    directory.create_user("Ana", Role.AGENT)
    with pytest.raises(UserExists):
        directory.create_user("ANA", Role.TI)
    assert [u.username for u in directory.list_users()] == ["ana"]


@pytest.mark.parametrize(
    ("username", "role", "team"),
    [
        ("a", "Agent", None),
        ("ana maría", "Agent", None),
        ("ana'; drop table users;--", "Agent", None),
        ("x" * 65, "Agent", None),
        ("ana", "Supervisor", None),
        ("ana", "System", None),
        ("ana", Role.SYSTEM, None),
        ("ana", "Agent", "t" * 101),
        ("ana", "Agent", "equipo\x00"),
    ],
)
def test_invalid_users_are_refused_with_a_reason(
    any_engine: sa.Engine, username: str, role: str | Role, team: str | None
) -> None:
    with pytest.raises(InvalidUser):
        UserDirectory(any_engine).create_user(username, role, team=team)


def test_unknown_users_are_reported(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    with pytest.raises(UserNotFound):
        directory.deactivate("nadie")
    with pytest.raises(UserNotFound):
        directory.rotate_key("nadie")


def test_last_use_is_recorded_at_most_once_a_minute(any_engine: sa.Engine) -> None:
    now = [datetime(2025, 3, 1, 8, 0, tzinfo=UTC)]
    directory = UserDirectory(any_engine, clock=lambda: now[0])
    _, issued = directory.create_user("ana", Role.AGENT)
    assert directory.list_keys("ana")[0].last_used_at is None
    directory.authenticate(issued.plaintext)
    first = directory.list_keys("ana")[0].last_used_at
    assert first == now[0]
    now[0] += timedelta(seconds=30)
    directory.authenticate(issued.plaintext)
    assert directory.list_keys("ana")[0].last_used_at == first
    now[0] += timedelta(minutes=2)
    directory.authenticate(issued.plaintext)
    assert directory.list_keys("ana")[0].last_used_at == now[0]


# --- found by mutation testing (docs/MUTATION.md) --------------------------------------------------------


def test_a_use_exactly_a_minute_later_is_recorded(any_engine: sa.Engine) -> None:
    now = [datetime(2025, 3, 1, 8, 0, tzinfo=UTC)]
    directory = UserDirectory(any_engine, clock=lambda: now[0])
    _, issued = directory.create_user("ana", Role.AGENT)
    directory.authenticate(issued.plaintext)
    now[0] += timedelta(minutes=1)
    assert directory.verify_quietly(issued.plaintext) is None, "a use to record: the full check writes it"
    directory.authenticate(issued.plaintext)
    assert directory.list_keys("ana")[0].last_used_at == now[0]


def test_the_key_id_of_a_refused_key_is_kept_up_to_the_longest_presented(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    shaped = "cm_0123456789ab_"
    assert directory.verify(shaped + "x" * (256 - len(shaped))).key_id == "0123456789ab"
    assert directory.verify(shaped + "x" * (257 - len(shaped))).key_id is None
    assert directory.verify(" " + shaped + "A" * 43 + " ").reason is DenialReason.UNKNOWN_KEY


def test_names_and_teams_are_tidied_and_may_be_as_long_as_their_limit(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    user, _ = directory.create_user("  Ana.M-2 ", "team_lead", team=" t" * 50, display_name="n" * 200)
    assert (user.username, user.role, user.team, user.display_name) == (
        "ana.m-2",
        Role.TEAM_LEAD,
        " ".join(["t"] * 50),
        "n" * 200,
    )
    blank, _ = directory.create_user("bea", Role.AGENT, team="   ", display_name=None)
    assert (blank.team, blank.display_name) == (None, "")
    with pytest.raises(InvalidUser, match="máximo 200"):
        directory.create_user("carla", Role.AGENT, display_name="n" * 201)
    assert [u.username for u in directory.list_users()] == ["ana.m-2", "bea"]


def test_inactive_users_can_be_left_out_of_the_list(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    directory.create_user("ana", Role.AGENT)
    directory.create_user("bea", Role.AGENT)
    directory.deactivate("ana")
    assert [u.username for u in directory.list_users()] == ["ana", "bea"]
    assert [u.username for u in directory.list_users(include_inactive=False)] == ["bea"]


def test_user_names_are_found_by_id_and_remembered(any_engine: sa.Engine) -> None:
    directory = UserDirectory(any_engine)
    ana, _ = directory.create_user("ana", Role.AGENT)
    bea, _ = directory.create_user("bea", Role.TEAM_LEAD)
    stranger = str(uuid.uuid4())
    assert directory.usernames([str(ana.id), str(bea.id), "system", stranger]) == {
        str(ana.id): "ana",
        str(bea.id): "bea",
    }
    assert directory.usernames(["system"]) == {}
    names = UserNames(directory)
    assert names.lookup([str(ana.id), "system"]) == {str(ana.id): "ana"}
    asked: list[set[str]] = []
    original = directory.usernames
    directory.usernames = lambda ids: asked.append(set(ids)) or original(ids)  # type: ignore[method-assign]
    assert names.lookup([str(ana.id), str(bea.id)]) == {str(ana.id): "ana", str(bea.id): "bea"}
    assert asked == [{str(bea.id)}], "only ids not seen before are looked up"
    assert names.lookup([str(ana.id), str(bea.id)]) == {str(ana.id): "ana", str(bea.id): "bea"}
    assert asked == [{str(bea.id)}]


def test_a_keys_view_says_when_it_was_made_used_and_revoked(any_engine: sa.Engine) -> None:
    now = [datetime(2025, 3, 1, 8, 0, tzinfo=UTC)]
    directory = UserDirectory(any_engine, clock=lambda: now[0])
    _, issued = directory.create_user("ana", Role.AGENT)
    [fresh] = directory.list_keys("ana")
    assert fresh.to_dict() == {
        "id": issued.key_id,
        "active": True,
        "created_at": "2025-03-01T08:00:00+00:00",
        "revoked_at": None,
        "last_used_at": None,
    }
    now[0] += timedelta(minutes=5)
    directory.authenticate(issued.plaintext)
    now[0] += timedelta(minutes=5)
    revoked = directory.revoke_key(issued.key_id)
    assert revoked.to_dict() == {
        "id": issued.key_id,
        "active": False,
        "created_at": "2025-03-01T08:00:00+00:00",
        "revoked_at": "2025-03-01T08:10:00+00:00",
        "last_used_at": "2025-03-01T08:05:00+00:00",
    }


def test_a_users_view_has_every_field_and_the_list_is_by_username(any_engine: sa.Engine) -> None:
    now = [datetime(2025, 3, 1, 8, 0, tzinfo=UTC)]
    directory = UserDirectory(any_engine, clock=lambda: now[0])
    zoe, _ = directory.create_user("zoe", Role.TI, team="Norte", display_name="Zoe Castro")
    directory.create_user("ana", Role.AGENT)
    now[0] += timedelta(hours=1)
    gone = directory.deactivate("zoe")
    assert gone.to_dict() == {
        "id": str(zoe.id),
        "username": "zoe",
        "display_name": "Zoe Castro",
        "role": "TI",
        "team": "Norte",
        "active": False,
        "created_at": "2025-03-01T08:00:00+00:00",
        "deactivated_at": "2025-03-01T09:00:00+00:00",
    }
    assert zoe.to_dict()["deactivated_at"] is None
    assert [u.username for u in directory.list_users()] == ["ana", "zoe"]


def test_revoking_a_revoked_key_keeps_when_it_was_revoked(any_engine: sa.Engine) -> None:
    now = [datetime(2025, 3, 1, 8, 0, tzinfo=UTC)]
    directory = UserDirectory(any_engine, clock=lambda: now[0])
    _, issued = directory.create_user("ana", Role.AGENT)
    first = directory.revoke_key(issued.key_id)
    now[0] += timedelta(hours=1)
    assert (
        directory.revoke_key(issued.key_id).revoked_at
        == first.revoked_at
        == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    )


def test_keys_are_listed_newest_first_and_refusals_name_what_was_missing(any_engine: sa.Engine) -> None:
    now = [datetime(2025, 3, 1, 8, 0, tzinfo=UTC)]
    directory = UserDirectory(any_engine, clock=lambda: now[0])
    _, first = directory.create_user("ana", Role.AGENT)
    now[0] += timedelta(minutes=1)
    second = directory.issue_key("ana")
    assert [key.id for key in directory.list_keys("ana")] == [second.key_id, first.key_id]
    directory.revoke_key(first.key_id)
    now[0] += timedelta(hours=1)
    directory.rotate_key("ana")  # revokes the second key now; the first keeps its time
    revoked = {key.id: key.revoked_at for key in directory.list_keys("ana")}
    assert revoked[first.key_id] == datetime(2025, 3, 1, 8, 1, tzinfo=UTC)
    assert revoked[second.key_id] == now[0]
    with pytest.raises(KeyNotFound, match="no existe la clave 'ffffffffffff'"):
        directory.revoke_key("ffffffffffff")
    directory.deactivate("ana")
    with pytest.raises(UserInactive, match="el usuario 'ana' está desactivado"):
        directory.issue_key("ana")
