"""SQLite's hot writer: a claim's or a completion's statements as one transaction, run
whole on a thread of its own, committed together or not at all."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cadenza.adapters.store.dialect import Batch, Fetch, Sql, Staged, Steps, Write
from cadenza.adapters.store.sqlite import HotWriter, pragmas

pytestmark = pytest.mark.anyio

_UNSTAGED = Staged("unused", (), (), "")
"""SQLite never reads a batch's PostgreSQL form."""
_INSERT = Batch("INSERT INTO t (x) VALUES (?)", _UNSTAGED)


class Refused(Exception):
    pass


def _database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    pragmas(conn)
    conn.execute("CREATE TABLE t (x TEXT NOT NULL)")
    conn.close()


def _rows(path: Path) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT x FROM t ORDER BY x").fetchall()
    finally:
        conn.close()


def _insert_then(values: list[str], fail: bool, threads: list[str]) -> Steps[int]:
    """Insert ``values``, then count the table's rows (inside the transaction)."""
    changed: int = yield Write(_INSERT, [(v,) for v in values])
    assert changed == len(values)
    threads.append(threading.current_thread().name)
    counted: list[Any] = yield Fetch(Sql("SELECT count(*) FROM t", ""), ())
    threads.append(threading.current_thread().name)
    if fail:
        raise Refused
    return int(counted[0][0])


async def test_the_steps_commit_together_on_the_writers_thread(tmp_path: Path) -> None:
    path = tmp_path / "hot.db"
    _database(path)
    writer = HotWriter(path)
    threads: list[str] = []
    try:
        assert await writer.run(_insert_then(["a", "b"], False, threads)) == 2
    finally:
        await writer.close()
    assert _rows(path) == [("a",), ("b",)]
    assert len(threads) == 2
    assert all(name.startswith("cadenza-sqlite-hot") for name in threads)
    assert threading.current_thread().name not in threads


async def test_steps_that_raise_leave_nothing_and_the_writer_usable(tmp_path: Path) -> None:
    path = tmp_path / "hot.db"
    _database(path)
    writer = HotWriter(path)
    try:
        with pytest.raises(Refused):
            await writer.run(_insert_then(["lost"], True, []))
        assert _rows(path) == []
        assert await writer.run(_insert_then(["kept"], False, [])) == 1
    finally:
        await writer.close()
    assert _rows(path) == [("kept",)]


async def test_a_transaction_waits_for_another_process_writer(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE queues on SQLite's lock (the busy timeout) instead of failing."""
    path = tmp_path / "hot.db"
    _database(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (x) VALUES ('first')")
    writer = HotWriter(path)
    try:
        pending = asyncio.ensure_future(writer.run(_insert_then(["second"], False, [])))
        await asyncio.sleep(0.2)
        assert not pending.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(pending, 10) == 2  # 'first' and 'second'
    finally:
        other.close()
        await writer.close()
    assert _rows(path) == [("first",), ("second",)]


def _deferred_orphan() -> Steps[None]:
    """A row whose deferred foreign key fails only at COMMIT."""
    yield Write(Batch("INSERT INTO child (parent) VALUES (?)", _UNSTAGED), [("nobody",)])


async def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / "hot.db"
    _database(path)
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE parent (id TEXT PRIMARY KEY)")
    setup.execute(
        "CREATE TABLE child (parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    setup.close()
    writer = HotWriter(path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            await writer.run(_deferred_orphan())
        assert await writer.run(_insert_then(["after"], False, [])) == 1
    finally:
        await writer.close()
        await writer.close()  # a second close is a no-op
    assert _rows(path) == [("after",)]


def _insert_when(gate: threading.Event, entered: threading.Event) -> Steps[None]:
    yield Write(_INSERT, [("abandoned",)])
    entered.set()
    assert gate.wait(10)


async def test_a_cancelled_caller_commits_nothing(tmp_path: Path) -> None:
    """A claim whose caller is gone must leave no leases that no one will run."""
    path = tmp_path / "hot.db"
    _database(path)
    writer = HotWriter(path)
    gate, entered = threading.Event(), threading.Event()
    try:
        pending = asyncio.ensure_future(writer.run(_insert_when(gate, entered)))
        assert await asyncio.to_thread(entered.wait, 10)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        gate.set()
        assert await writer.run(_insert_then(["next"], False, [])) == 1
    finally:
        gate.set()
        await writer.close()
    assert _rows(path) == [("next",)]
