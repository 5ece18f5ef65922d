"""The protocol (``protocol.*``): which data a trial trains and is scored on, and the final model.

- ``train_fraction < 1``: every trial trains on the same seeded fraction of the training split
  (stratified for classification, the most recent windows for forecasting), for fast cycles.
  Validation is unchanged, so trials stay comparable with each other.
- ``folds = k >= 2``: k-fold cross-validation over the training and validation splits together
  (stratified, seeded, the same folds for every trial). Fold ``f`` trains a fresh model for
  ``max_epochs`` epochs; its epochs are reported to the pruner as steps
  ``f * max_epochs + epoch``, so steps only grow and a pruner compares trials at the same fold and
  epoch. The trial's value is the mean over folds of each fold's best-epoch value.
- ``ensemble = k``: the test scores the k best trials' models together, their predictions
  averaged (each retrained first when the final model is retrained). With
  ``selection = greedy`` the members are chosen on validation instead (:mod:`study.ensemble`):
  k picks, with replacement, from the ``pool`` best trials' models, each the one that most
  lowers the validation loss of the average so far.
- The final model: when a trial did not train on the whole training split (either option above,
  ``retrain=auto``) the best configuration is retrained on all of it before the test split is
  scored, for the number of epochs its trial found best. The test split is never used here.
  Forecasting always retrains (``auto``) and on the validation part too: the forecast from the
  test's origins is then fitted on all of their past, as a classical model would be.
  ``retrain=always`` retrains any study's, on the training and validation splits together.
  ``retrain_seeds = r`` retrains each tested configuration r times from different seeds and
  averages its models' outputs, an ensemble over random initialisations (Lakshminarayanan et
  al. 2017; N-BEATS averages its models the same way); it lowers the variance of one retraining.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from study._logging import Progress
from study.data import CLASSIFICATION, FORECASTING, SequenceData, SequenceSet
from study.data._sequences import split_indices
from study.errors import ConfigError, DataError
from study.model_options import ModelConfig

if TYPE_CHECKING:  # torch is imported where a model trains: configs and status need none
    import torch

log = logging.getLogger(__name__)


#: ``protocol.selection``'s choices.
SELECTIONS = ("top", "greedy")


@dataclass
class ProtocolConfig:
    #: k-fold cross-validation over train + validation; 0 (or 1) keeps the single split.
    folds: int = 0
    #: The share of the training split each trial trains on (1.0: all of it).
    train_fraction: float = 1.0
    #: Retrain the best configuration on the full training split before the test: auto (when
    #: trials saw less than all of it), always (on the training and validation splits
    #: together), or never (test the best trial's own model).
    retrain: str = "auto"
    #: Test an ensemble of the k best trials (chosen on validation): their predictions averaged
    #: (class probabilities, or forecasts in the data's units). 1: the best trial alone.
    ensemble: int = 1
    #: How the ensemble's members are chosen: top (the k best trials) or greedy (k picks with
    #: replacement from the pool, each lowering the average's validation loss the most).
    selection: str = "top"
    #: Greedy selection's candidates: the pool best trials, whose models are kept while the
    #: study runs. 0: four times ``ensemble``.
    pool: int = 0
    #: When the test retrains (see :func:`retrains`): how many times each chosen configuration
    #: is retrained, from seeds ``seed``, ``seed + 1``, ..., its models' outputs averaged (an
    #: ensemble over random initialisations). 1: one model per configuration.
    retrain_seeds: int = 1


def validate(cfg: ProtocolConfig, task: str) -> None:
    if cfg.folds < 0 or cfg.folds == 1:
        raise ConfigError(f"protocol.folds={cfg.folds}: use 0 (one split) or 2 and more")
    if cfg.folds and task != CLASSIFICATION:
        raise ConfigError(
            "protocol.folds needs classification data: forecasting keeps its chronological "
            "split (never shuffled across time); set protocol.folds=0"
        )
    if not 0.0 < cfg.train_fraction <= 1.0:
        raise ConfigError(
            f"protocol.train_fraction={cfg.train_fraction} must be in (0, 1]; e.g. 0.25"
        )
    if cfg.ensemble < 1:
        raise ConfigError(f"protocol.ensemble={cfg.ensemble}: use 1 (the best trial) or more")
    if cfg.selection not in SELECTIONS:
        raise ConfigError(
            f"protocol.selection={cfg.selection!r} is not one of {', '.join(SELECTIONS)}"
        )
    if cfg.pool < 0:
        raise ConfigError(f"protocol.pool={cfg.pool}: use 0 (four times protocol.ensemble) or more")
    if cfg.selection == "greedy" and cfg.folds >= 2:
        raise ConfigError(
            "protocol.selection=greedy chooses among the trials' models by their validation "
            "predictions, but cross-validated trials keep none; use protocol.selection=top"
        )
    if cfg.retrain not in ("auto", "always", "never"):
        raise ConfigError(f"protocol.retrain={cfg.retrain!r} is not one of auto, always, never")
    if cfg.retrain_seeds < 1:
        raise ConfigError(
            f"protocol.retrain_seeds={cfg.retrain_seeds}: use 1 (one model per configuration) "
            "or more"
        )
    if cfg.retrain_seeds > 1 and not retrains(cfg, task):
        raise ConfigError(
            f"protocol.retrain_seeds={cfg.retrain_seeds} averages retrained models, but this "
            "study tests the trials' own models; add protocol.retrain=always"
        )
    if cfg.retrain == "never" and cfg.folds >= 2:
        raise ConfigError(
            "protocol.retrain=never needs one model per trial, but cross-validated trials keep "
            "none; use protocol.retrain=auto"
        )


def pool_size(cfg: ProtocolConfig) -> int:
    """How many of the best trials' models the study keeps: the ensemble's members, or greedy
    selection's candidates (picks may repeat, so a pool smaller than the ensemble is fine)."""
    if cfg.selection != "greedy":
        return cfg.ensemble
    return cfg.pool or 4 * cfg.ensemble


def n_folds(cfg: ProtocolConfig) -> int:
    return max(cfg.folds, 1)


@dataclass(frozen=True)
class Schedule:
    """A trial's steps, and the one place that maps a step to its fold and epoch: fold ``f``'s
    epoch ``e`` is step ``f * max_epochs + e`` (a single fold without cross-validation)."""

    max_epochs: int
    folds: int

    @property
    def steps(self) -> int:
        return self.max_epochs * self.folds

    @property
    def cross_validated(self) -> bool:
        return self.folds > 1

    def fold(self, step: int) -> int:
        return step // self.max_epochs

    def epoch(self, step: int) -> int:
        return step % self.max_epochs


def schedule(cfg: ProtocolConfig, max_epochs: int) -> Schedule:
    return Schedule(max_epochs, n_folds(cfg))


def retrains(cfg: ProtocolConfig, task: str) -> bool:
    """Whether the test split scores a retrained model rather than the best trial's own."""
    if cfg.retrain == "auto":
        return cfg.folds >= 2 or cfg.train_fraction < 1.0 or task == FORECASTING
    return cfg.retrain == "always"


def through_validation(cfg: ProtocolConfig, task: str) -> bool:
    """Whether the final model also trains on the validation split: after cross-validation
    (every trial trained on parts of it), for forecasting (the test's recent past), and with
    ``retrain=always`` (the configuration is chosen; the examples that chose it now train it,
    as Goodfellow et al. 2016, 7.8, retrain on all the data for the chosen number of steps)."""
    return cfg.folds >= 2 or task == FORECASTING or cfg.retrain == "always"


def concat(a: SequenceSet, b: SequenceSet) -> SequenceSet:
    """Two splits as one (padded to the longer of the two)."""
    import torch

    width = max(a.x.shape[1], b.x.shape[1])

    def widen(x: torch.Tensor) -> torch.Tensor:
        pad = [0, 0] * (x.dim() - 2) + [0, width - x.shape[1]]
        return torch.nn.functional.pad(x, pad)

    level = None if a.level is None or b.level is None else torch.cat([a.level, b.level])
    return SequenceSet(
        torch.cat([widen(a.x), widen(b.x)]),
        torch.cat([a.lengths, b.lengths]),
        torch.cat([a.y, b.y]),
        level,
    )


def _fraction(data: SequenceData, fraction: float, seed: int) -> SequenceData:
    n = len(data.train)
    if data.task == CLASSIFICATION:
        labels = data.train.y.cpu().numpy()
        keep = split_indices(f"{data.name} (protocol.train_fraction)", labels, [fraction], seed)[0]
    else:  # forecasting: the most recent windows, never a shuffle across time
        keep = np.arange(n - max(1, math.ceil(fraction * n)), n)
    return replace(data, train=data.train.subset(keep))


def fold(data: SequenceData, cfg: ProtocolConfig, index: int, seed: int) -> SequenceData:
    """Fold ``index`` of ``cfg.folds``: the data a trial trains and validates on there."""
    from sklearn.model_selection import StratifiedKFold  # a second to import: only here

    pool = concat(data.train, data.val)
    labels = pool.y.cpu().numpy()
    splitter = StratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=seed)
    try:
        train_idx, val_idx = list(splitter.split(np.zeros(len(labels)), labels))[index]
    except ValueError as e:
        raise DataError(
            f"{data.name}: protocol.folds={cfg.folds} is too many for these classes ({e}); "
            "lower protocol.folds"
        ) from e
    fold_data = replace(data, train=pool.subset(train_idx), val=pool.subset(val_idx))
    if cfg.train_fraction < 1.0:
        fold_data = _fraction(fold_data, cfg.train_fraction, seed)
    return fold_data


def trial_data(data: SequenceData, cfg: ProtocolConfig, index: int, seed: int) -> SequenceData:
    """What fold ``index`` (0 without cross-validation) of a trial trains on."""
    if cfg.folds >= 2:
        return fold(data, cfg, index, seed)
    if cfg.train_fraction < 1.0:
        return _fraction(data, cfg.train_fraction, seed)
    return data


def _better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


def best_rows(curve: list[dict[str, Any]], metric: str, direction: str) -> list[dict[str, Any]]:
    """Each fold's best epoch (one row without cross-validation), in fold order."""
    best: dict[int, dict[str, Any]] = {}
    for row in curve:
        f = int(row.get("fold", 0))
        if f not in best or _better(row[metric], best[f][metric], direction):
            best[f] = row
    return [best[f] for f in sorted(best)]


def final_epochs(curve: list[dict[str, Any]], metric: str, direction: str) -> int:
    """How long to train the final model: the best epoch of each fold, averaged, plus one."""
    rows = best_rows(curve, metric, direction)
    return round(sum(int(r["epoch"]) for r in rows) / len(rows)) + 1


def retrain(
    model_cfg: ModelConfig,
    data: SequenceData,
    params: dict[str, Any],
    epochs: int,
    with_validation: bool,
    seed: int,
    device: torch.device,
    horizon: int,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the configuration from scratch on the full training split (plus validation when
    ``with_validation``, see :func:`through_validation`) for ``epochs`` epochs, at the learning
    rates its trial had at those epochs of its ``horizon`` (the study's ``max_epochs``); returns
    the model and a summary."""
    import torch

    from study.models import build_model, fit_ratios
    from study.training import build_optimizer, evaluate, schedule_lr, train_epoch

    train = concat(data.train, data.val) if with_validation else data.train
    full = replace(data, train=train).to(device)
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    model = build_model(model_cfg, data.dims(), params, data.pretrained).to(device)
    fit_ratios(model, full.train)
    optimizer = build_optimizer(
        params["optimizer"], model.parameters(), params["lr"], params["weight_decay"]
    )
    log.info("retraining on %d examples for %d epochs", len(train), epochs)
    progress = Progress()
    for done in range(1, epochs + 1):
        schedule_lr(optimizer, params, done - 1, horizon)
        scores = train_epoch(
            model, optimizer, full, params["batch_size"], params["clip_norm"], shuffle
        )
        if progress.due() and done < epochs:
            log.info("retraining: epoch %d of %d, train loss %.4f", done, epochs, scores["loss"])
    summary: dict[str, Any] = {"epochs": epochs, "train_examples": len(train)}
    summary.update({f"train_{k}": v for k, v in scores.items()})
    if not with_validation:  # validation was not trained on: still worth a look
        summary.update({f"val_{k}": v for k, v in evaluate(model, full, full.val).items()})
    return model.cpu(), summary
