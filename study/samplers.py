"""Samplers (``conf/sampler/``): how the next trial's parameters are chosen.

Each option is a typed config whose ``_target_`` Hydra instantiates; the worker passes a
seed of its own so that parallel workers do not draw the same points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from hydra.utils import instantiate


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


def build_sampler(cfg: Any, seed: int) -> optuna.samplers.BaseSampler:
    """Instantiate the configured sampler with this worker's own seed."""
    sampler: optuna.samplers.BaseSampler = instantiate(cfg, seed=seed)
    return sampler


def is_grid(cfg: Any) -> bool:
    return isinstance(cfg, GridConfig)
