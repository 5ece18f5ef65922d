"""Pruners (``conf/pruner/``): which trials stop early after an epoch's validation loss."""

from __future__ import annotations

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
