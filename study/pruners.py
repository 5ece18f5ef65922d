"""Pruners (``conf/pruner/``): which trials stop early after an epoch's validation loss."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from hydra.utils import instantiate


class PrunerOptions(Protocol):
    """A ``pruner=`` option: the pruner class Hydra instantiates (``_target_``) with these
    fields."""

    _target_: str


@dataclass
class MedianConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 5
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentileConfig:
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0
    n_startup_trials: int = 5
    n_warmup_steps: int = 5
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class PatientConfig:
    _target_: str = "optuna.pruners.PatientPruner"
    wrapped_pruner: Any = field(default_factory=MedianConfig)
    patience: int = 3
    min_delta: float = 0.0


@dataclass
class ThresholdConfig:
    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: float | None = None
    upper: float | None = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class WilcoxonConfig:
    _target_: str = "optuna.pruners.WilcoxonPruner"
    p_threshold: float = 0.1
    n_startup_steps: int = 2


@dataclass
class NoneConfig:
    _target_: str = "optuna.pruners.NopPruner"


def build_pruner(cfg: PrunerOptions) -> optuna.pruners.BasePruner:
    pruner: optuna.pruners.BasePruner = instantiate(cfg)
    return pruner


def brackets(cfg: PrunerOptions, steps: int) -> int:
    """How many brackets a Hyperband pruner runs over ``steps`` steps per trial (its own
    formula, floor(log_rf(max / min)) + 1); 1 for every other pruner."""
    if not isinstance(cfg, HyperbandConfig):
        return 1
    top = steps if cfg.max_resource == "auto" else int(cfg.max_resource)
    low = max(int(cfg.min_resource), 1)
    return max(math.floor(math.log(max(top, low) / low, cfg.reduction_factor)) + 1, 1)


def startup_note(cfg: PrunerOptions, n_startup: int, n_trials: int, steps: int) -> str | None:
    """A line when Hyperband leaves a learning sampler little of the budget: the sampler sees
    only the trial's own bracket (Optuna's ``_filter_study``), so each bracket spends the
    sampler's ``n_startup`` trials on random draws before it learns. None when most of the budget
    is guided."""
    k = brackets(cfg, steps)
    random = k * n_startup
    if k < 2 or n_startup < 1 or 2 * random <= n_trials:
        return None
    return (
        f"pruner=hyperband runs {k} brackets and the sampler learns from each bracket's trials "
        f"alone: its first {k} x sampler.n_startup_trials = {random} trials are random draws, "
        f"more than half of n_trials={n_trials}; raise n_trials, lower "
        "sampler.n_startup_trials, or use pruner=median"
    )
