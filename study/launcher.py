"""study-launch: start N local workers on one study, show progress, score the winner once.

Workers run in sessions of their own so that a terminal's Ctrl-C reaches only the launcher,
which forwards each signal exactly once: the first is a warm stop, the second a cold one. Once
the workers have ended, a signal stops the scoring of the test split instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import optuna
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from study import recorded, samplers, space, status, warm_start
from study.artifact_options import check_writable
from study.cli import interrupt
from study.config import Config
from study.devices import pick_device
from study.errors import ConfigError
from study.rdb import BudgetedRDBStorage
from study.secrets import without_password
from study.setup import load_checked_data, prepare_study
from study.storage import open_storage, trial_counts
from study.testset import test_score

log = logging.getLogger(__name__)


def visible_gpus() -> list[str]:
    """GPU ids this process may use (respecting an existing CUDA_VISIBLE_DEVICES)."""
    import torch

    count = torch.cuda.device_count()
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()][:count]
    return [str(i) for i in range(count)]


def gpu_plan(workers: int, gpus: list[str], per_gpu: int) -> list[str | None]:
    """Worker i gets GPU i mod G (round-robin), at most ``per_gpu`` workers each; None: CPU."""
    if not gpus:
        return [None] * workers
    if workers > len(gpus) * per_gpu:
        raise ConfigError(
            f"workers={workers} exceeds {len(gpus)} GPU(s) x workers_per_gpu={per_gpu}; "
            f"lower workers or raise workers_per_gpu"
        )
    return [gpus[i % len(gpus)] for i in range(workers)]


def _budget(cfg: Config) -> int:
    if samplers.is_grid(cfg.sampler):
        return min(cfg.n_trials, len(space.grid_points(cfg.search_space, cfg.data.uses())))
    return cfg.n_trials


def _start(
    i: int, overrides: list[str], gpu: str | None, threads: int, password_env: str
) -> subprocess.Popen[str]:
    # The launcher prefixes each line with [wI]: the worker leaves its id out of its own lines.
    env = dict(os.environ, PYTHONUNBUFFERED="1", STUDY_LAUNCHED="1")
    # A password given in storage.url reaches the worker through its environment, not its
    # command line, which every user of the machine can read.
    overrides, secret = without_password(overrides, password_env)
    env.update(secret)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    cmd = [sys.executable, "-m", "workers.study_worker", *overrides, f"worker.index={i}"]
    if gpu is None:
        cmd.append(f"worker.threads={threads}")
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )


def _pump(i: int, proc: subprocess.Popen[str], console: Console) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        console.print(f"[w{i}] {line.rstrip()}", markup=False, highlight=False, soft_wrap=True)


def launch(cfg: Config, overrides: list[str]) -> int:
    """Run the study to its budget with ``cfg.workers`` local processes; returns an exit code."""
    overrides = [o for o in overrides if not o.startswith(("worker.index=", "worker.threads="))]
    pick_device(cfg.device)  # device=cuda without CUDA: refused before a study exists
    data = load_checked_data(cfg, warn=True)  # bad data stops here, before a study exists
    check_writable(cfg.artifacts)  # and a store the workers cannot write to (it makes the folder)
    storage = open_storage(cfg.storage)  # for embedded: keeps the server up while we run
    study = prepare_study(cfg, storage, data, warm_start.resolve(cfg, storage, data))
    recorded.remember(cfg.study.name)  # study status|test|report here need no study.name
    device_gpus = [] if cfg.device == "cpu" else visible_gpus()
    plan = gpu_plan(cfg.workers, device_gpus, cfg.workers_per_gpu)
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    budget = _budget(cfg)
    console = Console(stderr=True)
    console.print(
        f"study {cfg.study.name}: {cfg.workers} worker(s) on "
        f"{', '.join(f'GPU {g}' for g in plan if g) or 'CPU'}, budget {budget} trials",
        highlight=False,
    )
    procs = [
        _start(i, overrides, gpu, threads, cfg.storage.password_env) for i, gpu in enumerate(plan)
    ]
    signals = _forward_signals(procs, console)
    _watch(cfg, storage, study, budget, procs, console)
    codes = [p.returncode for p in procs]
    try:
        # No worker is left to stop: a signal from here on stops the test (a retrained final
        # model can take minutes), and the launcher exits normally, so an embedded server stops
        # with it.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, interrupt)
        if signals["n"]:  # a signal while the workers ran (or before the line above)
            console.print(
                "stopped; run the same command again to resume the study", highlight=False
            )
            return 130
        if any(codes):
            console.print(f"worker exit codes: {codes}", highlight=False)
        _score_and_show(cfg, storage)
    except KeyboardInterrupt:
        console.print(
            "stopped while scoring the test split; `study test` scores it (or shows the score, "
            "if it was stored)",
            highlight=False,
        )
        return 130
    return 1 if any(codes) else 0


def _forward_signals(procs: list[subprocess.Popen[str]], console: Console) -> dict[str, int]:
    """Forward each SIGINT/SIGTERM to the workers once: the first is a warm stop, the next cold.
    Returns the count of signals received (it grows)."""
    signals = {"n": 0}

    def forward(signum: int, frame: FrameType | None) -> None:
        signals["n"] += 1
        kind = "warm stop: workers finish their epoch" if signals["n"] == 1 else "cold stop"
        console.print(f"{signal.Signals(signum).name}: {kind}", highlight=False)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return signals


def _watch(
    cfg: Config,
    storage: BudgetedRDBStorage,
    study: optuna.Study,
    budget: int,
    procs: list[subprocess.Popen[str]],
    console: Console,
) -> None:
    """Show the workers' lines and the live board until every worker has exited."""
    pumps = [
        threading.Thread(target=_pump, args=(i, p, console), daemon=True)
        for i, p in enumerate(procs)
    ]
    for t in pumps:
        t.start()
    study_id = storage.get_study_id_from_name(cfg.study.name)
    progress = Progress(
        TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    task = progress.add_task("trials", total=budget)
    board = Board(budget, study.user_attrs.get("warm_start", {}).get("copied", 0))
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while True:
            running = any(p.poll() is None for p in procs)
            snap = _snapshot(storage, study, study_id)
            progress.update(task, completed=board.done(snap))
            live.update(Group(progress, board.table(snap)))
            if not running:
                break
            time.sleep(1.0)
    for t in pumps:
        t.join(timeout=5)


def _score_and_show(cfg: Config, storage: BudgetedRDBStorage) -> None:
    """The best trial, scored on the test split once (a stored score is reused)."""
    result = status.summary(storage, cfg.study.name, cfg.artifacts)
    if result["best"] is not None:
        test_score(cfg, storage)
        result = status.summary(storage, cfg.study.name, cfg.artifacts)
    print(status.best_line(result))
    if result["best"]:
        print(f"  params: {result['best']['params']}")


def _snapshot(storage: BudgetedRDBStorage, study: optuna.Study, study_id: int) -> dict[str, Any]:
    counts = storage.outage.call(trial_counts, storage, study_id)
    best = None
    with contextlib.suppress(ValueError):  # no completed trial yet
        best = study.best_value
    return {"counts": counts, "best": best}


class Board:
    """The live view under the progress bar: one row of counts, the best so far, the rate of
    this launch and the time left for the budget at that rate."""

    def __init__(self, budget: int, copied: int, clock: Callable[[], float] = time.monotonic):
        self.budget, self.copied, self.clock = budget, copied, clock
        self.started = clock()
        self.first: int | None = None

    def done(self, snap: dict) -> int:
        c = snap["counts"]
        # Trials a warm start copied are complete but were not run here.
        return int(c["COMPLETE"] + c["PRUNED"] - self.copied)

    def rate(self, snap: dict) -> tuple[float | None, float | None]:
        """Trials per hour since this launch began, and seconds left for the budget."""
        done = self.done(snap)
        if self.first is None:
            self.first = done  # a resumed study: count only what this launch finishes
        elapsed = self.clock() - self.started
        finished = done - self.first
        if finished <= 0 or elapsed <= 0:
            return None, None
        per_hour = finished / elapsed * 3600
        return per_hour, max(0, self.budget - done) / per_hour * 3600

    def table(self, snap: dict) -> Table:
        c = snap["counts"]
        per_hour, eta = self.rate(snap)
        table = Table(
            box=box.SIMPLE, pad_edge=False, caption=self._phase(snap), caption_justify="left"
        )
        columns = (
            "complete",
            "pruned",
            "interrupted",
            "failed",
            "running",
            "best",
            "trials/h",
            "ETA",
        )
        for name in columns:
            # Fixed widths where the value changes as trials finish: the row does not jump.
            table.add_column(
                name, justify="right", min_width=9 if name in ("best", "ETA") else None
            )
        table.add_row(
            str(c["COMPLETE"] - self.copied),
            str(c["PRUNED"]),
            str(c.get("INTERRUPTED", 0)),
            str(c["FAIL"]),
            str(c["RUNNING"]),
            "-" if snap["best"] is None else f"{snap['best']:.4f}",
            "-" if per_hour is None else f"{per_hour:.1f}",
            "-" if eta is None else _duration(eta),
        )
        return table

    def _phase(self, snap: dict) -> str | None:
        """What the launch is doing while the numbers cannot say it yet."""
        c = snap["counts"]
        if self.done(snap) > (self.first or 0):
            return None
        if c["RUNNING"] == 0:
            return "starting the workers (importing PyTorch, reading the data)..."
        return f"first trials running ({c['RUNNING']}); the rate and ETA follow the first to end"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
