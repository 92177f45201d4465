"""When the read model's unique phone index fires (a row whose id was not derived from its phone, planted
here by hand), the gateway answers a typed 409, never a 500: embedded on SQLite, and distributed on
PostgreSQL, where the refusal crosses the internal contacts API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from contacts.domain import ContactState
from contacts.projection import row_of
from contacts.schema import contacts
from kernel.store import create_engine
from tests.importexport.test_transfer_distributed import cluster as cluster
from tests.support.cluster import Cluster
from tests.support.servers import EmbeddedServer


def _plant_rogue_row(database_url: str, phone_e164: str) -> None:
    now = datetime.now(UTC)
    rogue = ContactState(
        contact_id=str(uuid.uuid4()),
        phone=phone_e164,
        phone_e164=phone_e164,
        name="Fila huérfana",
        created_at=now,
        updated_at=now,
        version=1,
    )
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(contacts.insert(), [row_of(rogue)])
    finally:
        engine.dispose()


def _refused_with_409(client: httpx.Client) -> None:
    answer = client.post("/contacts", json={"phone": "8812-3456", "name": "Ana"})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "duplicate_phone"
    assert error["message"].startswith("Otro contacto ya tiene")
    assert "Integrity" not in answer.text
    assert "UNIQUE" not in answer.text.upper()
    assert client.post("/contacts", json={"phone": "8812-3457"}).status_code == 201, "others unaffected"


def test_embedded_a_phone_the_unique_index_refuses_is_409(embedded_server: EmbeddedServer) -> None:
    _plant_rogue_row(f"sqlite:///{embedded_server.data_dir / 'callmanager.db'}", "+50688123456")
    with embedded_server.client(embedded_server.create_user("ana", "Agent")) as agent:
        _refused_with_409(agent)


def test_distributed_a_phone_the_unique_index_refuses_is_409(
    cluster: tuple[Cluster, httpx.Client],
) -> None:
    system, client = cluster
    _plant_rogue_row(system.database_url, "+50688123456")
    _refused_with_409(client)
