"""Benchmark 3 (issue 7): coordination overhead, our worker path against plain Optuna.

A zero-cost objective (it draws the default search space and reports 5 made-up validation
losses, no training) runs on W worker processes sharing one PostgreSQL study, with the same
sampler and pruner (built from the default config: multivariate TPE with constant liar, the
median pruner with its warm-up cut to 2 steps so that 5 reports can be pruned):

- ``plain``: ``optuna.load_study(storage=url)`` and ``study.optimize(n_trials=N / W)`` in each
  process, as the Optuna docs show for parallel workers;
- ``ours``: ``study.loop.work`` — our storage (exact global budget, retries of dead trials,
  heartbeats, outage retries), the study's recorded settings, callbacks and drain — with the
  zero-cost objective in place of training.

Rates come from the trials' completion times in the database: the first 500 trials and the
500 before the N-th. The contenders run one after the other in one command, each on a fresh
study. Usage:

    python bench/coordination.py [--trials 5000] [--workers 4] [--url URL] [--write]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402

from study.storage import StorageConfig, database_url  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The product's own URL handling (psycopg2 driver, password from the environment).
URL = database_url(
    StorageConfig(
        kind="postgres",
        url=os.environ.get("STUDY_TEST_DB_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
)
WINDOW = 500


def _overrides(url: str, name: str, trials: int, index: int = 0) -> list[str]:
    return [
        "storage=postgres", f"storage.url={url}", f"study.name={name}", f"n_trials={trials}",
        "device=cpu", "worker.threads=1", f"worker.index={index}", "pruner.n_warmup_steps=2",
    ]  # fmt: skip


def zero_cost(trial: optuna.Trial, space: Any) -> float:
    """Draw the default search space, report 5 losses that depend on it, prune when told."""
    from study.space import suggest

    params = suggest(trial, space)
    base = abs(math.log10(params["lr"]) + 2.5) + params["dropout"] + 1 / params["hidden_size"]
    for step in range(5):
        loss = base + 1 / (step + 1)
        trial.report(loss, step)
        if trial.should_prune():
            raise optuna.TrialPruned
    return loss


def _run_worker(role: str, url: str, name: str, trials: int, workers: int, index: int) -> None:
    from study.config import load_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    per_call = ["storage.pool_size=0"] if role == "ours-per-call" else []
    cfg = load_config(_overrides(url, name, trials, index) + per_call)
    if role.startswith("ours"):
        from study.loop import work

        sys.exit(work(cfg, lambda trial, ctx: zero_cost(trial, ctx.cfg.search_space)))
    from hydra.utils import instantiate

    # Optuna's own classes, configured as ours are (plain Optuna has no incremental groups).
    study = optuna.load_study(
        study_name=name,
        storage=url,
        sampler=instantiate(cfg.sampler, seed=1000 + index),
        pruner=instantiate(cfg.pruner),
    )
    share = trials // workers + (1 if index < trials % workers else 0)
    study.optimize(lambda t: zero_cost(t, cfg.search_space), n_trials=share)


def _times(url: str, name: str) -> tuple[float, list[float]]:
    """When the first trial started, and when each finished trial finished (in order)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM t.datetime_complete), "
                "extract(epoch FROM t.datetime_start) FROM trials t "
                "JOIN studies s USING (study_id) WHERE s.study_name = :n "
                "AND t.state IN ('COMPLETE', 'PRUNED') ORDER BY t.datetime_complete"
            ),
            {"n": name},
        ).all()
    engine.dispose()
    return min(float(r[1]) for r in rows), [float(r[0]) for r in rows]


def measure(role: str, url: str, trials: int, workers: int) -> dict[str, float]:
    name = f"bench-{role}-{uuid.uuid4().hex[:8]}"
    if role == "plain":
        optuna.create_study(study_name=name, storage=url, direction="minimize")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--role",
                role,
                "--study",
                name,
                "--url",
                url,
                "--trials",
                str(trials),
                "--workers",
                str(workers),
                "--index",
                str(i),
            ],
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        for i in range(workers)
    ]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"{role} workers exited with {codes}")
    started, done = _times(url, name)
    optuna.delete_study(study_name=name, storage=url)  # keep the database small
    if len(done) < trials:
        raise SystemExit(f"{role}: only {len(done)} of {trials} trials finished")
    first = WINDOW / (done[WINDOW - 1] - started)
    last = WINDOW / (done[trials - 1] - done[trials - WINDOW - 1])
    return {"first": first, "last": last, "overall": trials / (done[trials - 1] - started)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--write", action="store_true")
    parser.add_argument(
        "--connections",
        action="store_true",
        help="ours (one connection kept per process) against ours with a connection per call "
        "(storage.pool_size=0)",
    )
    parser.add_argument("--role", choices=("plain", "ours", "ours-per-call"))
    parser.add_argument("--study")
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args()
    if args.role:
        _run_worker(args.role, args.url, args.study, args.trials, args.workers, args.index)
        return 0
    if args.trials < 2 * WINDOW:
        parser.error(f"--trials must be at least {2 * WINDOW}")
    if args.connections:
        return _connections(args)
    results = {}
    for role in ("plain", "ours"):
        results[role] = measure(role, args.url, args.trials, args.workers)
        print(f"{role}: {results[role]}", flush=True)
    plain, ours = results["plain"], results["ours"]
    goals = {"first": "≥ 1×", "last": "≥ 1.5×", "overall": "≥ 1×"}
    table = _table(("plain Optuna", "ours"), plain, ours, args.trials, goals)
    print(table)
    if args.write:
        write_block(
            "coordination",
            f"`python bench/coordination.py --trials {args.trials} --workers {args.workers} "
            f"--write` ({time.strftime('%Y-%m-%d')}, optuna {optuna.__version__}, "
            f"{args.workers} workers, {os.cpu_count()} cores):\n\n{table}",
        )
    return 0


def _table(
    names: tuple[str, str],
    a: dict[str, float],
    b: dict[str, float],
    trials: int,
    goals: dict[str, str] | None = None,
) -> str:
    """Two runs' rates (:func:`measure`) side by side, one row per window, with b / a (and the
    goal of each window, when given)."""
    windows = (
        ("first", f"first {WINDOW} trials"),
        ("last", f"trials {trials - WINDOW + 1:,}–{trials:,}"),
        ("overall", f"all {trials:,}"),
    )
    goal = " goal |" if goals else ""
    rows = [
        f"| trials/s | {names[0]} | {names[1]} | ratio |{goal}",
        "|---|---|---|---|" + ("---|" if goals else ""),
        *(
            f"| {label} | {a[key]:.1f} | {b[key]:.1f} | **{b[key] / a[key]:.2f}×** |"
            + (f" {goals[key]} |" if goals else "")
            for key, label in windows
        ),
    ]
    return "\n".join(rows)


def _connections(args: argparse.Namespace) -> int:
    """Ours as shipped (one connection kept per process) against a connection per storage call,
    side by side on fresh studies."""
    kept = measure("ours", args.url, args.trials, args.workers)
    print(f"kept: {kept}", flush=True)
    per_call = measure("ours-per-call", args.url, args.trials, args.workers)
    print(f"per call: {per_call}", flush=True)
    names = ("one kept per process (default)", "one per call (`storage.pool_size=0`)")
    table = _table(names, kept, per_call, args.trials)
    print(table)
    if args.write:
        write_block(
            "coordination-connections",
            f"`python bench/coordination.py --connections --trials {args.trials} --workers "
            f"{args.workers} --write` ({time.strftime('%Y-%m-%d')}, optuna "
            f"{optuna.__version__}, {args.workers} workers, {os.cpu_count()} cores, the server "
            f"on the same machine):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
