"""The test set, touched once: the best trial's saved model is scored and the score stored.

With cross-validation or tuning on a fraction (:mod:`study.protocol`), the best configuration is
first retrained on the whole training split, and that model is scored and kept instead.

A second request returns the stored score. Only when a later, better trial replaces the best
one is the test set used again, and the stored count of evaluations says so.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import optuna
import torch

from study import protocol
from study.artifacts import build_store, read_model, write_model
from study.config import Config
from study.data import SequenceData, load_data
from study.devices import pick_device
from study.errors import StudyError
from study.models import architecture, build_model
from study.rdb import BudgetedRDBStorage
from study.storage import best_trial, study_lock
from study.training import evaluate

log = logging.getLogger(__name__)


def _load_model(
    cfg: Config, trial: optuna.trial.FrozenTrial, data: SequenceData
) -> torch.nn.Module:
    artifact_id = trial.user_attrs.get("model_artifact")
    if artifact_id is None:
        raise StudyError(f"trial {trial.number} has no saved model")
    try:
        saved = read_model(cfg.artifacts, artifact_id)
    except Exception as e:
        raise StudyError(
            f"the model of trial {trial.number} cannot be read from "
            f"{cfg.artifacts.describe(artifact_id)} ({type(e).__name__}); point artifacts at "
            "the study's artifact store"
        ) from e
    if saved.get("dims") != data.dims():
        raise StudyError(
            f"the model of trial {trial.number} was trained on other data ({saved.get('dims')}, "
            f"now {data.dims()}); use the study's data settings"
        )
    model = build_model(cfg.model, saved["dims"], saved["arch"])
    model.load_state_dict(saved["state_dict"])
    return model


def _retrain(
    cfg: Config,
    study: optuna.Study,
    best: optuna.trial.FrozenTrial,
    data: SequenceData,
    params: dict[str, Any],
    device: torch.device,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The best configuration trained again on the whole training split; the model is kept on
    the study as its final model (an artifact, like the trials' models)."""
    epochs = protocol.final_epochs(best.user_attrs["curve"], cfg.study.metric, cfg.study.direction)
    model, summary = protocol.retrain(
        cfg.model, data, params, epochs, protocol.n_folds(cfg.protocol), cfg.seed, device
    )
    summary["model_artifact"] = write_model(
        build_store(cfg.artifacts), study, model.state_dict(), architecture(params), data.dims()
    )
    return model, summary


def test_score(cfg: Config, storage: BudgetedRDBStorage) -> dict[str, Any]:
    """The best trial's test score: stored on the study, computed only if not stored yet."""
    # Retraining runs where the workers would (refused up front: device=cuda without CUDA).
    retrain_on = pick_device(cfg.device) if protocol.retrains(cfg.protocol) else None
    study = optuna.load_study(study_name=cfg.study.name, storage=storage)
    with study_lock(storage, storage.get_study_id_from_name(cfg.study.name)):
        best = best_trial(study)
        stored = study.user_attrs.get("test")
        if stored and stored["trial"] == best.number:
            return dict(stored)
        log.info("evaluating trial %d on the test split", best.number)
        params = best.user_attrs.get("params_all", best.params)
        data = load_data(cfg.data).for_trial(params)
        retrained: dict[str, Any] = {}
        if retrain_on is not None:
            model, retrained = _retrain(cfg, study, best, data, params, retrain_on)
        else:
            model = _load_model(cfg, best, data)
        scores = evaluate(model, data, data.test)
        result = {
            "trial": best.number,
            **scores,
            "n": len(data.test),
            "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "evaluations": (stored or {}).get("evaluations", 0) + 1,
        }
        if retrained:
            result["retrained"] = retrained
        if "seasonal_naive" in data.info:  # forecasting: the baseline to beat, same targets
            result["seasonal_naive"] = data.info["seasonal_naive"]["test"]
        study.set_user_attr("test", result)
        return result
