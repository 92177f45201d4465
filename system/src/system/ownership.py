"""One owner per data folder: an OS file lock on ``<data dir>/callmanager.lock``, held for a process's life.

The operating system drops the lock when the process ends, however it ends, so a crash never leaves a
stale lock behind. The file also holds the owner's PID (after the locked byte, which Windows will not let
others read) so a refusal can say who holds the folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCK_NAME = "callmanager.lock"
_PID_OFFSET = 16


class FolderInUse(RuntimeError):
    """The data folder is held by another process; ``pid`` names it when it could be read."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        holder = f"el proceso {pid}" if pid else "otro proceso"
        super().__init__(f"La carpeta de datos {folder} está en uso por {holder} (otro CallManager).")


class FolderLock:
    """An exclusive lock on a data folder; released by ``release`` or when the process ends."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the folder up (idempotent)."""
        if self._fd is None:
            return
        _unlock(self._fd)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def hold_folder(folder: Path) -> FolderLock:
    """Take ``folder`` for this process, or raise :class:`FolderInUse` naming the holder's PID."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if not _try_lock(fd):
        pid = _read_pid(fd)
        os.close(fd)
        raise FolderInUse(folder, pid)
    os.lseek(fd, _PID_OFFSET, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode().ljust(16))
    os.fsync(fd)
    return FolderLock(folder, fd)


def folder_holder(folder: Path) -> int | None:
    """The PID holding ``folder``, or None when nobody does (checked by taking the lock for a moment)."""
    try:
        hold_folder(folder).release()
    except FolderInUse as exc:
        return exc.pid or -1
    return None


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, _PID_OFFSET, os.SEEK_SET)
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
