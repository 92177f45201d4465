"""Netstring framing (``<length>:<bytes>,``) as spoken by baresip's ``ctrl_tcp``."""

from __future__ import annotations

MAX_FRAME_BYTES = 1 << 20


class NetstringError(ValueError):
    """A byte stream that is not a sequence of netstrings."""


def encode_netstring(payload: bytes) -> bytes:
    """Frame ``payload`` as one netstring."""
    return str(len(payload)).encode("ascii") + b":" + payload + b","


class NetstringDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get every complete payload back."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the payloads completed by it, in order."""
        self._buffer.extend(data)
        frames: list[bytes] = []
        while True:
            colon = self._buffer.find(b":")
            if colon < 0:
                if len(self._buffer) > len(str(self._max)):
                    raise NetstringError("longitud de netstring demasiado larga")
                return frames
            digits = bytes(self._buffer[:colon])
            if not digits.isdigit() or (len(digits) > 1 and digits.startswith(b"0")):
                raise NetstringError(f"longitud de netstring no válida: {digits[:20]!r}")
            length = int(digits)
            if length > self._max:
                raise NetstringError(f"netstring de {length} bytes, más que el máximo {self._max}")
            end = colon + 1 + length
            if len(self._buffer) < end + 1:
                return frames
            if self._buffer[end] != ord(","):
                raise NetstringError("falta la coma al final de la netstring")
            frames.append(bytes(self._buffer[colon + 1 : end]))
            del self._buffer[: end + 1]
