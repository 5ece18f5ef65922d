"""The objective: one trial, a function of ``(trial, config)``.

Train on the training split, score the validation split after every epoch, report to the
pruner, keep the best epoch's weights. The test split is never touched here.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import upload_artifact
from optuna.artifacts._protocol import ArtifactStore
from optuna.exceptions import UpdateFinishedTrialError

from study import space
from study.artifacts import Checkpointer, TrainingState, lineage
from study.config import METRICS, Config
from study.data import SequenceData
from study.models import ARCHITECTURE, build_model
from study.training import Scores, build_optimizer, evaluate, train_epoch

log = logging.getLogger(__name__)


class StopRequested(KeyboardInterrupt):
    """The worker was asked to stop; raised between epochs, never mid-step.

    Optuna marks the trial failed on a KeyboardInterrupt and re-raises it, and
    ``study.optimize(catch=(Exception,))`` does not swallow it.
    """


class TrialDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrialContext:
    """What every trial of one worker shares: config, data on its device, and the stop flag."""

    cfg: Config
    data: SequenceData
    device: torch.device
    worker_id: str
    artifacts: ArtifactStore
    stop: threading.Event
    #: Marks the worker alive for health checks (called after every epoch).
    alive: Callable[[], None] = lambda: None
    #: The number of the trial this worker is running, if any.
    current: int | None = None


def _metric(scores: Scores, metric: str) -> float:
    return {"val_loss": scores.loss, "val_accuracy": scores.accuracy, "val_f1": scores.f1}[metric]


def _better(a: float, b: float | None, direction: str) -> bool:
    return b is None or (a < b if direction == "minimize" else a > b)


def _save_model(ctx: TrialContext, trial: optuna.Trial, state: dict[str, Any], arch: dict) -> None:
    """Upload the best epoch's weights; test evaluation loads them with ``weights_only=True``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{trial.number}-model.pt"
        torch.save(
            {
                "state_dict": state,
                "arch": arch,
                "n_features": ctx.data.n_features,
                "n_classes": ctx.data.n_classes,
            },
            path,
        )
        artifact_id = upload_artifact(
            artifact_store=ctx.artifacts, file_path=str(path), study_or_trial=trial
        )
    trial.set_user_attr("model_artifact", artifact_id)


def _epoch(
    ctx: TrialContext,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    params: dict[str, Any],
    shuffle: torch.Generator,
    state: TrainingState,
) -> float:
    """Train one epoch, score validation, extend the curve and the best so far; returns it."""
    epoch, data = state.next_epoch, ctx.data
    started = time.perf_counter()
    train_loss, train_acc = train_epoch(
        model, optimizer, data.train, params["batch_size"], params["clip_norm"], shuffle
    )
    if not math.isfinite(train_loss):
        raise TrialDiverged(f"training loss is {train_loss} at epoch {epoch}")
    val = evaluate(model, data.val, data.n_classes)
    value = _metric(val, ctx.cfg.study.metric)
    state.curve.append(
        {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val.loss,
            "val_accuracy": val.accuracy,
            "val_f1": val.f1,
            "seconds": time.perf_counter() - started,
        }
    )
    if _better(value, state.best_value, ctx.cfg.study.direction):
        state.best_value, state.best_epoch = value, epoch
        state.best_state = copy.deepcopy(model.state_dict())
    return value


def objective(trial: optuna.Trial, ctx: TrialContext) -> float:
    cfg, data = ctx.cfg, ctx.data
    ctx.current = trial.number
    params = space.suggest(trial, cfg.search_space)
    seed = cfg.seed * 100_003 + trial.number
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    arch = {k: params[k] for k in ARCHITECTURE}
    model = build_model(cfg.model, data.n_features, data.n_classes, params).to(ctx.device)
    optimizer = build_optimizer(
        params["optimizer"], model.parameters(), params["lr"], params["weight_decay"]
    )
    trial.set_user_attr("worker", ctx.worker_id)
    trial.set_user_attr("device", str(ctx.device))
    trial.set_user_attr("params_all", params)  # fixed values included
    ckpt = Checkpointer(ctx.artifacts, cfg.study.name, lineage(trial))
    state = ckpt.restore(model, optimizer, shuffle, ctx.device) or TrainingState()
    if state.next_epoch:
        trial.set_user_attr("resumed_from_epoch", state.next_epoch)
    log.info("trial=%d start at epoch %d on %s", trial.number, state.next_epoch, ctx.device)
    try:
        while state.next_epoch < cfg.max_epochs:
            value = _epoch(ctx, model, optimizer, params, shuffle, state)
            trial.set_user_attr("curve", state.curve)
            trial.report(value, state.next_epoch)
            if trial.should_prune():
                ckpt.remove()
                raise optuna.TrialPruned(
                    f"epoch {state.next_epoch}: {cfg.study.metric}={value:.4f}"
                )
            state.next_epoch += 1
            ckpt.save(model, optimizer, shuffle, state)
            ctx.alive()
            if ctx.stop.is_set():
                raise StopRequested  # the checkpoint stays for whoever resumes the trial
    except (optuna.TrialPruned, KeyboardInterrupt, UpdateFinishedTrialError):
        raise  # UpdateFinished: another worker took the trial over; its retry needs the checkpoint
    except Exception as e:
        trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:1000])
        ckpt.remove()
        if isinstance(e, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()  # leave the memory to the next trial
        raise
    assert state.best_value is not None
    best = state.curve[state.best_epoch]
    trial.set_user_attr("best_epoch", state.best_epoch)
    trial.set_user_attr("val_accuracy", best["val_accuracy"])
    trial.set_user_attr("val_f1", best["val_f1"])
    _save_model(ctx, trial, state.best_state, arch)
    ckpt.remove()
    return state.best_value


__all__ = ["METRICS", "StopRequested", "TrialContext", "TrialDiverged", "objective"]
