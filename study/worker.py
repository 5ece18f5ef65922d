"""The worker: one process that pulls trials from the shared study until the budget is spent.

Signals only set a flag. The first SIGTERM/SIGINT is a warm stop: the running trial finishes
its epoch, is marked failed and put back in the queue, and the worker exits 0. A second signal
is a cold stop: the trial is interrupted at once and also put back.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import optuna
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from study.checkpoints import AtomicFileSystemArtifactStore, KeepBestModel
from study.config import Config
from study.data import load_data
from study.errors import ConfigError
from study.objective import TrialContext, objective
from study.pruners import build_pruner
from study.samplers import build_sampler, is_grid
from study.setup import prepare_study
from study.storage import BudgetExhausted, open_storage, study_lock

log = logging.getLogger(__name__)


def pick_device(choice: str) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or cpu")
    return torch.device("cuda")


def worker_id(cfg: Config) -> str:
    return f"w{cfg.worker.index}.{socket.gethostname()}.{os.getpid()}"


@dataclass
class _Failures:
    """Counts failed trials in a row; too many stops the worker (something is broken)."""

    limit: int
    in_a_row: int = 0
    gave_up: bool = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.FAIL:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        if self.in_a_row >= self.limit:
            self.gave_up = True
            study.stop()


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second %s: stopping now", signal.Signals(signum).name)
            raise KeyboardInterrupt
        log.warning("%s: finishing this epoch, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _requeue(study: optuna.Study, retry: RetryHeartbeatStaleTrialCallback, number: int) -> None:
    """Put an interrupted trial back in the queue with the same parameters (Optuna's own retry)."""
    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.FAIL:
        retry(study, trial)
        log.info("trial=%d put back in the queue", number)


def work(cfg: Config) -> int:
    """Run trials until the global budget is spent; returns the process exit code."""
    wid = worker_id(cfg)
    stop = threading.Event()
    _install_signal_handlers(stop)
    if cfg.worker.threads > 0:
        torch.set_num_threads(cfg.worker.threads)
    device = pick_device(cfg.device)
    # Grid trials come only from the queue, so a grid study never creates a trial of its own.
    limit = 0 if is_grid(cfg.sampler) else cfg.n_trials
    storage = open_storage(cfg.storage, new_trial_limit=limit)
    seed = zlib.crc32(f"{cfg.seed}:{socket.gethostname()}:{cfg.worker.index}".encode())
    study = prepare_study(
        cfg, storage, sampler=build_sampler(cfg.sampler, seed), pruner=build_pruner(cfg.pruner)
    )
    data = load_data(cfg.data)
    data.train, data.val = data.train.to(device), data.val.to(device)
    Path(cfg.artifacts.path).mkdir(parents=True, exist_ok=True)
    store = AtomicFileSystemArtifactStore(cfg.artifacts.path)
    ctx = TrialContext(cfg, data, device, wid, store, stop)
    failures = _Failures(cfg.worker.max_consecutive_failures)
    log.info("joined study %s on %s", cfg.study.name, device)
    try:
        study.optimize(
            lambda trial: objective(trial, ctx),
            catch=(Exception,),  # a bad trial is marked failed; the worker goes on
            callbacks=[failures, KeepBestModel(store, lambda s: study_lock(storage, s._study_id))],
            gc_after_trial=False,
        )
    except BudgetExhausted:
        log.info("budget of %d trials reached", cfg.n_trials)
    except KeyboardInterrupt:  # StopRequested (warm) or a second signal (cold)
        retry = storage.heartbeat_stale_trial_callback
        if ctx.current is not None and isinstance(retry, RetryHeartbeatStaleTrialCallback):
            _requeue(study, retry, ctx.current)
        log.info("stopped; run the same command again to continue")
        return 0
    if failures.gave_up:
        log.error(
            "%d trials failed in a row; stopping this worker (see the trials' fail_reason)",
            failures.in_a_row,
        )
        return 1
    log.info("done")
    return 0
