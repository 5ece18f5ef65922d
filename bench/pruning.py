"""Benchmark 4 (issue 7): pruning efficiency, epochs trained until a target is reached.

On the default data (JapaneseVowels) and the default search space, each contender runs as a
real ``study-worker`` on its own study: TPE + Hyperband against random search without pruning,
for each seed. The trials run one at a time (one worker), so trial numbers are the order of
work. Once a study's best validation accuracy reaches the target, the worker is stopped (a warm
stop, SIGTERM) and the epochs trained up to and including that trial are counted (every epoch of
every trial, pruned ones included; the table shows how many were pruned). A study that never
reaches the target within ``--trials`` counts its epochs as a lower bound (shown with ``≥``).
Two studies run at a time.

    python bench/pruning.py [--seeds 0 1 2] [--target 0.98] [--trials 30] [--write]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402
from coordination import URL  # noqa: E402

CONTENDERS = {
    "TPE + Hyperband": ["sampler=tpe", "pruner=hyperband"],
    "random, no pruning": ["sampler=random", "pruner=none"],
}


@dataclass
class Outcome:
    epochs: int
    trials: int
    pruned: int
    reached: bool
    best: float


def _progress(engine: sa.Engine, name: str) -> list[tuple[int, str, float | None, int]]:
    """(number, state, value, epochs reported) of every trial, by number."""
    with engine.connect() as conn:
        return [
            (int(n), str(state), None if v is None else float(v), int(k))
            for n, state, v, k in conn.execute(
                sa.text(
                    "SELECT t.number, t.state, v.value, "
                    "(SELECT count(*) FROM trial_intermediate_values i "
                    " WHERE i.trial_id = t.trial_id) "
                    "FROM trials t JOIN studies s USING (study_id) "
                    "LEFT JOIN trial_values v ON v.trial_id = t.trial_id "
                    "WHERE s.study_name = :n ORDER BY t.number"
                ),
                {"n": name},
            )
        ]


def _reached(rows: list[tuple[int, str, float | None, int]], target: float) -> int | None:
    for number, state, value, _ in rows:
        if state == "COMPLETE" and value is not None and value >= target:
            return number
    return None


def run_one(overrides: list[str], seed: int, target: float, trials: int, url: str) -> Outcome:
    name = f"bench-pruning-{uuid.uuid4().hex[:8]}"
    exe = Path(sys.executable).with_name("study-worker")
    argv = [
        str(exe), "storage=postgres", f"storage.url={url}", f"study.name={name}",
        f"seed={seed}", f"n_trials={trials}", "study.metric=val_accuracy", "device=cpu",
        "worker.threads=1", *overrides,
    ]  # fmt: skip
    engine = sa.create_engine(url)
    scratch = tempfile.TemporaryDirectory()  # the models and checkpoints go there
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=scratch.name,
    )  # fmt: skip
    hit = None
    while proc.poll() is None:
        time.sleep(1)
        hit = _reached(_progress(engine, name), target)
        if hit is not None:
            proc.send_signal(signal.SIGTERM)  # warm stop: the running trial ends its epoch
            proc.wait()
    rows = _progress(engine, name)
    engine.dispose()
    scratch.cleanup()
    optuna.delete_study(study_name=name, storage=url)
    hit = _reached(rows, target)
    counted = [r for r in rows if hit is None or r[0] <= hit]
    values = [r[2] for r in rows if r[1] == "COMPLETE" and r[2] is not None]
    return Outcome(
        epochs=sum(r[3] for r in counted),
        trials=len(counted),
        pruned=sum(r[1] == "PRUNED" for r in counted),
        reached=hit is not None,
        best=max(values, default=float("nan")),
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    jobs = [(c, s) for s in args.seeds for c in CONTENDERS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(
            zip(
                jobs,
                pool.map(
                    lambda job: run_one(
                        [*CONTENDERS[job[0]], f"max_epochs={args.max_epochs}"],
                        job[1],
                        args.target,
                        args.trials,
                        args.url,
                    ),  # fmt: skip
                    jobs,
                ),
                strict=True,
            )
        )
    for (c, s), o in outcomes.items():
        print(f"{c:20s} seed {s}: {o}")

    def cell(o: Outcome) -> str:
        return f"{'' if o.reached else '≥ '}{o.epochs} ({o.trials} trials, {o.pruned} pruned)"

    names = list(CONTENDERS)
    rows = [
        f"| seed | {names[0]}: epochs | {names[1]}: epochs | ratio |",
        "|---|---|---|---|",
    ]
    for s in args.seeds:
        a, b = outcomes[(names[0], s)], outcomes[(names[1], s)]
        rows.append(f"| {s} | {cell(a)} | {cell(b)} | {b.epochs / a.epochs:.1f}× |")
    med = [statistics.median(outcomes[(n, s)].epochs for s in args.seeds) for n in names]
    ratio = med[1] / med[0]
    rows.append(f"| median | {med[0]:.0f} | {med[1]:.0f} | **{ratio:.1f}×** (goal ≥ 3×) |")
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_block(
            "pruning",
            f"`python bench/pruning.py --seeds {' '.join(map(str, args.seeds))} --target "
            f"{args.target} --trials {args.trials} --max-epochs {args.max_epochs} --write` "
            f"({time.strftime('%Y-%m-%d')}; target: best validation accuracy ≥ {args.target}, "
            f"{os.cpu_count()} cores, one worker per study, two studies at a time):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
