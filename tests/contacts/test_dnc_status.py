"""A do-not-call status set by editing a contact (PUT/PATCH, the socket's update_contact: ``UpdateContact``;
``ChangeStatus``) lists the number on the do-not-call list in the same transaction, audited as the
editor's, on SQLite and PostgreSQL (a wrap-up to it is the gateway's: test_callbacks_e2e)."""

from __future__ import annotations

import pytest
from contacts_support import ANA, PABLO, FakeClock, create_contact
from sqlalchemy.engine import Engine

from contacts.commands import ChangeStatus, UpdateContact
from contacts.dnc import DncList
from contacts.errors import TransitionRefused
from contacts.handlers import ContactsService


def test_editing_a_contact_to_a_do_not_call_status_lists_its_number_audited(
    service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    dnc = DncList(engine)
    edited = create_contact(service, ANA, "8812-0501")
    changed = create_contact(service, ANA, "8812-0502")
    untouched = create_contact(service, ANA, "8812-0503")

    service.handle(UpdateContact(caller=ANA, now=clock.now, contact_id=edited.id, status="No llamar"))
    clock.advance(minutes=1)
    service.handle(ChangeStatus(caller=ANA, now=clock.now, contact_id=changed.id, status="NO_LLAMAR"))
    service.handle(UpdateContact(caller=ANA, now=clock.now, contact_id=untouched.id, status="INTERESADO"))

    entry = dnc.get("+50688120501")
    assert entry is not None
    assert (entry.added_by, entry.added_by_name) == (ANA.user_id, "ana")
    assert entry.reason == "Estado NO_LLAMAR puesto al editar el contacto"
    [audit] = dnc.changes("+50688120501")
    assert (audit["action"], audit["username"], audit["reason"]) == ("added", "ana", entry.reason)
    assert dnc.get("+50688120502") is not None
    assert dnc.get("+50688120503") is None

    # Saving the contact again with the status it has lists nothing again.
    service.handle(
        UpdateContact(caller=ANA, now=clock.now, contact_id=edited.id, name="Otro", status="NO_LLAMAR")
    )
    assert len(dnc.changes("+50688120501")) == 1


def test_a_refused_edit_to_do_not_call_lists_nothing(
    service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    contact = create_contact(service, PABLO, "8812-0504", status="COMPLETADA")

    with pytest.raises(TransitionRefused):
        service.handle(UpdateContact(caller=ANA, now=clock.now, contact_id=contact.id, status="NO_LLAMAR"))

    assert DncList(engine).get("+50688120504") is None
