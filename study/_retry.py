"""Bounded retries around storage calls, so a database restart costs a wait, not a study."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

from study.errors import StorageError

log = logging.getLogger(__name__)

_TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError)

P = ParamSpec("P")
R = TypeVar("R")


def transient(e: BaseException | None) -> bool:
    """A lost or refused connection, possibly wrapped by Optuna's StorageInternalError."""
    while e is not None:
        if isinstance(e, _TRANSIENT) or (
            isinstance(e, sa.exc.DBAPIError) and e.connection_invalidated
        ):
            return True
        e = e.__cause__
    return False


class Outage:
    """Bounded retry with exponential backoff and jitter, logged once per outage.

    Only storage calls are retried: they either happened or did not, and PostgreSQL rolls back
    a transaction whose connection dropped, so a retry never counts a trial twice. Past the
    window the worker gives up with one line (:class:`StorageError`, exit code 3).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: float | None = None

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        delay = 0.5
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                if not transient(e):
                    raise
                now = time.monotonic()
                if self.started is None:
                    self.started = now
                    log.warning("database unreachable; retrying for up to %.0f s", self.seconds)
                if now - self.started > self.seconds:
                    self.started = None
                    raise StorageError(
                        f"the database stayed unreachable for {self.seconds:.0f} s; start it "
                        "(or raise storage.retry_seconds), then run the same command again"
                    ) from e
                # Jitter: workers that lost the database together do not return in lockstep.
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
                continue
            if self.started is not None:
                log.warning("database back after %.1f s", time.monotonic() - self.started)
                self.started = None
            return result
