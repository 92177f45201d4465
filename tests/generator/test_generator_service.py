"""The generator service: weights from settings, and saved numbers never collide with existing contacts."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from generator.draw import SpaceExhausted, generate
from generator.ranges import Catalogue, Operator, OperatorRanges
from generator.service import GeneratorService, weights_from_settings
from kernel.settings import Settings


class ContactsDirectory:
    """Stands in for the contacts read model: which E.164 numbers already belong to a contact."""

    def __init__(self, phones: set[str]) -> None:
        self.phones = phones
        self.asked: list[list[str]] = []

    def __call__(self, numbers: Sequence[str]) -> set[str]:
        self.asked.append(list(numbers))
        return {n for n in numbers if n in self.phones}


def test_weights_come_from_settings() -> None:
    assert weights_from_settings(Settings(_env_file=None)) == {
        "kolbi": 40.0,
        "telefonica": 35.0,
        "claro": 25.0,
    }
    settings = Settings(
        _env_file=None, generator_weight_kolbi=50, generator_weight_telefonica=50, generator_weight_claro=0
    )
    service = GeneratorService.from_settings(settings)

    result = service.generate(1000, "stratified", seed=1)

    assert result.counts == {"kolbi": 500, "telefonica": 500, "claro": 0}


def test_weights_can_be_overridden_per_request() -> None:
    service = GeneratorService({"kolbi": 40, "telefonica": 35, "claro": 25})
    result = service.generate(100, "stratified", seed=1, weights={"kolbi": 0, "telefonica": 0, "claro": 1})
    assert result.counts == {"kolbi": 0, "telefonica": 0, "claro": 100}


def test_numbers_held_by_existing_contacts_are_redrawn_and_the_count_is_met() -> None:
    weights = {"kolbi": 40, "telefonica": 35, "claro": 25}
    taken = generate(1000, "stratified", weights, seed=7)
    contacts = ContactsDirectory(set(taken.e164()))
    service = GeneratorService(weights, existing=contacts)

    result = service.generate(1000, "stratified", seed=7, avoid_existing=True)

    assert len(result) == 1000
    assert contacts.phones.isdisjoint(result.e164())
    assert result.counts == {"kolbi": 400, "telefonica": 350, "claro": 250}
    assert result.redraws >= 400
    assert all(n.startswith("+506") and len(n) == 12 for batch in contacts.asked for n in batch)
    assert {n for batch in contacts.asked for n in batch} >= set(result.e164())


def test_without_avoiding_existing_contacts_they_are_not_consulted() -> None:
    contacts = ContactsDirectory(set())
    service = GeneratorService({"kolbi": 1, "telefonica": 1, "claro": 1}, existing=contacts)
    service.generate(50, "simple", seed=3)
    assert contacts.asked == []


def test_a_nearly_full_range_yields_exactly_the_free_numbers() -> None:
    catalogue = Catalogue((OperatorRanges.from_prefixes(Operator("uno", "Uno", "Uno"), ("88888",)),))
    free = {"+50688888001", "+50688888444", "+50688888998"}
    contacts = ContactsDirectory({f"+506{n}" for n in range(88_888_000, 88_889_000)} - free)
    service = GeneratorService({"uno": 1}, existing=contacts, catalogue=catalogue)

    result = service.generate(3, "stratified", avoid_existing=True)

    assert set(result.e164()) == free
    with pytest.raises(SpaceExhausted):
        service.generate(4, "stratified", avoid_existing=True)


def test_avoiding_existing_contacts_needs_a_lookup() -> None:
    service = GeneratorService({"kolbi": 1})
    with pytest.raises(RuntimeError):
        service.generate(10, avoid_existing=True)
