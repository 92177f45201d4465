"""A short run of the load bench (``bench/load.py``): 10 agents and a supervisor over two gateways for 15 s,
with the real processes on PostgreSQL and Redis (a schema and a Redis key prefix of its own).

No timing is asserted: only what must hold at any speed. No request gets a server error, no contact is
held by two agents at once (by the agents' own hold intervals and by the event store's lock events),
every operation of the agents' and the supervisor's loops was performed and succeeded at least once,
every job finished, every note edit's notice reached every listener once, and no server logged an error.
"""

from __future__ import annotations

import pytest

from bench.load import ORDER, Options, report, run, summary


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
    assert figures["listener_resyncs"] == 0
