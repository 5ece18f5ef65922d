"""What a worker's sampler and pruner read about the study: Optuna's trial cache, read less often.

Optuna wraps RDBStorage in a trial cache that keeps finished trials but, on every
``get_all_trials``, re-reads the unfinished ones (six queries) and filters and sorts the whole
history again. The sampler and the pruner call it about eight times per trial, so at thousands
of trials this is much of a worker's time between trials (``bench/coordination.py``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import threading
import time
from collections.abc import Callable, Container, Sequence

from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from study._internals import CachedStorageSeams

_QUEUED = frozenset({TrialState.WAITING})


def _spread(queued: list[FrozenTrial]) -> list[FrozenTrial]:
    """The queue as this worker tries to claim it: enqueued points (grid, hand-tuned
    iterations) in their order, then the retries of dead workers' trials in random order.
    Optuna claims the first queued trial it can: when a lost machine leaves a hundred retries,
    every worker trying them in the same order fought over each one in turn (29,000 contended
    state updates for 500 workers in bench/fleet.py)."""
    retries = [t for t in queued if "failed_trial" in t.system_attrs]
    if not retries:
        return queued
    random.shuffle(retries)
    return [t for t in queued if "failed_trial" not in t.system_attrs] + retries


class TrialCache(CachedStorageSeams):
    """Optuna's trial cache for RDBStorage, read less often and sorted once per read.

    A read within ``sync_seconds`` of the last one is served from memory, and each filtered,
    sorted view is kept until the next read. This process's own trial changes still reach the
    next call at once: a new trial is in Optuna's cache already (only the views are dropped), a
    new state makes the next call read.
    """

    def __init__(
        self,
        backend: RDBStorage,
        sync_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(backend)
        self.sync_seconds = sync_seconds
        self.clock = clock
        self._read_at: dict[int, float] = {}
        self._views: dict[tuple[int, frozenset[TrialState] | None], list[FrozenTrial]] = {}
        self._view_lock = threading.Lock()

    def refresh(self, study_id: int) -> None:
        now = self.clock()
        if now - self._read_at.get(study_id, -math.inf) < self.sync_seconds:
            return
        super().refresh(study_id)
        with self._view_lock:
            self._read_at[study_id] = now
        self._drop_views(study_id)

    def _stale(self, study_id: int) -> None:
        with self._view_lock:
            self._read_at.pop(study_id, None)

    def _drop_views(self, study_id: int) -> None:
        with self._view_lock:
            self._views = {k: v for k, v in self._views.items() if k[0] != study_id}

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        self.refresh(study_id)
        wanted = None if states is None else frozenset(s for s in TrialState if s in states)
        key = (study_id, wanted)
        with self._view_lock:
            view = self._views.get(key)
        if view is None:
            view = sorted(
                (t for t in self.cached_trials(study_id) if wanted is None or t.state in wanted),
                key=lambda t: t.number,
            )
            with self._view_lock:
                self._views[key] = view
        if wanted == _QUEUED:
            view = _spread(view)
        return copy.deepcopy(view) if deepcopy else list(view)

    def params_in_one_transaction(self) -> contextlib.AbstractContextManager[None]:
        """The backend's block that writes the parameters drawn in it together, where it has
        one (:meth:`study.rdb.RetryingRDBStorage.params_in_one_transaction`)."""
        batch = getattr(self.backend, "params_in_one_transaction", None)
        return contextlib.nullcontext() if batch is None else batch()

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        self._drop_views(study_id)  # Optuna's cache holds the new trial already: no read needed
        return trial_id

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        try:
            return super().set_trial_state_values(trial_id, state, values)
        finally:  # also when another worker had settled the trial already
            study_id = self.study_of(trial_id)
            if study_id is not None:
                self._stale(study_id)
