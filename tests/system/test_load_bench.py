"""A short run of the load bench (``bench/load.py``): 10 agents and a supervisor over two gateways for 15 s,
with the real processes on PostgreSQL and Redis (a schema and a Redis key prefix of its own).

No timing is asserted: only what must hold at any speed. No request gets a server error, no contact is
held by two agents at once (by the agents' own hold intervals and by the event store's lock events),
every operation of the agents' and the supervisor's loops was performed and succeeded at least once,
every job finished, every note edit's notice reached every listener once and in position order (the desk
client drops a notice that is not), and no server logged an error.
The two detectors of double assignment are checked first on made-up holds and lock events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.load import ORDER, Hold, Options, doubles_by_agents, doubles_in, report, run, summary

T0 = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def _locked(
    stream: str, user: str, at: datetime, minutes: int = 10
) -> tuple[str, str, datetime, dict[str, str]]:
    until = (at + timedelta(minutes=minutes)).isoformat()
    return (stream, "contacts.ContactLocked", at, {"locked_by": user, "locked_until": until})


def test_two_agents_holding_one_contact_at_once_count_as_a_double_assignment() -> None:
    overlapping = [Hold("c1", 1, 10.0, 12.0), Hold("c1", 2, 11.5, 13.0), Hold("c2", 3, 10.0, 11.0)]
    one_after_the_other = [Hold("c1", 1, 10.0, 12.0), Hold("c1", 2, 12.5, 13.0), Hold("c1", 1, 14.0, 15.0)]

    assert doubles_by_agents(overlapping) == [("c1", 1, 2)]
    assert doubles_by_agents(one_after_the_other) == []


def test_a_lock_taken_over_another_users_live_lock_is_found_in_the_lock_events() -> None:
    released = (("s1", "contacts.LockReleased", T0 + timedelta(seconds=5), {"released_by": "ana"}),)
    fine = [
        _locked("s1", "ana", T0),
        _locked("s1", "ana", T0 + timedelta(seconds=1)),  # her own lock again
        *released,
        _locked("s1", "beto", T0 + timedelta(seconds=6)),
        _locked("s2", "carla", T0, minutes=1),
        _locked("s2", "beto", T0 + timedelta(minutes=2)),  # carla's lock had lapsed
    ]
    doubled = [_locked("s1", "ana", T0), _locked("s1", "beto", T0 + timedelta(seconds=6))]

    assert doubles_in(fine) == []
    assert doubles_in(doubled) == ["s1: beto locked it while ana held it"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_short_load_gets_no_server_error_no_double_assignment_and_every_operation_done(
    postgres_server_url: str, redis_url: str
) -> None:
    options = Options(
        database_url=postgres_server_url,
        redis_url=redis_url,
        duration=15,
        agents=10,
        supervisors=1,
        contacts=3000,
        listeners=2,
        import_rows=500,
        verbose=False,
    )

    figures = summary(run(options))
    print(report(figures))

    operations = figures["operations"]
    succeeded = {
        name
        for name, op in operations.items()
        if any(code == "ok" or code.startswith("2") for code in op["codes"])
    }
    assert figures["server_errors"] == {}
    assert figures["log_errors"] == {}
    assert figures["double_assignments_by_agents"] == 0, figures["double_assignment_examples"]
    assert figures["double_assignments_by_events"] == 0, figures["double_assignment_examples"]
    assert figures["holds"] > 0
    assert set(ORDER) <= succeeded, operations
    assert figures["problems"] == {}
    assert {kind: job["states"] for kind, job in figures["jobs"].items()} == {
        "import": {"finished": figures["jobs"]["import"]["count"]},
        "export": {"finished": figures["jobs"]["export"]["count"]},
    }
    edits = operations["edit"]["codes"].get("200", 0)
    for gateway, live in figures["live"].items():
        assert (live["samples"], live["lost"], live["duplicates"]) == (edits, 0, 0), gateway
        assert (live["lost_by_the_desk_client"], live["out_of_order"]) == (0, 0), gateway
    assert figures["listener_resyncs"] == 0
