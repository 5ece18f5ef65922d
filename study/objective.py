"""The objective: one trial, a function of ``(trial, config)``.

Train on the training split, score the validation split after every epoch, report to the
pruner, keep the best epoch's weights. The test split is never touched here.

A trial reads as its steps (:func:`objective`): start it, or resume it from its checkpoint;
then, step after step, enter the step's fold, run an epoch, report it and maybe be pruned,
checkpoint it and maybe stop; at the end, record the best epoch and keep its model. Steps and
folds are :class:`study.protocol.Schedule`'s.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.exceptions import UpdateFinishedTrialError

from study import protocol, space
from study._logging import Progress
from study.artifacts import (
    ArtifactStore,
    Checkpointer,
    TrainingState,
    lineage,
    write_curve,
    write_model,
)
from study.config import METRICS, Config
from study.data import SequenceData
from study.models import architecture, build_model, fit_ratios, resolve_stem
from study.training import build_optimizer, evaluate, schedule_lr, train_epoch

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


def objective(trial: optuna.Trial, ctx: TrialContext) -> float:
    run = _Run.start(trial, ctx)
    progress = Progress()
    try:
        while run.state.next_epoch < run.schedule.steps:
            run.enter_fold()
            row = run.epoch()
            if progress.due():  # slow epochs: a line each, so a long trial is never silent
                metric = ctx.cfg.study.metric
                log.info(
                    "trial=%d step %d of %d: %s=%.4f (%.0f s per epoch)",
                    trial.number, run.state.next_epoch + 1, run.schedule.steps,
                    metric, row[metric], row["seconds"],
                )  # fmt: skip
            _report_or_prune(trial, run, row)
            run.checkpoint()
            if ctx.stop.is_set():
                raise StopRequested  # the checkpoint stays for whoever resumes the trial
    except (optuna.TrialPruned, KeyboardInterrupt, UpdateFinishedTrialError):
        raise  # UpdateFinished: another worker took the trial over; its retry needs the checkpoint
    except Exception as e:
        trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:1000])
        run.ckpt.remove()
        if isinstance(e, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()  # leave the memory to the next trial
        raise
    return _finish(trial, run)


@dataclass
class _Run:
    """One trial under way: its parameters and data, the model of the current fold, where
    training stands (what the checkpoint holds)."""

    trial: optuna.Trial
    ctx: TrialContext
    params: dict[str, Any]
    data: SequenceData
    schedule: protocol.Schedule
    ckpt: Checkpointer
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator
    state: TrainingState = field(default_factory=TrainingState)
    #: The fold being trained and the data it trains and validates on (None before the first).
    fold: int | None = None
    fold_data: SequenceData | None = None

    @classmethod
    def start(cls, trial: optuna.Trial, ctx: TrialContext) -> _Run:
        """Draw the parameters, build the model, and resume from the lineage's checkpoint."""
        cfg = ctx.cfg
        ctx.current = trial.number
        params = space.suggest(trial, cfg.search_space, ctx.data.uses)
        data = ctx.data.for_trial(params)  # text cut to max_length, forecasting windows cut
        params = resolve_stem(params, data.longest())  # e.g. auto -> conv, halving 4 times
        seed = _seed(cfg, trial)
        model, optimizer = _fresh(ctx, data, params, seed)
        run = cls(
            trial=trial,
            ctx=ctx,
            params=params,
            data=data,
            schedule=protocol.schedule(cfg.protocol, cfg.max_epochs),
            ckpt=Checkpointer(ctx.artifacts, cfg.study.name, lineage(trial)),
            model=model,
            optimizer=optimizer,
            shuffle=torch.Generator().manual_seed(seed),
        )
        trial.set_user_attr("worker", ctx.worker_id)
        trial.set_user_attr("device", str(ctx.device))
        trial.set_user_attr("params_all", params)  # fixed values included
        restored = run.ckpt.restore(model, optimizer, run.shuffle, ctx.device)
        if restored is not None:
            run.state = restored
            if restored.next_epoch:
                trial.set_user_attr("resumed_from_epoch", restored.next_epoch)
        log.info("trial=%d start at epoch %d on %s", trial.number, run.state.next_epoch, ctx.device)
        return run

    def enter_fold(self) -> None:
        """The step's fold: a new fold starts from a fresh model with a best epoch of its own."""
        step = self.state.next_epoch
        fold = self.schedule.fold(step)
        if fold == self.fold:
            return
        if fold and not self.schedule.epoch(step):
            seed = _seed(self.ctx.cfg, self.trial) + fold
            self.model, self.optimizer = _fresh(self.ctx, self.data, self.params, seed)
            self.state.best_value, self.state.best_epoch = None, -1
        self.fold = fold
        self.fold_data = protocol.trial_data(
            self.data, self.ctx.cfg.protocol, fold, self.ctx.cfg.seed
        )
        fit_ratios(self.model, self.fold_data.train)  # text: counted on this fold's training part
        self.trial.set_user_attr("train_examples", len(self.fold_data.train))

    def epoch(self) -> dict[str, float]:
        """Train one epoch, score validation, extend the curve and the best so far."""
        cfg, state, data = self.ctx.cfg, self.state, self.fold_data
        assert data is not None, "enter_fold first"
        epoch = self.schedule.epoch(state.next_epoch)
        started = time.perf_counter()
        p = self.params
        lr = schedule_lr(self.optimizer, p, epoch, cfg.max_epochs)  # each fold: its own schedule
        train = train_epoch(
            self.model, self.optimizer, data, p["batch_size"], p["clip_norm"], self.shuffle
        )
        if not math.isfinite(train["loss"]):
            raise TrialDiverged(f"training loss is {train['loss']} at epoch {epoch}")
        val = evaluate(self.model, data, data.val)
        row: dict[str, float] = {"epoch": epoch}
        if self.schedule.cross_validated:
            row.update(fold=self.schedule.fold(state.next_epoch), step=state.next_epoch)
        row.update({f"train_{k}": v for k, v in train.items()})
        row.update({f"val_{k}": v for k, v in val.items()})
        row["lr"] = lr
        row["seconds"] = time.perf_counter() - started
        state.curve.append(row)
        self.trial.set_user_attr("curve", state.curve)
        value = row[cfg.study.metric]
        if _better(value, state.best_value, cfg.study.direction):
            state.best_value, state.best_epoch = value, epoch
            if not self.schedule.cross_validated:  # cross-validated trials keep no model
                state.best_state = copy.deepcopy(self.model.state_dict())
        return row

    def checkpoint(self) -> None:
        """The step is done: save where training stands, and say the worker is alive."""
        self.state.next_epoch += 1
        self.ckpt.save(self.model, self.optimizer, self.shuffle, self.state)
        self.ctx.alive()


def _seed(cfg: Config, trial: optuna.Trial) -> int:
    return cfg.seed * 100_003 + trial.number


def _fresh(
    ctx: TrialContext, data: SequenceData, params: dict[str, Any], seed: int
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A new model (seeded) and its optimizer; warm-started from ``ctx.init_state`` if given."""
    torch.manual_seed(seed)
    model = build_model(ctx.cfg.model, data.dims(), params, data.pretrained).to(ctx.device)
    if ctx.init_state is not None:  # warm start: fine-tune another study's best model
        model.load_state_dict(ctx.init_state)
    optimizer = build_optimizer(
        params["optimizer"], model.parameters(), params["lr"], params["weight_decay"]
    )
    return model, optimizer


def _report_or_prune(trial: optuna.Trial, run: _Run, row: dict[str, float]) -> None:
    """Report the step to the pruner; a pruned trial leaves no checkpoint behind."""
    cfg, step = run.ctx.cfg, run.state.next_epoch
    trial.report(_pruning_value(row, cfg), step)
    if trial.should_prune():
        run.ckpt.remove()
        write_curve(run.ctx.artifacts, trial, run.state.curve)
        raise optuna.TrialPruned(f"step {step}: {cfg.study.prune_on}={row[cfg.study.prune_on]:.4f}")


def _pruning_value(row: dict[str, float], cfg: Config) -> float:
    """What the pruner sees: ``study.prune_on``, negated when it points the other way than the
    study (a maximised accuracy pruned on the validation loss), since pruners read "better" from
    the study's direction."""
    value = row[cfg.study.prune_on]
    return value if METRICS[cfg.study.prune_on] == cfg.study.direction else -value


def _better(a: float, b: float | None, direction: str) -> bool:
    return b is None or (a < b if direction == "minimize" else a > b)


def _finish(trial: optuna.Trial, run: _Run) -> float:
    """Record each fold's best epoch; without folds, keep the best weights as the trial's model
    and score the training split with them (the bias/variance diagnosis compares the two)."""
    cfg, state = run.ctx.cfg, run.state
    write_curve(run.ctx.artifacts, trial, state.curve)  # a table in optuna-dashboard
    best = protocol.best_rows(state.curve, cfg.study.metric, cfg.study.direction)
    for key in best[0]:
        if key.startswith("val_") and key != "val_loss":  # the best epoch's other metrics
            trial.set_user_attr(key, sum(r[key] for r in best) / len(best))
    if run.schedule.cross_validated:
        trial.set_user_attr("fold_values", [r[cfg.study.metric] for r in best])
        trial.set_user_attr("best_epochs", [int(r["epoch"]) for r in best])
    else:
        trial.set_user_attr("best_epoch", state.best_epoch)
        # The training split scored by the best weights in evaluation mode: the training error
        # that the bias/variance diagnosis compares with the validation error.
        run.model.load_state_dict(state.best_state)
        seen = run.fold_data
        if seen is None:  # resumed after its last epoch: no fold was entered
            seen = protocol.trial_data(run.data, cfg.protocol, 0, cfg.seed)
        trial.set_user_attr("train_eval", evaluate(run.model, seen, seen.train))
        # The best epoch's weights; test evaluation loads them with ``weights_only=True``.
        arch, dims = architecture(run.params), run.data.dims()
        model_id = write_model(run.ctx.artifacts, trial, state.best_state, arch, dims)
        trial.set_user_attr("model_artifact", model_id)
    run.ckpt.remove()
    return float(sum(r[cfg.study.metric] for r in best) / len(best))


__all__ = ["METRICS", "StopRequested", "TrialContext", "TrialDiverged", "objective"]
