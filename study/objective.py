"""The objective: one trial, a function of ``(trial, config)``.

Train on the training split, score the validation split after every epoch, report to the
pruner, keep the best epoch's weights. The test split is never touched here.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.artifacts._protocol import ArtifactStore
from optuna.exceptions import UpdateFinishedTrialError

from study import protocol, space
from study.artifacts import Checkpointer, TrainingState, lineage, write_model
from study.config import METRICS, Config
from study.data import SequenceData
from study.models import architecture, build_model
from study.training import build_optimizer, evaluate, train_epoch

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
    #: Warm start: the weights every trial's model starts from (another study's best model).
    init_state: dict[str, torch.Tensor] | None = None


def _pruning_value(row: dict[str, float], cfg: Config) -> float:
    """What the pruner sees: ``study.prune_on``, negated when it points the other way than the
    study (a maximised accuracy pruned on the validation loss), since pruners read "better" from
    the study's direction."""
    value = row[cfg.study.prune_on]
    return value if METRICS[cfg.study.prune_on] == cfg.study.direction else -value


def _better(a: float, b: float | None, direction: str) -> bool:
    return b is None or (a < b if direction == "minimize" else a > b)


def _epoch(
    cfg: Config,
    data: SequenceData,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    params: dict[str, Any],
    shuffle: torch.Generator,
    state: TrainingState,
    fold: int | None,
) -> dict[str, float]:
    """Train one epoch, score validation, extend the curve and the best so far; returns the row."""
    epoch = state.next_epoch % cfg.max_epochs
    started = time.perf_counter()
    train = train_epoch(model, optimizer, data, params["batch_size"], params["clip_norm"], shuffle)
    if not math.isfinite(train["loss"]):
        raise TrialDiverged(f"training loss is {train['loss']} at epoch {epoch}")
    val = evaluate(model, data, data.val)
    row: dict[str, float] = {"epoch": epoch}
    if fold is not None:
        row.update(fold=fold, step=state.next_epoch)
    row.update({f"train_{k}": v for k, v in train.items()})
    row.update({f"val_{k}": v for k, v in val.items()})
    row["seconds"] = time.perf_counter() - started
    state.curve.append(row)
    value = row[cfg.study.metric]
    if _better(value, state.best_value, cfg.study.direction):
        state.best_value, state.best_epoch = value, epoch
        if fold is None:  # cross-validated trials keep no model
            state.best_state = copy.deepcopy(model.state_dict())
    return row


def objective(trial: optuna.Trial, ctx: TrialContext) -> float:
    cfg = ctx.cfg
    ctx.current = trial.number
    params = space.suggest(trial, cfg.search_space, ctx.data.uses)
    data = ctx.data.for_trial(params)  # text cut to max_length, forecasting windows cut
    seed = cfg.seed * 100_003 + trial.number
    folds = protocol.n_folds(cfg.protocol)
    arch = architecture(params)

    def fresh(fold: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(seed + fold)
        model = build_model(cfg.model, data.dims(), params, data.pretrained).to(ctx.device)
        if ctx.init_state is not None:  # warm start: fine-tune another study's best model
            model.load_state_dict(ctx.init_state)
        optimizer = build_optimizer(
            params["optimizer"], model.parameters(), params["lr"], params["weight_decay"]
        )
        return model, optimizer

    model, optimizer = fresh(0)
    shuffle = torch.Generator().manual_seed(seed)
    trial.set_user_attr("worker", ctx.worker_id)
    trial.set_user_attr("device", str(ctx.device))
    trial.set_user_attr("params_all", params)  # fixed values included
    ckpt = Checkpointer(ctx.artifacts, cfg.study.name, lineage(trial))
    state = ckpt.restore(model, optimizer, shuffle, ctx.device) or TrainingState()
    if state.next_epoch:
        trial.set_user_attr("resumed_from_epoch", state.next_epoch)
    log.info("trial=%d start at epoch %d on %s", trial.number, state.next_epoch, ctx.device)
    current: tuple[int, SequenceData] | None = None
    try:
        while state.next_epoch < cfg.max_epochs * folds:
            fold, epoch = divmod(state.next_epoch, cfg.max_epochs)
            if current is None or current[0] != fold:
                if fold and not epoch:  # a new fold: a new model, its own best epoch
                    model, optimizer = fresh(fold)
                    state.best_value, state.best_epoch = None, -1
                current = (fold, protocol.trial_data(data, cfg.protocol, fold, cfg.seed))
                trial.set_user_attr("train_examples", len(current[1].train))
            row = _epoch(
                cfg, current[1], model, optimizer, params, shuffle, state,
                fold if folds > 1 else None,
            )  # fmt: skip
            trial.set_user_attr("curve", state.curve)
            trial.report(_pruning_value(row, cfg), state.next_epoch)
            if trial.should_prune():
                ckpt.remove()
                raise optuna.TrialPruned(
                    f"step {state.next_epoch}: {cfg.study.prune_on}={row[cfg.study.prune_on]:.4f}"
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
    best = protocol.best_rows(state.curve, cfg.study.metric, cfg.study.direction)
    for key in best[0]:
        if key.startswith("val_") and key != "val_loss":  # the best epoch's other metrics
            trial.set_user_attr(key, sum(r[key] for r in best) / len(best))
    if folds > 1:
        trial.set_user_attr("fold_values", [r[cfg.study.metric] for r in best])
        trial.set_user_attr("best_epochs", [int(r["epoch"]) for r in best])
    else:
        trial.set_user_attr("best_epoch", state.best_epoch)
        # The training split scored by the best weights in evaluation mode: the training error
        # that the bias/variance diagnosis compares with the validation error.
        model.load_state_dict(state.best_state)
        seen = current[1] if current else protocol.trial_data(data, cfg.protocol, 0, cfg.seed)
        trial.set_user_attr("train_eval", evaluate(model, seen, seen.train))
        # The best epoch's weights; test evaluation loads them with ``weights_only=True``.
        model_id = write_model(ctx.artifacts, trial, state.best_state, arch, data.dims())
        trial.set_user_attr("model_artifact", model_id)
    ckpt.remove()
    return float(sum(r[cfg.study.metric] for r in best) / len(best))


__all__ = ["METRICS", "StopRequested", "TrialContext", "TrialDiverged", "objective"]
