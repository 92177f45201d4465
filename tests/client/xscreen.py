"""A virtual X display for GUI tests (an ``Xvfb`` subprocess) and PNG screenshots of it through libX11 with
ctypes and zlib, so neither ImageMagick nor Pillow is needed."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path


class Xvfb:
    """``Xvfb :N`` on a free display number; ``display`` is the value for ``DISPLAY``."""

    def __init__(self, width: int = 1366, height: int = 800) -> None:
        self.size = (width, height)
        self.process: subprocess.Popen[bytes] | None = None
        self.display = ""

    @staticmethod
    def available() -> bool:
        return shutil.which("Xvfb") is not None

    def start(self) -> Xvfb:
        for number in range(90, 140):
            if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
                continue
            process = subprocess.Popen(
                [
                    "Xvfb",
                    f":{number}",
                    "-screen",
                    "0",
                    f"{self.size[0]}x{self.size[1]}x24",
                    "-nolisten",
                    "tcp",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                if Path(f"/tmp/.X11-unix/X{number}").exists():
                    self.process = process
                    self.display = f":{number}"
                    time.sleep(0.2)
                    return self
                time.sleep(0.05)
            process.kill()
            process.wait()
        raise RuntimeError("Xvfb did not start on any display :90-:139")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class _XImage(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
        ("red_mask", ctypes.c_ulong),
        ("green_mask", ctypes.c_ulong),
        ("blue_mask", ctypes.c_ulong),
    ]


def _png(width: int, height: int, rgb_rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + row for row in rgb_rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def screenshot(path: Path, display: str, box: tuple[int, int, int, int] | None = None) -> Path:
    """Save the screen (or ``box`` = x, y, width, height) of ``display`` as a PNG."""
    name = ctypes.util.find_library("X11")
    if name is None:
        raise RuntimeError("libX11 not found")
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XGetImage.restype = ctypes.POINTER(_XImage)
    x11.XGetImage.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_ulong,
        ctypes.c_int,
    ]
    x11.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XFree.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        raise RuntimeError(f"cannot open display {display}")
    try:
        if box is None:
            box = (0, 0, x11.XDisplayWidth(handle, 0), x11.XDisplayHeight(handle, 0))
        x, y, width, height = box
        image = x11.XGetImage(handle, x11.XDefaultRootWindow(handle), x, y, width, height, 0xFFFFFFFF, 2)
        if not image:
            raise RuntimeError("XGetImage failed")
        info = image.contents
        if info.bits_per_pixel != 32:
            raise RuntimeError(f"unsupported {info.bits_per_pixel} bits per pixel")
        data = ctypes.string_at(info.data, info.bytes_per_line * height)
        rows = []
        for row in range(height):
            line = data[row * info.bytes_per_line : row * info.bytes_per_line + width * 4]
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = line[2::4], line[1::4], line[0::4]
            rows.append(bytes(rgb))
        x11.XFree(info.data)
        x11.XFree(ctypes.cast(image, ctypes.c_void_p))
    finally:
        x11.XCloseDisplay(handle)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png(width, height, rows))
    return path


def use_display(display: str) -> None:
    """Point this process (Tk) at ``display``."""
    os.environ["DISPLAY"] = display
