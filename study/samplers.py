"""Samplers (``conf/sampler/``): how the next trial's parameters are chosen.

Each option is a typed config whose ``_target_`` Hydra instantiates; the worker passes a
seed of its own so that parallel workers do not draw the same points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import optuna
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial

from study._internals import TPESeams


class SamplerOptions(Protocol):
    """A ``sampler=`` option: the sampler class Hydra instantiates (``_target_``) with these
    fields and this worker's seed."""

    _target_: str


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
    enqueued once as WAITING trials when the study is created (:func:`study.setup.prepare_study`);
    PostgreSQL hands each one to exactly one worker under a row lock, and no other trial is ever
    created, so the study ends when the queue is empty. Sampling itself never happens: every
    parameter is fixed by the queue.
    """


#: A finished trial's row in TPE's internal representation; None when it lacks a parameter.
_Row = tuple[float, ...] | None


class TPESampler(TPESeams):
    """Optuna's TPE sampler, drawing the same points, with less repeated work per trial.

    Before each trial TPE converts every trial's parameters to its internal representation,
    for each parameter group and for the trials below and above the split (a tenth of a
    worker's time at 5,000 trials, ``bench/coordination.py``). A finished trial's parameters
    never change, so its row is converted once per group and kept; running trials (the constant
    liar's) are converted each time as Optuna does. The group decomposition is fed each finished
    trial once (:class:`study._internals.IncrementalGroupDecomposition`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[int, _Row]] = {}

    def _row(self, trial: FrozenTrial, search_space: dict[str, Any], study: optuna.Study) -> _Row:
        params = self.trial_params(trial, study)
        if not search_space.keys() <= params.keys():
            return None
        return tuple(d.to_internal_repr(params[name]) for name, d in search_space.items())

    def internal_repr(
        self, trials: list[FrozenTrial], search_space: dict[str, Any], study: optuna.Study
    ) -> dict[str, np.ndarray]:
        key = (study.study_name, tuple(search_space.items()))
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


def build_sampler(cfg: SamplerOptions, seed: int) -> optuna.samplers.BaseSampler:
    """Instantiate the configured sampler with this worker's own seed.

    Optuna's TPE sampler is replaced by :class:`TPESampler`, which draws the same points; the
    configuration (and so a study's recorded settings) still names Optuna's.
    """
    if OmegaConf.select(OmegaConf.structured(cfg), "_target_") == "optuna.samplers.TPESampler":
        cfg = OmegaConf.merge(cfg, {"_target_": f"{__name__}.TPESampler"})
    sampler: optuna.samplers.BaseSampler = instantiate(cfg, seed=seed)
    return sampler


def is_grid(cfg: SamplerOptions) -> bool:
    return isinstance(cfg, GridConfig)
