"""Samplers (``conf/sampler/``): how the next trial's parameters are chosen.

Each option is a typed config whose ``_target_`` Hydra instantiates; the worker passes a
seed of its own so that parallel workers do not draw the same points.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace, _SearchSpaceGroup
from optuna.trial import FrozenTrial, TrialState


@dataclass
class TPEConfig:
    _target_: str = "optuna.samplers.TPESampler"
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = True
    # Groups the conditional parameter (dropout only for stacked networks) with its parents.
    group: bool = True
    # Running trials count as "lies" so parallel workers spread out instead of piling up.
    constant_liar: bool = True


@dataclass
class RandomConfig:
    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class GPConfig:
    _target_: str = "optuna.samplers.GPSampler"
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class GridConfig:
    _target_: str = "study.samplers.GridSearch"


class GridSearch(optuna.samplers.RandomSampler):
    """Grid search that never runs a point twice, however many workers share the study.

    Optuna's ``GridSampler`` lets parallel processes draw the same point. Instead, the grid is
    enqueued once as WAITING trials when the study is created (:func:`study.storage.prepare_study`);
    PostgreSQL hands each one to exactly one worker under a row lock, and no other trial is ever
    created, so the study ends when the queue is empty. Sampling itself never happens: every
    parameter is fixed by the queue.
    """


class _IncrementalGroups(_GroupDecomposedSearchSpace):
    """TPE's ``group=True`` decomposition, fed each finished trial once.

    Optuna's version merges the distributions of every finished trial again before each trial
    (O(trials) set work per sample, a sixth of a worker's time at 5,000 trials). A finished
    trial's distributions never change and merging is idempotent and order-free, so adding only
    the trials not seen before gives the same groups.
    """

    def __init__(self, include_pruned: bool) -> None:
        super().__init__(include_pruned)
        self._seen: set[int] = set()

    def calculate(self, study: optuna.Study, use_cache: bool = False) -> _SearchSpaceGroup:
        if self._study_id is None:
            self._study_id = study._study_id
        elif self._study_id != study._study_id:
            raise ValueError("one sampler serves one study")
        states = (TrialState.COMPLETE, TrialState.PRUNED)[: 2 if self._include_pruned else 1]
        for trial in study._get_trials(deepcopy=False, states=states, use_cache=use_cache):
            if trial.number not in self._seen:
                self._seen.add(trial.number)
                self._search_space.add_distributions(trial.distributions)
        return copy.deepcopy(self._search_space)


#: A finished trial's row in TPE's internal representation; None when it lacks a parameter.
_Row = tuple[float, ...] | None


class TPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE sampler, drawing the same points, with less repeated work per trial.

    Before each trial TPE converts every trial's parameters to its internal representation,
    for each parameter group and for the trials below and above the split (a tenth of a
    worker's time at 5,000 trials, ``bench/coordination.py``). A finished trial's parameters
    never change, so its row is converted once per group and kept; running trials (the constant
    liar's) are converted each time as Optuna does. The group decomposition is fed each finished
    trial once (:class:`_IncrementalGroups`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        groups = self._group_decomposed_search_space
        if groups is not None:
            self._group_decomposed_search_space = _IncrementalGroups(groups._include_pruned)
        self._rows: dict[tuple[int, tuple[tuple[str, Any], ...]], dict[int, _Row]] = {}

    def _row(self, trial: FrozenTrial, search_space: dict[str, Any], study: optuna.Study) -> _Row:
        params = self._get_params(trial, study)
        if not search_space.keys() <= params.keys():
            return None
        return tuple(d.to_internal_repr(params[name]) for name, d in search_space.items())

    def _get_internal_repr(
        self, trials: list[FrozenTrial], search_space: dict[str, Any], study: optuna.Study
    ) -> dict[str, np.ndarray]:
        key = (study._study_id, tuple(search_space.items()))
        if key not in self._rows and len(self._rows) >= 16:  # search spaces seen long ago
            self._rows.clear()
        known = self._rows.setdefault(key, {})
        rows = []
        for trial in trials:
            finished = trial.state.is_finished()
            row = known.get(trial.number, _UNSEEN) if finished else _UNSEEN
            if row is _UNSEEN:
                row = self._row(trial, search_space, study)
                if finished:
                    known[trial.number] = row
            if row is not None:
                rows.append(row)
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in search_space]
        return dict(zip(search_space, map(np.asarray, columns), strict=True))


_UNSEEN: Any = object()


def build_sampler(cfg: Any, seed: int) -> optuna.samplers.BaseSampler:
    """Instantiate the configured sampler with this worker's own seed.

    Optuna's TPE sampler is replaced by :class:`TPESampler`, which draws the same points; the
    configuration (and so a study's recorded settings) still names Optuna's.
    """
    if OmegaConf.select(OmegaConf.structured(cfg), "_target_") == "optuna.samplers.TPESampler":
        cfg = OmegaConf.merge(cfg, {"_target_": f"{__name__}.TPESampler"})
    sampler: optuna.samplers.BaseSampler = instantiate(cfg, seed=seed)
    return sampler


def is_grid(cfg: Any) -> bool:
    return isinstance(cfg, GridConfig)
