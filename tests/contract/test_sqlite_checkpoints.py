"""SQLite checkpoints run in the background, not inside the commits that cross a size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cadenza.adapters.store.sqlite import CHECKPOINT_EVERY, Checkpointer

pytestmark = pytest.mark.anyio


def _wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies pages back
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,) for _ in range(200)])
    return conn


async def test_every_few_commits_the_wal_is_copied_back_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = _wal_database(path)
    before = path.stat().st_size
    checkpointer = Checkpointer(path)
    for _ in range(CHECKPOINT_EVERY):
        checkpointer.committed()
    await checkpointer.close()  # waits for the checkpoint it started
    assert path.stat().st_size > before + 150_000
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (200,)
    writer.close()


async def test_fewer_commits_start_no_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = _wal_database(path)
    before = path.stat().st_size
    checkpointer = Checkpointer(path)
    for _ in range(CHECKPOINT_EVERY - 1):
        checkpointer.committed()
    await checkpointer.close()
    assert path.stat().st_size == before
    writer.close()
