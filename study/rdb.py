"""The storage a worker talks to: Optuna's RDBStorage, every call retried through a database
outage, and a new trial created only while the study's budget has room."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Container, Iterator, Sequence
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from study._internals import RDBStorageSeams
from study._retry import Outage
from study.errors import StorageError

log = logging.getLogger(__name__)

#: How many stale trials one look fails (see ``RetryingRDBStorage.stale_trial_ids``).
STALE_PER_CHECK = 4

#: Advisory-lock namespace (first key of pg_advisory_lock(int, int)). The second key is 0 for
#: table and study creation, +study_id for a study's budget, -study_id for its bookkeeping.
LOCK_NAMESPACE = 0x5EED

#: The user attribute that marks a trial a warm start copied from another study: it does not
#: count against the budget, and it is never the trial a study tests or keeps a model of.
COPIED = "copied_from"


class RetryingRDBStorage(RDBStorageSeams):
    """RDBStorage whose calls during a study survive a database restart (:class:`Outage`).

    These are the calls a worker makes while it runs trials, directly or through Optuna's trial
    cache (``read_trials``, ``write_param``, ``best_trial_id``: see :mod:`study._internals`);
    each waits out a lost or refused connection for up to ``storage.retry_seconds``, then gives
    up in one line.
    """

    def __init__(self, url: str, *, retry_seconds: float = 0, **kwargs: Any) -> None:
        self.outage = Outage(retry_seconds)
        try:
            super().__init__(url, **kwargs)
        except BaseException:
            # A start that failed half-way (a full server) must not keep the connections it
            # opened: each retry would hold more of the slots the other workers wait for.
            if hasattr(self, "engine"):
                self.engine.dispose()
            raise
        # Idle pooled connections are closed when the server is full (checked-out ones close
        # when given back): see Outage.release.
        self.outage.release = self.engine.dispose
        self.outage.reset = self.scoped_session.remove
        # Per thread, inside params_in_one_transaction: the parameters drawn, by trial id.
        self._batch = threading.local()

    # -- the study

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        # A retry after a commit that landed unseen meets the study: create_study's
        # load_if_exists takes the DuplicatedStudyError Optuna raises for it.
        return self.outage.call(super().create_new_study, directions, study_name)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.outage.call(super().get_study_id_from_name, study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self.outage.call(super().get_study_name_from_id, study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self.outage.call(super().get_study_directions, study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self.outage.call(super().get_study_user_attrs, study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self.outage.call(super().get_study_system_attrs, study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.outage.call(super().set_study_user_attr, study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.outage.call(super().set_study_system_attr, study_id, key, value)

    # -- its trials

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self.outage.call(super().get_trial, trial_id)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self.outage.call(
            super().get_trial_id_from_study_id_trial_number, study_id, trial_number
        )

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        return self.outage.call(super().get_all_trials, study_id, deepcopy, states)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return self.outage.call(super().get_best_trial, study_id)

    def get_n_trials(
        self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None
    ) -> int:
        return self.outage.call(super().get_n_trials, study_id, state)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        """At most ``STALE_PER_CHECK`` of the stale trials, drawn at random. Every worker looks
        before each trial and fails what it finds: when a machine is lost with many trials,
        every worker fighting over every row (40,000 state updates for 100 trials and 400
        workers in bench/fleet.py) stalls the study; shared out, each is failed once."""
        stale = self.outage.call(super().stale_trial_ids, study_id)
        return random.sample(stale, min(len(stale), STALE_PER_CHECK))

    def read_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        return self.outage.call(
            super().read_trials, study_id, states, included_trial_ids, trial_id_greater_than
        )

    def best_trial_id(self, study_id: int, direction: StudyDirection) -> int:
        return self.outage.call(super().best_trial_id, study_id, direction)

    # -- one trial's updates

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        self.outage.call(
            super().set_trial_param, trial_id, param_name, param_value_internal, distribution
        )

    def write_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        pending = getattr(self._batch, "params", None)
        if pending is not None:  # inside params_in_one_transaction, in this thread
            pending.setdefault(trial_id, []).append(
                (param_name, param_value_internal, distribution, previous_distribution)
            )
            return
        self.outage.call(
            super().write_param,
            trial_id,
            param_name,
            param_value_internal,
            distribution,
            previous_distribution,
        )

    @contextlib.contextmanager
    def params_in_one_transaction(self) -> Iterator[None]:
        """The parameters this thread draws inside the block are written together when it ends,
        one transaction per trial (Optuna writes each in its own: a commit, and its wait for the
        disk, per parameter). They are written also when the block fails part-way, as they would
        have been one by one; a trial trains only after the block, so a worker killed inside it
        leaves no trained trial without its parameters. A parameter the study refuses (its
        distribution changed) fails that write with Optuna's error, and none of the trial's
        parameters is written."""
        self._batch.params = {}
        try:
            yield
        finally:
            batch, self._batch.params = self._batch.params, None
            for trial_id, params in batch.items():
                self.outage.call(super().write_params, trial_id, params)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        return self.outage.call(super().set_trial_state_values, trial_id, state, values)

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        self.outage.call(super().set_trial_intermediate_value, trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.outage.call(super().set_trial_user_attr, trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.outage.call(super().set_trial_system_attr, trial_id, key, value)

    def record_heartbeat(self, trial_id: int) -> None:
        """Called from Optuna's heartbeat thread, which dies at the first exception (with a
        traceback, and its trial then looks dead to the other workers while it trains). A beat
        the database would not take for storage.retry_seconds is skipped in one line; the next
        beat tries again, and if the others took the trial over meanwhile, the trial loop says
        so when it next reports."""
        try:
            self.outage.call(super().record_heartbeat, trial_id)
        except StorageError as e:
            log.warning("heartbeat of trial id %d not recorded: %s", trial_id, e)


#: The failed trials that were put back in the queue: a trial whose number ends another trial's
#: ``retry_history`` (Optuna's retry callback lists the chain of numbers it retried).
RETRIED = (
    "EXISTS (SELECT 1 FROM trial_system_attributes h JOIN trials r ON h.trial_id = r.trial_id"
    " WHERE r.study_id = :s AND h.key = 'retry_history'"
    " AND (CAST(h.value_json AS json) ->> -1) = CAST(t.number AS TEXT))"
)

#: The trials that use the budget. A failed trial does not, when its retry took its place or
#: when it failed for a reason of its own (``fail_reason``: a new trial replaces it). A trial
#: failed as stale (its worker died, or stopped) and not yet retried still does: Optuna fails
#: every stale trial first and retries them after, and a new trial must not take the place in
#: between. Trials a warm start copied never do.
_USED = sa.text(
    "SELECT count(*) FROM trials t WHERE t.study_id = :s"
    " AND NOT EXISTS (SELECT 1 FROM trial_user_attributes c"
    "  WHERE c.trial_id = t.trial_id AND c.key = :copied)"
    " AND (t.state <> 'FAIL' OR ("
    "  NOT EXISTS (SELECT 1 FROM trial_user_attributes f"
    "   WHERE f.trial_id = t.trial_id AND f.key = 'fail_reason')"
    "  AND COALESCE((SELECT json_array_length(CAST(a.value_json AS json))"
    "   FROM trial_system_attributes a WHERE a.trial_id = t.trial_id"
    "   AND a.key = 'retry_history'), 0) < :max_retry"
    f"  AND NOT {RETRIED}))"
)


#: Run first in a transaction that counts with ``_USED`` or ``RETRIED``. PostgreSQL compiles a
#: query to machine code (JIT) when the planner's cost estimate passes ``jit_above_cost``, and
#: these counts' correlated subqueries are estimated as if run for every trial: on a database
#: holding some thousands of trials each count took 180–440 ms to compile, for 1 ms of work,
#: twice per new trial, the second time under the budget's lock. ``SET LOCAL`` lasts to the end
#: of the transaction, so it is safe behind PgBouncer's transaction pooling.
NO_JIT = sa.text("SET LOCAL jit = off")


class BudgetExhausted(optuna.exceptions.OptunaError):
    """No new trial may be created: the study's global budget is spent."""


class BudgetedRDBStorage(RetryingRDBStorage):
    """RDBStorage that creates a new trial only while the study's budget has room.

    ``MaxTrialsCallback`` stops a worker *after* a trial, so N parallel workers overshoot the
    budget by up to N-1 trials. Here the count and the insert happen under one PostgreSQL
    advisory lock, so the budget is exact across workers, machines and restarts. Failed trials do
    not count once retried or replaced (see ``_USED``), nor do trials a warm start copied from
    another study; queued (WAITING) ones do. Trials created from a template (retries, enqueued
    points) are never refused: they were budgeted already.
    """

    def __init__(
        self, url: str, *, new_trial_limit: int | None, max_retry: int = 3, **kwargs: Any
    ) -> None:
        super().__init__(url, **kwargs)
        self.new_trial_limit = new_trial_limit
        self.max_retry = max_retry

    def insert_trial(self, study_id: int, template_trial: FrozenTrial | None) -> FrozenTrial:
        if template_trial is None and self.new_trial_limit is not None:
            # Once the budget is spent every worker still asks (Optuna asks before it looks for
            # stale trials): a count without the study's lock refuses them without queueing
            # them all on it. Below the limit, the locked count below decides.
            used = self.outage.call(self._used, study_id)
            if used >= self.new_trial_limit:
                raise BudgetExhausted(f"{used} of {self.new_trial_limit} trials used")
        return self.outage.call(super().insert_trial, study_id, template_trial)

    def _used(self, study_id: int) -> int:
        with self.engine.connect() as conn:
            params = {"s": study_id, "copied": COPIED, "max_retry": self.max_retry}
            conn.execute(NO_JIT)
            return int(conn.execute(_USED, params).scalar_one())

    def after_insert(self, trial_id: int, template_trial: FrozenTrial | None, session: Any) -> None:
        """A new running trial has its first heartbeat from the transaction that creates it.
        Otherwise a trial whose insert committed while its worker saw the connection drop (and
        so inserted another) would never have a heartbeat, never look stale, and stay RUNNING:
        every drained worker would wait for it forever."""
        if template_trial is None and self.heartbeat_interval:
            session.execute(
                sa.text("INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES (:t, now())"),
                {"t": trial_id},
            )

    def before_insert(
        self, study_id: int, template_trial: FrozenTrial | None, session: Any
    ) -> None:
        """Count the study's trials under its budget lock, in the transaction that inserts.

        This runs in every attempt: a failed attempt's rollback releases the lock, so a retry
        takes it again and counts again rather than insert on the first attempt's count."""
        if template_trial is not None or self.new_trial_limit is None:
            return
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": LOCK_NAMESPACE, "b": study_id}
        )
        session.execute(NO_JIT)
        used = session.execute(
            _USED, {"s": study_id, "copied": COPIED, "max_retry": self.max_retry}
        ).scalar_one()
        if used >= self.new_trial_limit:
            # Optuna rolls the attempt back (releasing the lock) and does not retry this error.
            raise BudgetExhausted(f"{used} of {self.new_trial_limit} trials used")
