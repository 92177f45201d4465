"""ctrl_tcp frames: ``<length>:<payload>,`` in, whole payloads out, however the bytes are split."""

from __future__ import annotations

import pytest

from dialer_agent.netstring import NetstringDecoder, NetstringError, encode_netstring


def test_a_payload_is_framed_with_its_byte_length() -> None:
    assert encode_netstring(b'{"a":1}') == b'7:{"a":1},'
    assert encode_netstring("ñ".encode()) == b"2:\xc3\xb1,"
    assert encode_netstring(b"") == b"0:,"


def test_frames_split_anywhere_are_reassembled_in_order() -> None:
    stream = b"".join(encode_netstring(p) for p in (b"one", b"", b"three:with,colon"))
    for size in range(1, len(stream) + 1):
        decoder = NetstringDecoder()
        got: list[bytes] = []
        for start in range(0, len(stream), size):
            got.extend(decoder.feed(stream[start : start + size]))
        assert got == [b"one", b"", b"three:with,colon"]


@pytest.mark.parametrize("bad", [b"x:abc,", b"3:abcd", b"-1:a,", b"03:abc,"])
def test_garbage_is_an_error_not_a_hang(bad: bytes) -> None:
    with pytest.raises(NetstringError):
        NetstringDecoder().feed(bad)


def test_an_oversized_frame_is_refused() -> None:
    with pytest.raises(NetstringError):
        NetstringDecoder(max_frame_bytes=10).feed(b"11:")
    with pytest.raises(NetstringError):
        NetstringDecoder(max_frame_bytes=10).feed(b"123")
