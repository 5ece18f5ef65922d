"""The test set, touched once: the best trial's saved model is scored and the score stored.

A second request returns the stored score. Only when a later, better trial replaces the best
one is the test set used again, and the stored count of evaluations says so.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import download_artifact

from study.artifacts import build_store, describe
from study.config import Config
from study.data import load_data
from study.errors import StudyError
from study.models import build_model
from study.storage import BudgetedRDBStorage, study_lock
from study.training import evaluate

log = logging.getLogger(__name__)


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial:
    try:
        return study.best_trial
    except ValueError as e:
        raise StudyError(f"study {study.study_name!r} has no completed trial yet") from e


def _load_model(cfg: Config, trial: optuna.trial.FrozenTrial) -> torch.nn.Module:
    artifact_id = trial.user_attrs.get("model_artifact")
    if artifact_id is None:
        raise StudyError(f"trial {trial.number} has no saved model")
    store = build_store(cfg.artifacts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
            saved = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as e:
            raise StudyError(
                f"the model of trial {trial.number} cannot be read from "
                f"{describe(cfg.artifacts, artifact_id)} ({type(e).__name__}); point artifacts at "
                "the study's artifact store"
            ) from e
    model = build_model(cfg.model, saved["n_features"], saved["n_classes"], saved["arch"])
    model.load_state_dict(saved["state_dict"])
    return model


def test_score(cfg: Config, storage: BudgetedRDBStorage) -> dict[str, Any]:
    """The best trial's test score: stored on the study, computed only if not stored yet."""
    study = optuna.load_study(study_name=cfg.study.name, storage=storage)
    with study_lock(storage, study._study_id):
        best = _best(study)
        stored = storage.get_study_user_attrs(study._study_id).get("test")
        if stored and stored["trial"] == best.number:
            return dict(stored)
        log.info("evaluating trial %d on the test split", best.number)
        data = load_data(cfg.data)
        scores = evaluate(_load_model(cfg, best), data.test, data.n_classes)
        result = {
            "trial": best.number,
            "loss": scores.loss,
            "accuracy": scores.accuracy,
            "f1": scores.f1,
            "n": len(data.test),
            "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "evaluations": (stored or {}).get("evaluations", 0) + 1,
        }
        study.set_user_attr("test", result)
        return result
