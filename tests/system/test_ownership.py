"""One owner per data folder: a second `up`, a restore, `migrate` and `rebuild-contacts` are refused while
`callmanager up` runs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from system.cli import app
from system.ownership import FolderInUse, folder_holder, hold_folder
from tests.support.servers import clean_env, free_port, start, start_embedded


def count_events(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    conn.close()
    return count


def test_second_up_and_restore_are_refused_while_up_holds_the_folder(tmp_path: Path) -> None:
    server = start_embedded(tmp_path)
    try:
        pid = server.process.popen.pid
        assert folder_holder(server.data_dir) == pid

        second = start(
            "second-up",
            ["up", "--no-client", "--port", str(free_port()), "--data-dir", str(server.data_dir)],
            clean_env(),
            tmp_path,
        )
        assert second.popen.wait(timeout=30) == 2
        refusal = second.stop()
        assert "está en uso" in refusal
        assert str(pid) in refusal

        backup = CliRunner().invoke(app, ["backup", "--data-dir", str(server.data_dir)])
        assert backup.exit_code == 0, backup.output
        copy = next((server.data_dir / "backups").glob("callmanager-*.db"))
        restore = CliRunner().invoke(app, ["restore", str(copy), "--data-dir", str(server.data_dir), "--yes"])
        assert restore.exit_code == 1
        assert str(pid) in restore.output
        assert "Deténgalo" in restore.output
        assert not list(server.data_dir.glob("callmanager.db.before-restore-*"))

        # Rewriting the database under the running server is refused the same way.
        for command in (["migrate"], ["rebuild-contacts"]):
            refused = CliRunner().invoke(app, [*command, "--data-dir", str(server.data_dir)])
            assert refused.exit_code == 1, refused.output
            assert str(pid) in refused.output
            assert "Deténgalo" in refused.output
    finally:
        server.process.stop()

    assert folder_holder(server.data_dir) is None
    events_before = count_events(server.data_dir / "callmanager.db")
    restore = CliRunner().invoke(app, ["restore", str(copy), "--data-dir", str(server.data_dir), "--yes"])
    assert restore.exit_code == 0, restore.output
    kept = list(server.data_dir.glob("callmanager.db.before-restore-*"))
    assert len(kept) == 1
    assert count_events(kept[0]) == events_before
    assert f"callmanager restore {kept[0]}" in " ".join(restore.output.split())


def test_the_lock_goes_with_its_holder(tmp_path: Path) -> None:
    with hold_folder(tmp_path), pytest.raises(FolderInUse, match=str(os.getpid())):
        hold_folder(tmp_path)
    assert folder_holder(tmp_path) is None
