"""The test set, touched once: the best trial's saved model is scored and the score stored.

With ``protocol.ensemble=k`` the k best trials' models are scored together, their predictions
averaged, and each member's own score is kept beside the ensemble's; with
``protocol.selection=greedy`` the members are chosen on validation first (:mod:`study.ensemble`).

With cross-validation or tuning on a fraction (:mod:`study.protocol`), the best configuration is
first retrained on the whole training split, and that model is scored and kept instead; with
``protocol.retrain_seeds=r`` each chosen configuration is retrained r times from different seeds
and its models' outputs averaged (only the first model is kept).

Beside it, the classical models of :mod:`study.baselines`, scored on the same test targets, and
the model's own answers (a confusion matrix, or forecasts against the actual values) in the
study's ``test_answers``, which the report draws.
A second request returns the stored score. Only when a later, better trial replaces the best
one is the test set used again, and the stored count of evaluations says so.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import optuna
import torch
from optuna.artifacts.exceptions import ArtifactNotFound

from study import baselines, ensemble, protocol
from study.artifacts import build_store, read_model, write_model
from study.config import Config
from study.data import SequenceData, load_data
from study.devices import pick_device
from study.errors import StudyError
from study.models import architecture, build_model
from study.rdb import BudgetedRDBStorage
from study.storage import study_lock, trial_params
from study.training import predict

log = logging.getLogger(__name__)


def _load_model(
    cfg: Config, trial: optuna.trial.FrozenTrial, data: SequenceData
) -> torch.nn.Module:
    artifact_id = trial.user_attrs.get("model_artifact")
    if artifact_id is None:
        raise StudyError(f"trial {trial.number} has no saved model")
    where = cfg.artifacts.describe(artifact_id)
    try:
        saved = read_model(cfg.artifacts, artifact_id)
    except ArtifactNotFound as e:
        raise StudyError(
            f"the model of trial {trial.number} cannot be read from {where} (not there); "
            "point artifacts at the study's artifact store"
        ) from e
    except Exception as e:  # there, but not a model torch can read: damaged
        raise StudyError(
            f"the model of trial {trial.number} at {where} is damaged ({type(e).__name__}); "
            "retrain it from the trial's parameters: add protocol.retrain=always"
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
    seed: int,
    keep: bool,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A configuration trained again on the whole training split; with ``keep`` the model is
    kept on the study as its final model (an artifact, like the trials' models)."""
    epochs = protocol.final_epochs(best.user_attrs["curve"], cfg.study.metric, cfg.study.direction)
    with_validation = protocol.through_validation(cfg.protocol, data.task)
    model, summary = protocol.retrain(
        cfg.model, data, params, epochs, with_validation, seed, device, cfg.max_epochs
    )
    if keep:
        summary["model_artifact"] = write_model(
            build_store(cfg.artifacts), study, model.state_dict(), architecture(params), data.dims()
        )
    return model, summary


def _view(loaded: SequenceData, trial: optuna.trial.FrozenTrial) -> SequenceData:
    """The data as the trial saw it (its window, transform or text length)."""
    return loaded.for_trial(trial_params(trial))


def _member(
    cfg: Config,
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    loaded: SequenceData,
    retrain_on: torch.device | None,
    first: bool,
) -> tuple[SequenceData, list[torch.Tensor], dict[str, Any]]:
    """One tested configuration: the trial's data view, the outputs on the test split of its
    model or models (one per seed of ``protocol.retrain_seeds`` when retrained), and the summary
    of the first retraining (empty when the trial's own model is tested). The ``first``
    member's first retrained model is the study's final model, the one retrained model kept."""
    params = trial_params(trial)
    data = _view(loaded, trial)
    if retrain_on is None:
        return data, [predict(_load_model(cfg, trial, data), data.test)], {}
    outputs: list[torch.Tensor] = []
    retrained: dict[str, Any] = {}
    for k in range(cfg.protocol.retrain_seeds):
        keep = first and k == 0
        model, summary = _retrain(cfg, study, trial, data, params, retrain_on, cfg.seed + k, keep)
        outputs.append(predict(model, data.test))
        retrained = retrained or summary
    if cfg.protocol.retrain_seeds > 1:
        retrained = {**retrained, "seeds": cfg.protocol.retrain_seeds}
    return data, outputs, retrained


def _own_score(view: SequenceData, outputs: list[torch.Tensor]) -> dict[str, float]:
    """A member's score on the test split: its model's, or its seeds' models' averaged."""
    if len(outputs) == 1:
        return view.score(outputs[0], view.test)
    scores = view.ensemble_score([(view, out) for out in outputs])
    scores.pop("loss", None)
    return scores


def _validation(cfg: Config, trial: optuna.trial.FrozenTrial, loaded: SequenceData) -> torch.Tensor:
    """A candidate's own model's outputs on the validation split (which it did not train on),
    in the form members are averaged in."""
    data = _view(loaded, trial)
    return data.combinable(predict(_load_model(cfg, trial, data), data.val), data.val)


def _stored_for(stored: dict[str, Any], found: ensemble.Candidates, seeds: int) -> bool:
    """Whether a stored score is the one these candidates (best first) would get, each
    retrained ``seeds`` times."""
    numbers = found.numbers
    if stored["trial"] != numbers[0] or stored.get("retrained", {}).get("seeds", 1) != seeds:
        return False
    chosen = stored.get("ensemble", {})
    if found.selection == "greedy":
        return (
            chosen.get("selection") == "greedy"
            and chosen.get("pool") == numbers
            and sum(chosen.get("picks", [])) == found.n_picks
        )
    return (
        chosen.get("selection", "top") == "top"
        and list(chosen.get("trials", numbers[:1])) == numbers
    )


def test_score(
    cfg: Config, storage: BudgetedRDBStorage, loaded: SequenceData | None = None
) -> dict[str, Any]:
    """The best trial's test score (or its ensemble's): stored on the study, computed only if
    not stored yet. ``loaded``: the study's data, when the caller has loaded it already."""
    # Retraining runs where the workers would (refused up front: device=cuda without CUDA).
    retrain_on = (
        pick_device(cfg.device) if protocol.retrains(cfg.protocol, cfg.data.task()) else None
    )
    study = optuna.load_study(study_name=cfg.study.name, storage=storage)
    with study_lock(storage, storage.get_study_id_from_name(cfg.study.name)):
        found = ensemble.candidates(study, cfg.protocol)
        stored: dict[str, Any] | None = study.user_attrs.get("test")
        seeds = cfg.protocol.retrain_seeds if retrain_on is not None else 1
        if stored is not None and _stored_for(stored, found, seeds):
            return dict(stored)
        if loaded is None:
            loaded = load_data(cfg.data)
        data_of = loaded  # narrowed to SequenceData for the lambda below (mypy)
        # The targets in the best trial's view (every view has the same ones, in one order).
        judge = _view(loaded, found.trials[0])
        chosen = ensemble.choose(
            found,
            lambda t: _validation(cfg, t, data_of),
            lambda mean: judge.combined_loss(mean, judge.val),
        )
        numbers = [t.number for t in chosen.trials]
        log.info("evaluating trial(s) %s on the test split", ", ".join(map(str, numbers)))
        members = [
            _member(cfg, study, t, loaded, retrain_on, first=i == 0)
            for i, t in enumerate(chosen.trials)
        ]
        # A member picked twice counts twice in the average; its seeds' models share its weight.
        weighted = [
            (view, out)
            for (view, outs, _), picks in zip(members, chosen.picks, strict=True)
            for _ in range(picks)
            for out in outs
        ]
        data, outputs, retrained = members[0]
        if len(members) == 1 and len(outputs) == 1:  # one model (picked once or more)
            scores = {
                "loss": data.eval_loss(outputs[0], data.test),
                **data.score(outputs[0], data.test),
            }
        else:
            scores = data.ensemble_score(weighted)
        result = {
            "trial": found.numbers[0],
            **scores,
            "n": len(data.test),
            "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "evaluations": (stored or {}).get("evaluations", 0) + 1,
        }
        if len(members) > 1 or found.selection == "greedy":
            # Each member's own score, to see what averaging gained.
            result["ensemble"] = {
                "trials": numbers,
                "members": [
                    {"trial": n, **_own_score(view, outs)}
                    for n, (view, outs, _) in zip(numbers, members, strict=True)
                ],
                "selection": found.selection,
            }
            if found.selection == "greedy":
                result["ensemble"] |= {"picks": chosen.picks, "pool": found.numbers}
        if retrained:
            result["retrained"] = retrained
        on_base = [t for t in chosen.trials if trial_params(t).get("base", "none") != "none"]
        if on_base:  # a hybrid: the network forecasts what the classical model misses
            result["on_arima_base"] = len(on_base)
        classical = baselines.for_test(loaded)  # the models to beat, on the same targets
        if classical:
            result["baselines"] = classical
        # The model's own answers, for the report (apart: `study test` prints the scores).
        answers = data.answers(weighted)
        study.set_user_attr("test_answers", {"trial": numbers[0], **answers})
        study.set_user_attr("test", result)
        return result
