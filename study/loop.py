"""The worker loop: one process pulls trials from the shared study until the budget is spent.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import optuna
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from study import protocol, tracking, warm_start
from study.artifact_options import check_writable
from study.artifacts import KeepBestModels, build_store
from study.config import Config
from study.devices import pick_device
from study.drain import Drain
from study.errors import StudyError
from study.objective import StopRequested, TrialContext, objective
from study.pruners import build_pruner
from study.rdb import BudgetedRDBStorage, BudgetExhausted
from study.samplers import build_sampler, is_grid
from study.setup import load_checked_data, prepare_study
from study.storage import open_storage, study_lock

log = logging.getLogger(__name__)


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


def finished_line(trial: FrozenTrial, metric: str, prune_on: str) -> str | None:
    """One line for a finished trial: its state, value, epochs and seconds (Optuna's own line,
    parameters and all, is quieted). Failures keep Optuna's warning, which names the error."""
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    curve = trial.user_attrs.get("curve", [])
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        best = trial.user_attrs.get("best_epoch")
        at = f" (best epoch {best})" if best is not None else ""
        return (
            f"trial {trial.number} complete: {metric}={trial.value:.4f}{at}, "
            f"{len(curve)} epochs, {seconds:.0f} s"
        )
    if trial.state == TrialState.PRUNED:
        last = f": {prune_on}={curve[-1][prune_on]:.4f}" if curve and prune_on in curve[-1] else ""
        return f"trial {trial.number} pruned after {len(curve)} epochs{last}, {seconds:.0f} s"
    return None


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        # The flag is set before anything is logged: a Python handler can be interrupted by the
        # next signal, and one sent as soon as the warm-stop line appears must find it set.
        second = stop.is_set()
        stop.set()
        if second:
            log.warning("second %s: stopping now", signal.Signals(signum).name)
            raise KeyboardInterrupt
        log.warning("%s: finishing this epoch, then stopping", signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _stop_with_launcher(stop: threading.Event) -> None:
    """A worker that ``study-launch`` started stops as on a first SIGTERM (its epoch finishes,
    its trial goes back in the queue) once the launcher is gone, however it died (``kill -9``,
    a lost session): no orphan goes on training for nobody. Polled from a thread rather than
    signalled at the launcher's death, so nothing runs in a signal handler."""
    if os.environ.get("STUDY_LAUNCHED") != "1":
        return
    launcher = os.getppid()

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != launcher:
                stop.set()
                log.warning("study-launch is gone: finishing this epoch, then stopping")
                return

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def _requeue(study: optuna.Study, retry: RetryHeartbeatStaleTrialCallback, number: int) -> None:
    """Put an interrupted trial back in the queue with the same parameters (Optuna's own retry)."""
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.RUNNING:  # Optuna settles it, except on some cold stops
        study.tell(number, state=TrialState.FAIL)
        trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.FAIL:
        retry(study, trial)
        log.info("trial=%d put back in the queue", number)


def _join(
    cfg: Config, stop: threading.Event
) -> tuple[optuna.Study, BudgetedRDBStorage, TrialContext]:
    """Connect, load (or create) the study, and put the data on this worker's device."""
    if cfg.worker.threads > 0:
        torch.set_num_threads(cfg.worker.threads)
    device = pick_device(cfg.device)
    if device.type == "cuda" and cfg.worker.gpu_memory_fraction > 0:
        torch.cuda.set_per_process_memory_fraction(cfg.worker.gpu_memory_fraction)
    # Grid trials come only from the queue, so a grid study never creates a trial of its own.
    limit = 0 if is_grid(cfg.sampler) else cfg.n_trials
    data = load_checked_data(cfg)  # bad data stops here, before a study exists
    check_writable(cfg.artifacts)  # so does a store this worker cannot write to
    storage = open_storage(cfg.storage, new_trial_limit=limit)
    # Distinct per process, also for several launchers or cluster jobs on one host.
    where = f"{socket.gethostname()}:{cfg.job}:{cfg.worker.index}:{os.getpid()}"
    seed = zlib.crc32(f"{cfg.seed}:{where}".encode())
    warm = warm_start.resolve(cfg, storage, data)  # may fix the architecture in cfg
    study = prepare_study(
        cfg,
        storage,
        data,
        warm,
        sampler=build_sampler(cfg.sampler, seed),
        pruner=build_pruner(cfg.pruner),
    )
    data = data.to(device)  # once per worker, not per trial
    store = build_store(cfg.artifacts)
    alive = _touch(cfg.worker.health_file)
    ctx = TrialContext(cfg, data, device, worker_id(cfg), store, stop, alive)
    if warm is not None and warm.state is not None:
        ctx.init_state = {k: v.to(device) for k, v in warm.state.items()}
    return study, storage, ctx


def _touch(path: str) -> Callable[[], None]:
    """A function that marks this worker alive for ``study health`` (a no-op without a file)."""
    if not path:
        return lambda: None
    target = Path(path)

    def touch() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()

    touch()
    return touch


def _taken_over(study: optuna.Study, number: int | None) -> bool:
    """True when this worker's trial was failed by another worker (its heartbeat looked stale,
    e.g. after a database outage longer than storage.grace_period) and so was retried there."""
    if number is None:
        return False
    return study.get_trials(deepcopy=False)[number].state == TrialState.FAIL


def work(cfg: Config, run_trial: Callable[[optuna.Trial, TrialContext], float] = objective) -> int:
    """Run trials until the global budget is spent; returns the process exit code.

    ``run_trial`` is what one trial does: the training objective (benchmarks pass a zero-cost
    one to measure everything around it).
    """
    stop = threading.Event()
    _install_signal_handlers(stop)
    _stop_with_launcher(stop)
    tracked = tracking.callbacks(cfg.tracking, cfg.study.metric)  # MLflow, TensorBoard
    study, storage, ctx = _join(cfg, stop)
    study_id = storage.get_study_id_from_name(cfg.study.name)
    failures = _Failures(cfg.worker.max_consecutive_failures)
    keep_best = KeepBestModels(
        ctx.artifacts, lambda: study_lock(storage, study_id), protocol.pool_size(cfg.protocol)
    )

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        ctx.current = None  # settled: nothing of this worker's is in flight any more
        line = finished_line(trial, cfg.study.metric, cfg.study.prune_on)
        if line:
            log.info("%s", line)
            log.debug("trial %d params: %s", trial.number, trial.params)
        if stop.is_set():
            study.stop()

    drain = Drain(storage, study_id, stop, ctx.alive)
    log.info("joined study %s on %s", cfg.study.name, ctx.device)
    try:
        while not (failures.gave_up or stop.is_set()):
            try:
                study.optimize(
                    lambda trial: run_trial(trial, ctx),
                    catch=(Exception,),  # a bad trial is marked failed; the worker goes on
                    callbacks=[failures, keep_best, after_trial, *tracked],
                    gc_after_trial=False,
                )
            except BudgetExhausted:
                pass
            except StudyError:
                raise  # e.g. the database stayed away past storage.retry_seconds
            except Exception:
                # Optuna cannot record the end of a trial another worker already failed.
                if not _taken_over(study, ctx.current):
                    raise
                log.warning(
                    "trial=%d was taken over by another worker after an outage", ctx.current
                )
                continue
            if failures.gave_up or drain.settled():
                break
    except KeyboardInterrupt as e:  # StopRequested (warm) or a second signal (cold)
        retry = storage.heartbeat_stale_trial_callback
        if ctx.current is not None and isinstance(retry, RetryHeartbeatStaleTrialCallback):
            _requeue(study, retry, ctx.current)
        log.info("stopped; run the same command again to continue")
        return 0 if isinstance(e, StopRequested) else 130
    if failures.gave_up:
        log.error(
            "%d trials failed in a row; stopping this worker (see the trials' fail_reason)",
            failures.in_a_row,
        )
        return 1
    log.info("stopped; run the same command again to continue" if stop.is_set() else "done")
    return 0
