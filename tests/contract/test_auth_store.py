"""One contract, three AuthStores: the memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from store_builders import T0, secs

from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.domain import errors
from cadenza.ports import AuthStore, Store, StoredSession
from cadenza.testing import MemoryAuthStore

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)


@pytest.fixture
def auth(store: Store) -> AuthStore:
    """The auth store beside each kind of store: SQL ones share its engine."""
    return SqlAuthStore(store.engine) if isinstance(store, SqlStore) else MemoryAuthStore()


def session(
    session_id: str, user_id: str = "usr_1", *, expires_in: timedelta = DAY
) -> StoredSession:
    return StoredSession(session_id, user_id, f"kid:{session_id}-digest", T0, T0 + expires_in)


async def test_a_session_is_stored_read_back_and_deleted_once(auth: AuthStore) -> None:
    await auth.insert_session(session("ses_a"))
    assert await auth.get_session("ses_a") == session("ses_a")
    assert await auth.get_session("ses_b") is None
    assert await auth.delete_session("ses_a") is True
    assert await auth.delete_session("ses_a") is False
    assert await auth.get_session("ses_a") is None


async def test_a_session_id_is_stored_once(auth: AuthStore) -> None:
    await auth.insert_session(session("ses_a"))
    with pytest.raises(errors.Conflict):
        await auth.insert_session(session("ses_a", "usr_2"))
    stored = await auth.get_session("ses_a")
    assert stored is not None
    assert stored.user_id == "usr_1"


async def test_ending_a_users_sessions_leaves_other_users_signed_in(auth: AuthStore) -> None:
    for sid, user in (("ses_a", "usr_1"), ("ses_b", "usr_1"), ("ses_c", "usr_2")):
        await auth.insert_session(session(sid, user))
    assert await auth.delete_user_sessions("usr_1") == 2
    assert await auth.get_session("ses_a") is None
    assert await auth.get_session("ses_c") is not None


async def test_failures_count_up_and_start_again_after_the_memory_window(
    auth: AuthStore,
) -> None:
    assert await auth.login_failures("acct") is None
    first = await auth.add_login_failure("acct", T0, forget_before=T0 - DAY)
    second = await auth.add_login_failure("acct", T0 + secs(5), forget_before=T0 - DAY)
    assert (first.count, second.count) == (1, 2)
    read = await auth.login_failures("acct")
    assert read is not None
    assert (read.count, read.last_failed_at) == (2, T0 + secs(5))
    later = T0 + 2 * DAY
    again = await auth.add_login_failure("acct", later, forget_before=later - DAY)
    assert (again.count, again.last_failed_at) == (1, later)
    await auth.clear_login_failures("acct")
    assert await auth.login_failures("acct") is None


async def test_concurrent_failures_are_all_counted(auth: AuthStore) -> None:
    await asyncio.gather(
        *(auth.add_login_failure("acct", T0 + secs(i), forget_before=T0 - DAY) for i in range(8))
    )
    counted = await auth.login_failures("acct")
    assert counted is not None
    assert counted.count == 8


async def test_purge_deletes_expired_sessions_and_stale_failures_only(auth: AuthStore) -> None:
    await auth.insert_session(session("ses_old", expires_in=secs(10)))
    await auth.insert_session(session("ses_new", expires_in=DAY))
    await auth.add_login_failure("stale", T0, forget_before=T0 - DAY)
    await auth.add_login_failure("fresh", T0 + secs(30), forget_before=T0 - DAY)
    await auth.purge(T0 + secs(10), failures_before=T0 + secs(20))
    assert await auth.get_session("ses_old") is None
    assert await auth.get_session("ses_new") is not None
    assert await auth.login_failures("stale") is None
    assert await auth.login_failures("fresh") is not None
