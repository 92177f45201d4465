"""Callbacks, campaigns, import and the wrap-up read their parameters and bodies strictly, as the
OpenAPI description declares them: ISO instants only, ``true``/``false`` only, integers that are
integers, text that is text, bounded. What schemathesis' ``negative_data_rejection`` found accepted before
(``due_before=0.5`` read as a Unix time, ``mine=1``, ``"max_attempts": "5"``, a number as a phone) is a 422
now, and the well-formed requests the desk client and the CLI send still work (a real embedded system)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.servers import start_embedded


@pytest.fixture(scope="module")
def ti(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A TI's client of one embedded system for the whole module (every request here is refused, or
    writes to a list or campaign of its own)."""
    server = start_embedded(tmp_path_factory.mktemp("strict"))
    try:
        with server.client(server.create_user("tomas", "TI", "Norte")) as client:
            yield client
    finally:
        log = server.process.stop()
    assert "Traceback" not in log


def _refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert any(p["field"].removeprefix("query.").startswith(field) for p in error["problems"]), error


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"due_before": "0.5"}, "due_before"),
        ({"due_before": "1765000000"}, "due_before"),
        ({"mine": "1"}, "mine"),
        ({"mine": "yes"}, "mine"),
        ({"mine": "True"}, "mine"),
    ],
)
def test_callbacks_are_listed_only_with_iso_instants_and_true_or_false(
    ti: httpx.Client, params: dict[str, str], field: str
) -> None:
    _refused(ti.get("/callbacks", params=params), field)


def test_the_well_formed_queries_of_the_desk_still_list_callbacks_and_campaigns(ti: httpx.Client) -> None:
    listed = ti.get("/callbacks", params={"mine": "true", "due_before": "2026-12-07T23:59:59-06:00"})
    assert listed.status_code == 200, listed.text
    assert ti.get("/callbacks", params={"mine": "false", "due_before": "2026-12-07"}).status_code == 200
    assert ti.get("/campaigns", params={"archived": "true"}).status_code == 200
    _refused(ti.get("/campaigns", params={"archived": "1"}), "archived")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Renovaciones", "max_attempts": "5"}, "max_attempts"),
        ({"name": "Renovaciones", "max_attempts": 5.0}, "max_attempts"),
        ({"name": "Renovaciones", "active": 1}, "active"),
        ({"name": "Renovaciones", "active": "true"}, "active"),
        ({"name": "Renovaciones", "priority": True}, "priority"),
        ({"name": "Renovaciones", "retry_minutes": {"busy": "30"}}, "retry_minutes"),
        ({"name": 7}, "name"),
    ],
)
def test_campaign_rules_are_read_strictly(ti: httpx.Client, body: dict[str, Any], field: str) -> None:
    _refused(ti.post("/campaigns", json=body), field)
    _refused(
        ti.patch("/campaigns/general", json={k: v for k, v in body.items() if k != "name"} or body), field
    )


def test_a_campaign_with_well_typed_rules_is_created(ti: httpx.Client) -> None:
    body = {"name": "Renovaciones", "active": False, "max_attempts": 5, "retry_minutes": {"busy": 30}}
    answer = ti.post("/campaigns", json=body)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["max_attempts"], answer.json()["retry_minutes"]["busy"]) == (5, 30)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"due_at": 1765000000}, "due_at"),
        ({"due_at": "0.5"}, "due_at"),
    ],
)
def test_a_callback_is_rescheduled_only_to_an_iso_instant(
    ti: httpx.Client, body: dict[str, Any], field: str
) -> None:
    callback = "0" * 32 + ".2"
    _refused(ti.patch(f"/callbacks/{callback}", json=body), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "no_answer", "callback_at": 1765000000}, "callback_at"),
        ({"outcome": "no_answer", "keep_lock": 1}, "keep_lock"),
    ],
)
def test_a_wrap_up_is_read_strictly(ti: httpx.Client, body: dict[str, Any], field: str) -> None:
    _refused(ti.post(f"/contacts/{'0' * 32}/disposition", json=body), field)


@pytest.mark.parametrize(
    ("records", "field"),
    [
        ([{"phone": 88123456}], "0.phone"),
        ([{"phone": "8812-3456", "name": None}], "0.name"),
        ([{"phone": "8812-3456", "extra": {"origen": 1}}], "0.extra.origen"),
        ([{"phone": "8812-3456"}, {"telefono": 88123457}], "1.telefono"),
        ([{"phone": "8812-3456", "name": "x" * 201}], "0.name"),
    ],
)
def test_a_json_import_takes_text_values_only_and_writes_nothing_otherwise(
    ti: httpx.Client, records: list[dict[str, Any]], field: str
) -> None:
    _refused(ti.post("/import", json=records, params={"list": "estricta"}), field)
    assert ti.get("/contacts", params={"list": "estricta"}).json() == []


def test_a_json_import_of_many_bad_records_names_the_first_hundred(ti: httpx.Client) -> None:
    answer = ti.post("/import", json=[{"phone": n} for n in range(5000)], params={"list": "muchas"})
    _refused(answer, "0.phone")
    assert len(answer.json()["error"]["problems"]) == 100


def test_a_json_import_still_reads_its_keys_like_headers(ti: httpx.Client) -> None:
    records = [
        {"phone": "8812-3456", "extra": {"origen": "web"}},
        {"telefono": "88123457", "ciudad": "Heredia"},
    ]
    answer = ti.post("/import", json=records, params={"list": "cabeceras", "dry_run": "false"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["inserted"] == 2
    _refused(ti.post("/import", json=records, params={"dry_run": "si"}), "dry_run")


def test_an_export_is_asked_for_with_true_or_false(ti: httpx.Client) -> None:
    _refused(ti.get("/export", params={"async": "1", "format": "csv"}), "async")
    assert ti.get("/export", params={"async": "false", "format": "csv"}).status_code == 200


@pytest.mark.parametrize(
    ("form", "field"),
    [({"dry_run": "si"}, "dry_run"), ({"dry_run": "1"}, "dry_run"), ({"list": "x" * 201}, "list")],
)
def test_an_upload_takes_true_or_false_and_a_bounded_list_name(
    ti: httpx.Client, form: dict[str, str], field: str
) -> None:
    _refused(ti.post("/import", files={"file": ("lista.csv", b"telefono\n88123456\n")}, data=form), field)
    dry = ti.post("/import", files={"file": ("lista.csv", b"telefono\n88123456\n")}, data={"dry_run": "true"})
    assert dry.status_code == 202, dry.text
