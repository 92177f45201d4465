"""Base of the contacts commands and events: a stable type name, a schema version and a JSON codec.

The codec reads the dataclass type hints: ``str``/``int``/``float``/``bool``, ``datetime`` (ISO 8601
strings, naive values read as UTC), enums (their value), nested dataclasses (objects),
``tuple[X, ...]`` (arrays), ``Mapping[str, X]`` (objects) and ``X | None``.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, Generic, Self, TypeVar

JsonDict = dict[str, Any]
T = TypeVar("T")


class Message:
    """A command or event: a frozen dataclass with a stable ``TYPE`` name and a ``SCHEMA_VERSION``."""

    __slots__ = ()
    TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1

    def to_data(self) -> JsonDict:
        """JSON-safe dict of the fields (datetimes as ISO strings, enums as their values)."""
        return encode_dataclass(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild from :meth:`to_data` output; unknown keys are ignored, bad shapes raise ValueError."""
        return decode_dataclass(cls, data)


M = TypeVar("M", bound=Message)
D = TypeVar("D")
R_co = TypeVar("R_co", covariant=True)


class Request(Message, Generic[R_co]):
    """A command or a query: a message that answers ``R_co``; ``RESULT`` says how the answer crosses the
    wire (``contacts.client.ContactsClient``: ``execute`` and ``ask``)."""

    __slots__ = ()
    RESULT: ClassVar[Wire[Any]]

    def result_to_data(self, result: object) -> Any:
        """JSON-safe form of this message's result."""
        return type(self).RESULT.encode(result)

    def result_from_data(self, data: Any) -> R_co:
        """This message's result from :meth:`result_to_data` output."""
        return typing.cast(R_co, type(self).RESULT.decode(data))


def registry(*classes: type[M]) -> Mapping[str, type[M]]:
    """Map each class's ``TYPE`` to the class, refusing empty or repeated names."""
    found: dict[str, type[M]] = {}
    for cls in classes:
        if not cls.TYPE or cls.TYPE in found:
            raise ValueError(f"missing or repeated message type name on {cls.__name__}: {cls.TYPE!r}")
        found[cls.TYPE] = cls
    return types.MappingProxyType(found)


@dataclass(frozen=True, slots=True)
class Wire(Generic[T]):
    """How a command's or a query's result crosses the wire: :func:`data_of` one way, ``decode`` back."""

    decode: Callable[[Any], T]

    def encode(self, value: T) -> Any:
        """JSON-safe form of ``value``."""
        return data_of(value)


def one(decode: Callable[[Mapping[str, Any]], T]) -> Wire[T]:
    """A result that is one object (``decode`` is its ``from_data``)."""
    return Wire(decode)


def optional(decode: Callable[[Mapping[str, Any]], T]) -> Wire[T | None]:
    """A result that is one object or None."""
    return Wire(lambda data: None if data is None else decode(data))


def many(decode: Callable[[Mapping[str, Any]], T]) -> Wire[list[T]]:
    """A result that is a list of objects, in order."""
    return Wire(lambda data: [decode(item) for item in data])


STRINGS: Wire[set[str]] = Wire(lambda data: {str(item) for item in data})
"""A result that is a set of strings (sent sorted)."""
TEXTS: Wire[list[str]] = Wire(lambda data: [str(item) for item in data])
"""A result that is a list of strings, in order."""
FLAG: Wire[bool] = Wire(bool)
"""A result that is true or false."""
NOTHING: Wire[None] = Wire(lambda data: None)
"""No result: the answer is that no error was raised."""
PLAIN: Wire[dict[str, Any]] = Wire(lambda data: dict(data))
"""A result that is already a JSON object of plain values."""


def data_of(value: object) -> Any:
    """JSON-safe form of a result: ``to_data()`` of objects that have it, lists for tuples and lists,
    sorted lists for sets, objects for mappings, ISO strings for datetimes."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    to_data = getattr(value, "to_data", None)
    if callable(to_data):
        return to_data()
    if isinstance(value, set | frozenset):
        return sorted(data_of(item) for item in value)
    if isinstance(value, tuple | list):
        return [data_of(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): data_of(item) for key, item in value.items()}
    return _encode(value)


def decode_message(
    kind: str, types: Mapping[str, type[M]], type_name: str, data: Mapping[str, Any], schema_version: int = 1
) -> M:
    """The ``kind`` (command, query) of ``types`` named ``type_name`` from its data; ValueError for unknown
    types or newer schemas."""
    cls = types.get(type_name)
    if cls is None:
        raise ValueError(f"unknown {kind} type {type_name!r}")
    if schema_version > cls.SCHEMA_VERSION:
        raise ValueError(f"{type_name} schema {schema_version} is newer than {cls.SCHEMA_VERSION}")
    return cls.from_data(data)


def encode_dataclass(value: object) -> JsonDict:
    """JSON-safe dict of a dataclass instance."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"not a dataclass instance: {value!r}")
    return {name: _encode(getattr(value, name)) for name in _field_names(type(value))}


def decode_dataclass(cls: type[D], data: Mapping[str, Any]) -> D:
    """An instance of dataclass ``cls`` from a JSON dict; ValueError naming the field when it does not fit."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for name, where, decode, required in _plan(typing.cast(type, cls)):
        if name in data:
            kwargs[name] = decode(data[name], where)
        elif required:
            raise ValueError(f"{cls.__name__}: missing field {name}")
    return cls(**kwargs)


Decoder = Callable[[Any, str], Any]
_SCALARS = frozenset({str, int, float, bool, type(None)})


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@cache
def _plan(cls: type) -> tuple[tuple[str, str, Decoder, bool], ...]:
    """Per field of ``cls``: name, where (for errors), decoder, and whether it is required.

    Built once per class: reading the type hints for every value cost more than the rest of decoding
    (batches carry thousands of rows).
    """
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            f"{cls.__name__}.{f.name}",
            _decoder(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def _encode(value: object) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode_dataclass(value)
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode(hint: Any, value: Any, where: str) -> Any:
    return _decoder(hint)(value, where)


def _decoder(hint: Any) -> Decoder:
    """The function decoding JSON values of type ``hint`` (``decode(value, where)``)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [arg for arg in args if arg is not type(None)]
        nullable = type(None) in args
        if len(options) != 1:

            def unsupported(value: Any, where: str) -> Any:
                if value is None and nullable:
                    return None
                raise TypeError(f"{where}: unsupported union {hint}")

            return unsupported
        inner = _decoder(options[0])

        def optional(value: Any, where: str) -> Any:
            if value is None and nullable:
                return None
            return inner(value, where)

        return optional
    if origin is tuple:
        item = _decoder(args[0])

        def array(value: Any, where: str) -> Any:
            if not isinstance(value, list | tuple):
                raise ValueError(f"{where}: expected an array")
            return tuple(item(entry, f"{where}[{i}]") for i, entry in enumerate(value))

        return array
    if origin is dict or origin is Mapping:
        member = _decoder(args[1])

        def mapping(value: Any, where: str) -> Any:
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: expected an object")
            return {str(key): member(entry, f"{where}.{key}") for key, entry in value.items()}

        return mapping
    if hint is Any:
        return lambda value, where: value
    if hint in (str, int, float, bool):

        def scalar(value: Any, where: str) -> Any:
            if type(value) is hint:  # exact type: bool is refused as an int, int converted to float
                return value
            return _decode_plain(hint, value, where)

        return scalar
    if isinstance(hint, type):
        return lambda value, where: _decode_plain(hint, value, where)

    def unknown(value: Any, where: str) -> Any:
        raise TypeError(f"{where}: unsupported type {hint}")

    return unknown


def _decode_plain(hint: type, value: Any, where: str) -> Any:
    if issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not a valid {hint.__name__}") from None
    if hint is datetime:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected an ISO 8601 string")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an ISO 8601 date-time") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if dataclasses.is_dataclass(hint):
        return decode_dataclass(hint, value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string")
        return value
    raise TypeError(f"{where}: unsupported type {hint.__name__}")
