"""Bounded retries around storage calls, so a database restart costs a wait, not a study."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

from study.errors import StorageError

log = logging.getLogger(__name__)

_TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError)

#: The server (or PgBouncer in front of it) has no connection slot to give: weather, not a bug.
_FULL = (
    "too many clients",  # PostgreSQL: max_connections reached
    "remaining connection slots are reserved",  # ... but for superusers and replication
    "too many connections for",  # a role's or a database's CONNECTION LIMIT
    "no more connections allowed",  # PgBouncer: max_client_conn reached
    "query_wait_timeout",  # PgBouncer: no server connection came free in time
    "the database system is starting up",
)
#: Connection failures that waiting does not fix: the URL or the credentials are wrong.
_PERMANENT = (
    "password authentication failed",
    "no password supplied",
    "does not exist",  # the database or the role
    "no pg_hba.conf entry",
)

P = ParamSpec("P")
R = TypeVar("R")


def causes(e: BaseException | None) -> list[BaseException]:
    """``e`` and the exceptions it was raised from (Optuna wraps SQLAlchemy's, which wraps
    psycopg2's)."""
    chain = []
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__
    return chain


def _says(e: BaseException | None, phrases: tuple[str, ...]) -> bool:
    return any(p in str(x) for x in causes(e) for p in phrases)


def full(e: BaseException | None) -> bool:
    """The database refused a connection because it has no slot free (max_connections, or
    PgBouncer's limits): worth waiting for, at start-up too."""
    return _says(e, _FULL)


def transient(e: BaseException | None) -> bool:
    """A lost, refused or full connection, possibly wrapped by Optuna's StorageInternalError;
    not a wrong URL, password or database name, which no wait fixes."""
    if _says(e, _PERMANENT):
        return False
    return any(
        isinstance(x, _TRANSIENT)
        or (isinstance(x, sa.exc.DBAPIError) and x.connection_invalidated)
        # A session whose connection dropped mid-transaction, until it is rolled back.
        or isinstance(x, sa.exc.PendingRollbackError)
        for x in causes(e)
    )


def gave_up(seconds: float | None, e: BaseException) -> StorageError:
    """The one line a command ends with when the database stayed out of reach too long
    (``seconds``; None where nothing waited)."""
    waited = "" if seconds is None else f" for {seconds:.0f} s"
    if full(e):
        return StorageError(
            f"the database had no free connection{waited} (its max_connections, or PgBouncer's "
            "pool, is used up); raise max_connections, run fewer workers, or connect through "
            "PgBouncer (README: Many machines), then run the same command again"
        )
    return StorageError(
        f"the database stayed unreachable{waited}; start it (or raise storage.retry_seconds), "
        "then run the same command again"
    )


_full_said = False


def _full_level() -> int:
    """WARNING the first time this process finds the server full, DEBUG after."""
    global _full_said
    level = logging.DEBUG if _full_said else logging.WARNING
    _full_said = True
    return level


class _Window(threading.local):
    """One thread's current outage: when it began (None when there is none), and the level it
    is logged at. Per thread, because a worker's trial loop and its heartbeat thread share one
    storage: one thread's success must not end the other's outage, nor one thread's old outage
    make the other's first refusal look 120 s long."""

    started: float | None = None
    level: int = logging.WARNING


class Outage:
    """Bounded retry with exponential backoff and jitter, logged once per outage (and a full
    server once per process: a fleet bigger than its slots meets it often, briefly).

    Only storage calls are retried: they either happened or did not, and PostgreSQL rolls back
    a transaction whose connection dropped, so a retry never counts a trial twice. Past the
    window the worker gives up with one line (:class:`StorageError`, exit code 3).
    """

    def __init__(self, seconds: float, retry: Callable[[BaseException], bool] = transient) -> None:
        self.seconds = seconds
        self.window = _Window()
        #: Which errors are waited out (``full`` alone at start-up, where a refused connection
        #: more likely means a wrong URL than a restart).
        self.retry = retry
        #: Called when the server is found full: give back this process's idle connections, so
        #: that workers waiting on each other's idle connections cannot wait forever.
        self.release: Callable[[], None] | None = None
        #: Called before each retry: drop this thread's session, which a connection lost in
        #: the middle of a transaction leaves unusable until it is rolled back.
        self.reset: Callable[[], None] | None = None

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        delay = 0.5
        window = self.window
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                if not self.retry(e):
                    raise
                now = time.monotonic()
                if full(e) and self.release is not None:
                    self.release()
                if self.reset is not None:
                    self.reset()
                if window.started is None:
                    window.started = now
                    window.level = _full_level() if full(e) else logging.WARNING
                    log.log(
                        window.level,
                        "database %s; retrying for up to %.0f s",
                        "full (no free connection: max_connections)" if full(e) else "unreachable",
                        self.seconds,
                    )
                if now - window.started > self.seconds:
                    window.started = None
                    raise gave_up(self.seconds, e) from e
                # Jitter: workers that lost the database together do not return in lockstep.
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
                continue
            if window.started is not None:
                log.log(
                    window.level, "database back after %.1f s", time.monotonic() - window.started
                )
                window.started = None
            return result
