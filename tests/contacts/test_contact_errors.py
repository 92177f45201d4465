"""Domain errors as a public contract: every error crosses a process boundary as the same class with the
same message and details, and both HTTP edges answer it with the one status the class names."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from contacts import errors
from contacts.errors import ContactError, Locked, QueueEmpty
from contacts.views import error_from_data, error_to_data

WHEN = datetime(2026, 12, 7, 19, 30, tzinfo=UTC)

SAMPLES: list[ContactError] = [
    errors.NotFound("c1"),
    errors.AlreadyExists("c1", "+50688887777"),
    errors.Locked("c1", "u1", "ana", WHEN),
    errors.NotLockOwner("c1", "u1", "ana"),
    errors.NotLocked("c1"),
    errors.Forbidden("Agent", "borrar contactos"),
    errors.InvalidStatus("RARO", ["NUEVO", "VENDIDO"]),
    errors.InvalidInput("name", "El nombre es demasiado largo"),
    errors.LockDurationTooLong(500, 120),
    errors.Conflict("c1"),
    errors.DuplicatePhone("+50688887777"),
    errors.VersionMismatch(3, 4, "c1"),
    errors.CallNotOpen("c1", "k1"),
    errors.QueueEmpty("Todos en espera de reintento", WHEN, {"in_retry": 12}),
    errors.QueueEmpty("No hay ninguna campaña activa"),
    errors.DoNotCall("+50688887777", "pidió no ser llamado"),
    errors.CampaignNotFound("camp1"),
    errors.CampaignNotWorked("camp1", "ventas"),
    errors.CampaignExists("Navidad"),
    errors.TransitionRefused("c1", "VENDIDO", "NUEVO", "Agent", "TeamLead"),
    errors.CallbackRequired("PENDIENTE"),
    errors.CallbackNotFound("c1.7"),
]


def _error_classes() -> set[type[ContactError]]:
    return {
        kind
        for _, kind in inspect.getmembers(errors, inspect.isclass)
        if issubclass(kind, ContactError) and kind is not ContactError
    }


def test_every_error_class_has_a_sample_here_and_a_code_of_its_own() -> None:
    assert {type(sample) for sample in SAMPLES} == _error_classes()
    assert ContactError.by_code == {kind.code: kind for kind in _error_classes()}


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: f"{type(e).__name__}")
def test_an_error_comes_back_as_the_same_class_with_the_same_details(error: ContactError) -> None:
    again = error_from_data(error_to_data(error))
    assert type(again) is type(error)
    assert again.message == error.message == str(again)
    assert vars(again) == vars(error)
    assert again.http_status == error.http_status


def test_datetimes_come_back_as_aware_datetimes() -> None:
    locked = error_from_data(error_to_data(Locked("c1", "u1", "ana", WHEN)))
    empty = error_from_data(error_to_data(QueueEmpty("fuera de horario", WHEN)))
    assert isinstance(locked, Locked)
    assert locked.locked_until == WHEN
    assert isinstance(empty, QueueEmpty)
    assert empty.until == WHEN


def test_an_unknown_code_comes_back_as_the_base_error_with_its_message() -> None:
    again = error_from_data({"code": "from_the_future", "message": "Algo nuevo"})
    assert type(again) is ContactError
    assert again.message == "Algo nuevo"
    assert again.http_status == 400


def test_refusals_answer_403_missing_things_404_and_clashes_409() -> None:
    by_status = {kind.__name__: kind.http_status for kind in _error_classes()}
    assert by_status["Forbidden"] == by_status["CampaignNotWorked"] == by_status["TransitionRefused"] == 403
    assert by_status["NotFound"] == by_status["CampaignNotFound"] == by_status["QueueEmpty"] == 404
    assert by_status["Locked"] == 423
    assert by_status["VersionMismatch"] == 412
