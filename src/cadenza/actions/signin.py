"""Signing in with e-mail and password: throttled per account, bounded in cost.

* **Per account**: after ``FREE_FAILURES`` wrong passwords in a row, each further
  attempt must wait ``retry_delay`` after the last failure, doubling from
  ``FIRST_DELAY`` up to ``MAX_DELAY``. While it waits, even the right password is
  refused (``RateLimited``) without being checked, so guessing gains nothing from
  speed. A success clears the count; a run of failures older than ``FAILURE_MEMORY``
  is forgotten. Accounts are counted by a keyed digest of the address, known or not,
  so the answers do not tell which addresses exist.
* **In cost**: Argon2 is slow on purpose. ``identity.PasswordChecks`` lets a few
  checks run at once and a few more wait; beyond that a sign-in is refused at once,
  so a flood of sign-ins cannot starve the API of CPU or pile up waiting requests.

Per-client (IP) limits belong to the HTTP surface, which knows the client.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cadenza.actions.base import Services
from cadenza.actions.identity import authenticate_password
from cadenza.actions.sessions import IssuedSession, auth_store, start_session
from cadenza.domain import errors
from cadenza.domain.identity import User
from cadenza.keyring import Purpose
from cadenza.ports import LoginFailures

FREE_FAILURES = 5
FIRST_DELAY = timedelta(seconds=2)
MAX_DELAY = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(days=1)


def retry_delay(failures: int) -> timedelta:
    """How long after the last of ``failures`` wrong passwords the next try waits."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES, 20)  # 2 s * 2**20 is far past the cap
    return min(FIRST_DELAY * (1 << doublings), MAX_DELAY)


def retry_at(failures: LoginFailures | None) -> datetime | None:
    """When the account may try again, or ``None`` when it need not wait."""
    if failures is None or failures.count < FREE_FAILURES:
        return None
    return failures.last_failed_at + retry_delay(failures.count)


async def sign_in(services: Services, email: str, password: str) -> tuple[User, IssuedSession]:
    """Check the password (throttled, see the module docstring) and start a session.

    Raises ``AuthenticationFailed`` for an unknown address or a wrong password and
    ``RateLimited`` while the account must wait or too many checks are under way.
    """
    store = auth_store(services)
    account = services.keyring.digest(Purpose.SESSIONS, f"sign-in|{email.strip().lower()}")
    async with services.password_checks.slot():
        now = services.clock.now()
        failures = await store.login_failures(account)
        wait_until = retry_at(failures)
        if wait_until is not None and wait_until > now:
            wait = (wait_until - now).total_seconds()
            raise errors.RateLimited(
                f"Too many wrong passwords for this account; retry in {wait:.0f} s.", wait
            )
        try:
            user = await authenticate_password(services.store, email, password)
        except errors.AuthenticationFailed:
            failed_at = services.clock.now()
            await store.add_login_failure(
                account, failed_at, forget_before=failed_at - FAILURE_MEMORY
            )
            raise
    if failures is not None:
        await store.clear_login_failures(account)
    await store.purge(now, failures_before=now - FAILURE_MEMORY)
    return user, await start_session(services, user)
