"""The end of a worker's budget: waiting for the trials still running elsewhere.

Kept apart from :mod:`study.loop` (which brings torch) so that ``bench/fleet.py``'s virtual
workers wait exactly as real ones do.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from study.rdb import BudgetedRDBStorage
from study.storage import trial_counts

log = logging.getLogger(__name__)

#: A drained worker looks again after this share of the time it has waited so far ...
BACKOFF = 0.1
#: ... but not sooner than this (seconds), nor later than the heartbeat interval.
POLL_SECONDS = 1.0


@dataclass
class Drain:
    """After the budget is spent: wait until no trial is queued or running elsewhere.

    A running trial may belong to a worker that died; waiting lets this worker fail it once
    its heartbeat is stale and run the retry, so no study ends with a trial left RUNNING. The
    running trials are counted (one small query) after a tenth of the time waited so far,
    between 1 s and the heartbeat interval, with jitter: a small study's last worker leaves
    about a tenth of its wait after the end (2 s after 20 s), and a fleet's hundreds of
    drained workers, waiting minutes for the last trials, do not poll the database every
    second. Every heartbeat interval the worker goes back to Optuna, which fails the stale
    ones.
    """

    storage: BudgetedRDBStorage
    study_id: int
    stop: threading.Event
    alive: Callable[[], None]
    last_seen: int = 0
    #: When this worker found the budget spent with trials still running (None: not waiting).
    waiting_since: float | None = None
    jitter: random.Random = field(default_factory=random.Random)

    def settled(self) -> bool:
        """True when nothing is left to run (or a stop came); False when Optuna should look:
        a trial is queued, or a heartbeat interval passed while trials ran elsewhere."""
        started = time.monotonic()
        heartbeat = self.storage.heartbeat_interval or 1
        while True:
            counts = self.storage.outage.call(trial_counts, self.storage, self.study_id)
            if counts["WAITING"]:
                self.waiting_since = None
                return False
            if not counts["RUNNING"]:
                return True
            if counts["RUNNING"] != self.last_seen:
                log.info("waiting for %d running trial(s) elsewhere to finish", counts["RUNNING"])
                self.last_seen = counts["RUNNING"]
            self.alive()
            now = time.monotonic()
            if now - started >= heartbeat:
                return False
            if self.waiting_since is None:
                self.waiting_since = now
            if self.stop.wait(self.pause(now - self.waiting_since, heartbeat)):
                return True  # a stop ends the wait

    def pause(self, waited: float, heartbeat: float) -> float:
        """Seconds until the next look: a tenth of the time waited, within [1 s, heartbeat],
        give or take a fifth (drained workers of a fleet do not look all at once)."""
        base = min(max(BACKOFF * waited, POLL_SECONDS), heartbeat)
        return base * self.jitter.uniform(0.8, 1.2)
