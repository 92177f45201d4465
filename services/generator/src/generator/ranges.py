"""Costa Rican mobile operators and the number ranges the generator draws from, as data.

Every range is a set of 8-digit national numbers that libphonenumber (``phonenumbers``) classifies as a
valid MOBILE number whose carrier is the operator's (``tests/generator/test_ranges.py`` walks every
1,000-number block to prove it). Facts behind the ranges: ``/work/shared/COSTA_RICA.md``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType

NATIONAL_DIGITS = 8
COUNTRY_CODE = "506"
_LOWEST = 10 ** (NATIONAL_DIGITS - 1)
_HIGHEST = 10**NATIONAL_DIGITS


@dataclass(frozen=True)
class Operator:
    """A mobile operator: stable code, display name, and libphonenumber's English carrier name."""

    code: str
    name: str
    carrier: str


@dataclass(frozen=True)
class Interval:
    """The national numbers ``start <= n < end`` (8 digits, no leading zero)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not _LOWEST <= self.start < self.end <= _HIGHEST:
            raise ValueError(f"not an interval of 8-digit numbers: [{self.start}, {self.end})")

    @classmethod
    def from_prefix(cls, prefix: str) -> Interval:
        """All 8-digit numbers that begin with ``prefix``."""
        if not prefix.isdigit() or not 1 <= len(prefix) <= NATIONAL_DIGITS or prefix[0] == "0":
            raise ValueError(f"not a national number prefix: {prefix!r}")
        scale = 10 ** (NATIONAL_DIGITS - len(prefix))
        start = int(prefix) * scale
        return cls(start, start + scale)

    @property
    def size(self) -> int:
        """How many numbers the interval holds."""
        return self.end - self.start


def _subtract(intervals: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus ``holes``, sorted and with touching pieces merged."""
    pieces = sorted((i.start, i.end) for i in intervals)
    for hole in sorted(holes, key=lambda h: h.start):
        cut: list[tuple[int, int]] = []
        for start, end in pieces:
            if hole.end <= start or end <= hole.start:
                cut.append((start, end))
                continue
            if start < hole.start:
                cut.append((start, hole.start))
            if hole.end < end:
                cut.append((hole.end, end))
        pieces = cut
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return [Interval(start, end) for start, end in merged]


@dataclass(frozen=True)
class OperatorRanges:
    """One operator's drawable numbers: sorted, disjoint intervals, indexed 0..size-1 for a uniform draw."""

    operator: Operator
    intervals: tuple[Interval, ...]
    size: int = field(init=False)
    _bounds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _shifts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ValueError(f"{self.operator.code} has no ranges")
        for before, after in pairwise(self.intervals):
            if after.start < before.end:
                raise ValueError(f"{self.operator.code}: ranges must be sorted and disjoint")
        offsets = [0]
        for interval in self.intervals:
            offsets.append(offsets[-1] + interval.size)
        object.__setattr__(self, "size", offsets[-1])
        object.__setattr__(self, "_bounds", tuple(offsets[1:-1]))
        object.__setattr__(
            self, "_shifts", tuple(i.start - o for i, o in zip(self.intervals, offsets, strict=False))
        )

    @classmethod
    def from_prefixes(
        cls, operator: Operator, include: Iterable[str], exclude: Iterable[str] = ()
    ) -> OperatorRanges:
        """The numbers beginning with any ``include`` prefix and with no ``exclude`` prefix."""
        intervals = _subtract(map(Interval.from_prefix, include), map(Interval.from_prefix, exclude))
        return cls(operator, tuple(intervals))

    def number_at(self, index: int) -> int:
        """The ``index``-th number of the operator's ranges (0 <= index < size)."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        return index + self._shifts[bisect_right(self._bounds, index)]

    def texts_at(self, indexes: Sequence[int]) -> list[str]:
        """The 8-digit national numbers at ``indexes`` (all within 0..size-1), in the same order."""
        if len(self._shifts) == 1:
            shift = self._shifts[0]
            return [str(i + shift) for i in indexes]
        bounds, shifts = self._bounds, self._shifts
        return [str(i + shifts[bisect_right(bounds, i)]) for i in indexes]

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        return any(i.start <= number < i.end for i in self.intervals)


@dataclass(frozen=True)
class Catalogue:
    """The operators a draw can choose from, in a fixed order (the order ``simple`` spreads remainders in)."""

    ranges: tuple[OperatorRanges, ...]

    def __post_init__(self) -> None:
        codes = [r.operator.code for r in self.ranges]
        if not codes or len(set(codes)) != len(codes):
            raise ValueError("a catalogue needs operators with distinct codes")
        every = sorted((i.start, i.end) for r in self.ranges for i in r.intervals)
        if any(b[0] < a[1] for a, b in pairwise(every)):
            raise ValueError("operators' ranges must not overlap")

    @property
    def operators(self) -> tuple[Operator, ...]:
        """The operators in catalogue order."""
        return tuple(r.operator for r in self.ranges)

    @property
    def codes(self) -> tuple[str, ...]:
        """The operators' codes in catalogue order."""
        return tuple(r.operator.code for r in self.ranges)

    @property
    def size(self) -> int:
        """How many distinct numbers all operators together hold."""
        return sum(r.size for r in self.ranges)

    def ranges_for(self, code: str) -> OperatorRanges:
        """The ranges of the operator with ``code`` (KeyError if unknown)."""
        for r in self.ranges:
            if r.operator.code == code:
                return r
        raise KeyError(code)

    def operator_of(self, number: int) -> Operator | None:
        """The operator whose ranges hold ``number``, if any."""
        for r in self.ranges:
            if number in r:
                return r.operator
        return None


KOLBI = Operator("kolbi", "Kölbi", "Kolbi ICE")
# Liberty bought Telefónica's Costa Rican business; libphonenumber still calls the carrier "Movistar".
TELEFONICA = Operator("telefonica", "Telefónica", "Movistar")
CLARO = Operator("claro", "Claro", "Claro")

COSTA_RICA = Catalogue(
    (
        # libphonenumber also gives Kölbi 3005xxxx (10,000 numbers); PRODUCT.md lists only 83–89, 50 and 57,
        # so 3005 is left out.
        OperatorRanges.from_prefixes(KOLBI, ("50", "57", "83", "84", "85", "86", "87", "88", "89")),
        # libphonenumber also gives Movistar 65000xxx and 65001xxx; PRODUCT.md lists 60–64 only.
        OperatorRanges.from_prefixes(TELEFONICA, ("60", "61", "62", "63", "64")),
        # 70015xxx–70019xxx are valid mobile numbers with no carrier in libphonenumber, so they are left out.
        OperatorRanges.from_prefixes(
            CLARO,
            ("70", "71", "72", "7300", "7301"),
            exclude=("70015", "70016", "70017", "70018", "70019"),
        ),
    )
)

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {KOLBI.code: 40.0, TELEFONICA.code: 35.0, CLARO.code: 25.0}
)
