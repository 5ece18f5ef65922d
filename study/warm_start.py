"""Warm start (``warm_start.*``): begin a new study from another study of the same storage.

- ``trials: true`` copies the other study's completed trials into the new one when it is created
  (parameters, values, per-epoch reports and curves), so the sampler starts informed and the
  pruner has something to compare with. A copied trial keeps ``copied_from`` ("study#number") and
  does not count against ``n_trials``. Trials whose values fall outside this study's search space
  are left out.
- ``weights: true`` starts every trial's model from the other study's best model (fine-tuning):
  its architecture (cell, units, layers, ...) is then fixed in this study's search space, and the
  trials tune the rest (learning rate, batch size, regularisation).

Both need the same metric and data; a mismatch is refused before anything is created.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from study import space
from study.data import SequenceData
from study.errors import ConfigError, StudyError
from study.rdb import COPIED
from study.storage import best_trial, load_existing

if TYPE_CHECKING:
    import torch

    # config imports this module for WarmStartConfig
    from study.config import Config

log = logging.getLogger(__name__)


@dataclass
class WarmStartConfig:
    #: The study to start from (same storage); empty: a cold start.
    study: str = ""
    #: Copy its completed trials into the new study.
    trials: bool = True
    #: Start every trial's model from its best model; fixes the architecture to that model's.
    weights: bool = False


@dataclass
class WarmStart:
    source: optuna.Study
    #: The weights every trial starts from (``weights: true``), on the CPU.
    state: dict[str, torch.Tensor] | None = None


def resolve(cfg: Config, storage: RDBStorage, data: SequenceData) -> WarmStart | None:
    """Check the source study; with ``weights``, load its best model and fix the architecture in
    ``cfg.search_space`` (so the settings recorded on the study say what was tuned)."""
    ws: WarmStartConfig = cfg.warm_start
    if not ws.study:
        return None
    if ws.study == cfg.study.name:
        raise ConfigError(f"warm_start.study={ws.study} is this study; name another one")
    known = [s.study_name for s in storage.get_all_studies()]
    if ws.study not in known:
        raise ConfigError(
            f"warm_start.study: no study named {ws.study!r} in this storage (studies: "
            f"{', '.join(known) or 'none yet'}); name one of them, or leave warm_start.study empty"
        )
    source = load_existing(storage, ws.study)
    metric = source.user_attrs.get("settings", {}).get("metric")
    if metric != cfg.study.metric:
        raise ConfigError(
            f"warm_start.study={ws.study} optimised {metric}, this study {cfg.study.metric}; "
            f"set study.metric={metric} or start cold"
        )
    warm = WarmStart(source)
    if ws.weights:
        warm.state = _best_weights(cfg, source, data)
    return warm


def _best_weights(cfg: Config, source: optuna.Study, data: SequenceData) -> dict[str, torch.Tensor]:
    try:
        best = best_trial(source)  # run there: a trial it copied itself has no model
    except StudyError as e:
        raise ConfigError(f"warm_start.study={source.study_name} has no completed trial") from e
    artifact_id = best.user_attrs.get("model_artifact")
    if artifact_id is None:
        raise ConfigError(
            f"warm_start.weights: trial {best.number} of {source.study_name} kept no model "
            "(cross-validated trials keep none); set warm_start.weights=false"
        )
    from study.artifacts import read_model  # boto3 through Optuna: not for `study status`

    try:
        saved = read_model(cfg.artifacts, artifact_id)
    except Exception as e:
        raise ConfigError(
            f"warm_start.weights: the model of {source.study_name} trial {best.number} cannot "
            f"be read ({type(e).__name__}); point artifacts at that study's store"
        ) from e
    if saved["dims"] != data.dims():
        raise ConfigError(
            f"warm_start.weights: {source.study_name} was trained on other data "
            f"({saved['dims']}, now {data.dims()}); use the same data settings"
        )
    for name, value in saved["arch"].items():
        if hasattr(cfg.search_space, name):  # derived ones (stem_reduction) follow from these
            getattr(cfg.search_space, name).value = value  # fixed: the weights fit this shape
    log.info("fine-tuning from %s trial %d (%s)", source.study_name, best.number, saved["arch"])
    state: dict[str, torch.Tensor] = saved["state_dict"]
    return state


def copy_trials(study: optuna.Study, warm: WarmStart, search: space.SearchSpace) -> int:
    """Add the source's completed trials that fit this search space; returns how many."""
    copied = skipped = 0
    for t in warm.source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        params, dists = {}, {}
        for name, value in t.params.items():
            p = getattr(search, name, None)
            if p is None or p.value is not None:  # not searched here (fixed or unknown)
                continue
            if not space.contains(p, value):
                break
            params[name], dists[name] = value, space.distribution(p)
        else:
            attrs = {k: v for k, v in t.user_attrs.items() if k != "model_artifact"}
            attrs[COPIED] = f"{warm.source.study_name}#{t.number}"
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    value=t.value,
                    intermediate_values=dict(t.intermediate_values),
                    user_attrs=attrs,
                )
            )
            copied += 1
            continue
        skipped += 1
    study.set_user_attr("warm_start", {"study": warm.source.study_name, "copied": copied})
    log.info(
        "copied %d trials from %s (%d outside this search space)",
        copied,
        warm.source.study_name,
        skipped,
    )
    return copied


__all__ = ["COPIED", "WarmStart", "WarmStartConfig", "copy_trials", "resolve"]
