"""Benchmark 2 (issue 7): caviar packing, finished trials per hour with K workers on one GPU.

For each K, ``study-launch workers=K workers_per_gpu=K`` runs the default study (a fresh study
each) on one device. Every K trains the same trials: N configurations drawn once from the
study's search space (random, ``--seed``) are given to each study as its iterations
(``iterations.file``), without pruning, so the sampler's and the pruner's choices (which differ
with K) do not change the work. The rate is the finished trials divided by the time from the
first trial's start to the last trial's end (read from the database). The table shows each K's
rate and its ratio to K = 1. Needs a GPU for a meaningful answer (``--device cpu`` runs
the same steps on the CPU, where K workers only share the cores).

    python bench/caviar.py [--ks 1 2 4 8] [--trials 32] [--max-epochs 10] [--device cuda] [--write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import sqlalchemy as sa
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402
from coordination import URL  # noqa: E402


def fixed_trials(args: argparse.Namespace, path: Path) -> None:
    """Write ``args.trials`` configurations drawn at random from the study's search space as an
    iterations file (each step names all its parameters)."""
    from study.config import load_config
    from study.space import suggest

    cfg = load_config(list(args.overrides))
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    steps = []
    for i in range(args.trials):
        trial = draws.ask()
        suggest(trial, cfg.search_space, cfg.data.uses())
        steps.append({"name": f"draw {i}", "params": trial.params})
        draws.tell(trial, 0.0)
    path.write_text(yaml.safe_dump({"steps": steps}, sort_keys=False))


def run_k(k: int, args: argparse.Namespace, trials_file: Path) -> tuple[float, int, float]:
    """(trials per hour, finished trials, seconds) for K workers on the device."""
    name = f"bench-caviar-{k}-{uuid.uuid4().hex[:8]}"
    exe = Path(sys.executable).with_name("study-launch")
    argv = [
        str(exe), "storage=postgres", f"storage.url={args.url}", f"study.name={name}",
        f"workers={k}", f"workers_per_gpu={k}", f"n_trials={args.trials}",
        f"max_epochs={args.max_epochs}", f"device={args.device}", f"seed={args.seed}",
        f"iterations.file={trials_file}", "iterations.cumulative=false", "pruner=none",
        *args.overrides,
    ]  # fmt: skip
    if args.device == "cuda":
        argv.append(f"worker.gpu_memory_fraction={0.95 / k:.3f}")
    with tempfile.TemporaryDirectory() as scratch:  # models and checkpoints
        done = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=scratch
        )
    if done.returncode:
        raise SystemExit(f"K={k}: study-launch exited {done.returncode}: {done.stderr[-2000:]}")
    engine = sa.create_engine(args.url)
    with engine.connect() as conn:
        first, last, n = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM min(t.datetime_start)), "
                "extract(epoch FROM max(t.datetime_complete)), count(*) "
                "FROM trials t JOIN studies s USING (study_id) WHERE s.study_name = :n "
                "AND t.state IN ('COMPLETE', 'PRUNED')"
            ),
            {"n": name},
        ).one()
    engine.dispose()
    optuna.delete_study(study_name=name, storage=args.url)
    seconds = float(last) - float(first)
    return 3600 * int(n) / seconds, int(n), seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--url", default=URL)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("overrides", nargs="*", help="more study settings, e.g. model=gru")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        trials_file = Path(scratch) / "trials.yaml"
        fixed_trials(args, trials_file)
        for k in args.ks:
            results[k] = run_k(k, args, trials_file)
            rate, n, seconds = results[k]
            print(f"K={k}: {rate:,.0f} trials/h ({n} in {seconds:.0f} s)", flush=True)
    base = results[args.ks[0]][0]
    machine = (
        torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    )
    rows = ["| K workers | trials/h | vs K = 1 | goal |", "|---|---|---|---|"]
    for k, (rate, _, _) in results.items():
        goal = "≥ 2.5×" if k == 4 else ""
        rows.append(f"| {k} | {rate:,.0f} | **{rate / base:.2f}×** | {goal} |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_block(
            f"caviar-{args.device}",
            f"`python bench/caviar.py --ks {' '.join(map(str, args.ks))} --trials {args.trials} "
            f"--max-epochs {args.max_epochs} --device {args.device} --write` "
            f"({time.strftime('%Y-%m-%d')}, {machine}, torch {torch.__version__}):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
