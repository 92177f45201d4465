"""The status catalogue: codes, spellings users type, list priority and ageing data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts.errors import InvalidStatus
from contacts.statuses import (
    DEFAULT_CATALOGUE,
    LEGACY_ALIASES,
    STATUSES,
    AgeingStep,
    Catalogue,
    Status,
    add_months,
    normalise_status,
    status_key,
)

T0 = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


def test_the_catalogue_has_the_twelve_product_statuses_and_do_not_call_in_list_priority_order() -> None:
    assert DEFAULT_CATALOGUE.codes == (
        "NC",
        "CUELGA",
        "SIN_GESTIONAR",
        "INTERESADO",
        "SERVICIOS_ACTIVOS",
        "PENDIENTE",
        "EN_PROGRESO",
        "COMPLETADA",
        "NO_DISPONIBLE",
        "NO_EXISTE",
        "SIN_RED",
        "NO_CONTACTO",
        "NO_LLAMAR",
    )
    assert DEFAULT_CATALOGUE.default == "SIN_GESTIONAR"
    assert all(status.label_es and status.label_en for status in STATUSES)


def test_sorting_by_priority_lists_unanswered_and_hung_up_first_and_unknown_codes_last() -> None:
    codes = ["COMPLETADA", "RARO", "SIN_GESTIONAR", "CUELGA", "NC"]
    assert sorted(codes, key=DEFAULT_CATALOGUE.priority) == [
        "NC",
        "CUELGA",
        "SIN_GESTIONAR",
        "COMPLETADA",
        "RARO",
    ]


def test_only_interested_and_active_customers_are_exempt_from_ageing() -> None:
    exempt = {status.code for status in STATUSES if not status.ageable}
    assert exempt == {"INTERESADO", "SERVICIOS_ACTIVOS", "NO_LLAMAR"}


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("SIN GESTIONAR", "SIN_GESTIONAR"),
        ("EN PROGRESO", "EN_PROGRESO"),
        ("NO CONTACTADO", "NO_CONTACTO"),
        ("no contactado", "NO_CONTACTO"),
        ("sin-gestionar", "SIN_GESTIONAR"),
        ("  Sin   Gestionar ", "SIN_GESTIONAR"),
        ("en_progreso", "EN_PROGRESO"),
        ("No contesta", "NC"),
        ("nc", "NC"),
        ("N/C", "NC"),
        ("Interesado", "INTERESADO"),
        ("Servicios Activos", "SERVICIOS_ACTIVOS"),
        ("completado", "COMPLETADA"),
        ("No disponible", "NO_DISPONIBLE"),
        ("Pending", "PENDIENTE"),
        ("Hangs up", "CUELGA"),
    ],
)
def test_spellings_users_type_map_to_the_catalogue_code(typed: str, code: str) -> None:
    assert normalise_status(typed) == code


def test_an_unknown_status_is_refused_listing_the_valid_ones() -> None:
    with pytest.raises(InvalidStatus) as refused:
        normalise_status("VOLVER A LLAMAR")
    assert refused.value.text == "VOLVER A LLAMAR"
    assert "Estado desconocido" in refused.value.message
    assert "SIN_GESTIONAR" in refused.value.message


def test_an_empty_status_is_refused_as_empty() -> None:
    with pytest.raises(InvalidStatus, match="vacío"):
        normalise_status("  ")


def test_the_key_ignores_accents_case_and_separators() -> None:
    assert status_key(" Sín-gestionár ") == "SIN_GESTIONAR"
    assert status_key("no   contestá") == "NO_CONTESTA"


ACCENTED = {"A": "Á", "E": "É", "I": "Í", "O": "Ó", "U": "Ú"}


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    status = draw(st.sampled_from(STATUSES))
    words = status.code.split("_")
    typed_words = []
    for word in words:
        letters = []
        for letter in word:
            if letter in ACCENTED and draw(st.booleans()):
                letter = ACCENTED[letter]
            letters.append(letter.lower() if draw(st.booleans()) else letter)
        typed_words.append("".join(letters))
    separators = st.text(alphabet=" -_.", min_size=1, max_size=3)
    text = typed_words[0]
    for word in typed_words[1:]:
        text += draw(separators) + word
    padding = st.text(alphabet=" \t", max_size=2)
    return draw(padding) + text + draw(padding), status.code


@settings(max_examples=200)
@given(spellings())
def test_any_case_accent_and_separator_variation_of_a_code_is_accepted(case: tuple[str, str]) -> None:
    typed, code = case
    assert normalise_status(typed) == code


KNOWN_KEYS = {
    status_key(spelling)
    for status in STATUSES
    for spelling in (status.code, status.label_es, status.label_en)
} | {status_key(alias) for alias in LEGACY_ALIASES}


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=20), st.text(alphabet="ABCDEFGINORSTU _-", max_size=20)))
def test_text_that_is_no_known_spelling_is_refused(text: str) -> None:
    if status_key(text) in KNOWN_KEYS:
        assert normalise_status(text) in DEFAULT_CATALOGUE
    else:
        with pytest.raises(InvalidStatus):
            normalise_status(text)


def test_extra_statuses_can_be_added_from_data_without_touching_the_default_catalogue() -> None:
    extra = Status.from_data({"code": "volver_a_llamar", "label_es": "Volver a llamar", "priority": 3.5})
    catalogue = DEFAULT_CATALOGUE.with_statuses(extra, aliases={"RELLAMAR": "VOLVER_A_LLAMAR"})
    assert catalogue.normalise("volver a llamar") == "VOLVER_A_LLAMAR"
    assert catalogue.normalise("Rellamar") == "VOLVER_A_LLAMAR"
    assert catalogue.get("VOLVER_A_LLAMAR").label_en == "Volver a llamar"
    assert catalogue.codes.index("VOLVER_A_LLAMAR") == 3
    with pytest.raises(InvalidStatus):
        DEFAULT_CATALOGUE.normalise("volver a llamar")


def test_a_status_round_trips_through_its_data() -> None:
    status = DEFAULT_CATALOGUE.get("INTERESADO")
    assert Status.from_data(status.to_data()) == status


def test_looking_up_an_unknown_code_is_refused() -> None:
    with pytest.raises(InvalidStatus):
        DEFAULT_CATALOGUE.get("sin gestionar")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Catalogue(statuses=(*STATUSES, Status("NC", "Otra", "Other", 99))),
        lambda: Catalogue(statuses=(*STATUSES, Status("no valido", "x", "x", 99))),
        lambda: Catalogue(aliases={"X": "NADA"}),
        lambda: Catalogue(aliases={"NC": "CUELGA"}),
        lambda: Catalogue(default="NADA"),
        lambda: Catalogue(ageing=(AgeingStep(6, "SIN_RED"), AgeingStep(3, "NO_EXISTE"))),
        lambda: Catalogue(ageing=(AgeingStep(3, "NADA"),)),
        lambda: Catalogue(ageing=(AgeingStep(3, "SIN_RED"), AgeingStep(6, "SIN_RED"))),
    ],
    ids=[
        "duplicate code",
        "bad code",
        "alias to unknown",
        "alias stealing a code",
        "unknown default",
        "unordered ageing",
        "ageing to unknown",
        "ageing repeated",
    ],
)
def test_an_inconsistent_catalogue_is_refused_when_built(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 1, 31, tzinfo=UTC), 1, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 10, 15, 8, 30, tzinfo=UTC), 3, datetime(2026, 1, 15, 8, 30, tzinfo=UTC)),
        (datetime(2025, 5, 31, tzinfo=UTC), 8, datetime(2026, 1, 31, tzinfo=UTC)),
    ],
)
def test_adding_calendar_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


@settings(max_examples=150)
@given(
    st.sampled_from([s.code for s in STATUSES]),
    st.integers(min_value=0, max_value=1200),
    st.integers(min_value=0, max_value=1200),
)
def test_ageing_is_monotonic_in_time(current: str, days_a: int, days_b: int) -> None:
    early, late = sorted((days_a, days_b))
    rank = {step.status: i for i, step in enumerate(DEFAULT_CATALOGUE.ageing)}

    def reached(days: int) -> int:
        target = DEFAULT_CATALOGUE.aged_status(current, T0, T0 + timedelta(days=days))
        return rank.get(target or current, -1)

    assert reached(early) <= reached(late)
    target = DEFAULT_CATALOGUE.aged_status(current, T0, T0 + timedelta(days=late))
    if target is not None:
        assert DEFAULT_CATALOGUE.get(current).ageable
        assert rank[target] > rank.get(current, -1)
        assert DEFAULT_CATALOGUE.aged_status(target, T0, T0 + timedelta(days=late)) is None
