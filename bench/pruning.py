"""Benchmark 4 (issue 7): pruning efficiency, epochs trained until a target is reached.

On the default data (JapaneseVowels) and the default search space, each contender runs as a
real ``study-worker`` on its own study: TPE + Hyperband against random search without pruning,
for each seed. Every study runs the same number of trials (``--trials``), one at a time (one
worker), so trial numbers are the order of work. For each target accuracy the epochs trained up
to and including the first completed trial that reached it are counted (every epoch of every
trial, pruned ones included); one history answers every target. A study that never reaches a
target within ``--trials`` counts all its epochs as a lower bound (shown with ``≥``). Over all
seeds' whole budgets, the epochs trained per trial that reached a target estimate what one
success costs, steadier than the first successes of a few seeds. Two studies run at a time; the
count is of epochs, so the machine's load does not change it.

Study settings given before the options go to every study (another data set, a fixed search-space
choice); with ``--write`` the table goes to the block ``--block`` of BENCHMARKS.md, so a second data
set's table does not replace the default one's, and the command written above it names the
settings (``--save`` keeps them with the histories, so ``--load`` names them too).

A seed labels a repeat; it does not fix the draws (a worker seeds its sampler from ``seed``, its
host and its process id). ``--save`` keeps every study's history as JSON; ``--load`` makes the
tables from saved histories (several runs' seeds together) without training.

    python bench/pruning.py [SETTING=VALUE ...] [--seeds 0 1 2] [--targets 0.98 1.0]
                            [--trials 60] [--save FILE] [--write] [--block pruning]
    python bench/pruning.py --load A.json B.json [--targets ...] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
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

SETTINGS = "settings"  # --save: the key of the study settings every study was given
CONTENDERS = {
    "TPE + Hyperband": ["sampler=tpe", "pruner=hyperband"],
    "random, no pruning": ["sampler=random", "pruner=none"],
}


def _reached(state: str, value: float | None, target: float) -> bool:
    """A completed trial whose value (its best validation accuracy) is at least ``target``."""
    return state == "COMPLETE" and value is not None and value >= target - 1e-9


@dataclass
class History:
    """One study's trials in the order they ran: (state, value, epochs trained)."""

    rows: list[tuple[str, float | None, int]]

    def to_reach(self, target: float) -> tuple[int, int, int, bool]:
        """Epochs, trials and pruned trials until a completed trial reached ``target``
        (all of them, and False, when none did)."""
        epochs = pruned = 0
        for i, (state, value, k) in enumerate(self.rows):
            epochs += k
            pruned += state == "PRUNED"
            if _reached(state, value, target):
                return epochs, i + 1, pruned, True
        return epochs, len(self.rows), pruned, False

    @property
    def epochs(self) -> int:
        return sum(r[2] for r in self.rows)

    def hits(self, target: float) -> int:
        """Completed trials that reached ``target``."""
        return sum(_reached(s, v, target) for s, v, _ in self.rows)


def run_one(overrides: list[str], seed: int, trials: int, url: str) -> History:
    name = f"bench-pruning-{uuid.uuid4().hex[:8]}"
    exe = Path(sys.executable).with_name("study-worker")
    argv = [
        str(exe), "storage=postgres", f"storage.url={url}", f"study.name={name}",
        f"seed={seed}", f"n_trials={trials}", "study.metric=val_accuracy", "device=cpu",
        "worker.threads=1", *overrides,
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:  # the models and checkpoints go there
        done = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=scratch, check=False,
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"study-worker exited with {done.returncode}: {done.stderr[-2000:]}")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [
            (str(state), None if v is None else float(v), int(k))
            for state, v, k in conn.execute(
                sa.text(
                    "SELECT t.state, v.value, "
                    "(SELECT count(*) FROM trial_intermediate_values i "
                    " WHERE i.trial_id = t.trial_id) "
                    "FROM trials t JOIN studies s USING (study_id) "
                    "LEFT JOIN trial_values v ON v.trial_id = t.trial_id "
                    "WHERE s.study_name = :n ORDER BY t.number"
                ),
                {"n": name},
            )
        ]
    engine.dispose()
    optuna.delete_study(study_name=name, storage=url)
    return History(rows)


def render(runs: dict[tuple[str, int], History], seeds: list[int], targets: list[float]) -> str:
    """The table: per target, each seed's first success, their median, and epochs per success
    over every seed's whole budget; last, the epochs per trial."""
    names = list(CONTENDERS)
    rows = [
        f"| target | seed | {names[0]}: epochs | {names[1]}: epochs | ratio |",
        "|---|---|---|---|---|",
    ]

    def cell(h: History, target: float) -> str:
        epochs, trials, pruned, reached = h.to_reach(target)
        return f"{'' if reached else '≥ '}{epochs} ({trials} trials, {pruned} pruned)"

    def ratio(ours: History, other: History, target: float) -> str:
        (a, *_, a_reached), (b, *_, b_reached) = ours.to_reach(target), other.to_reach(target)
        if not (a_reached or b_reached):
            return "neither reached it"
        bound = "" if a_reached and b_reached else "≥ " if a_reached else "≤ "
        return f"{bound}{b / a:.1f}×"

    for target in targets:
        for s in seeds:
            rows.append(
                f"| {target} | {s} | {cell(runs[(names[0], s)], target)} "
                f"| {cell(runs[(names[1], s)], target)} "
                f"| {ratio(runs[(names[0], s)], runs[(names[1], s)], target)} |"
            )
        med = [statistics.median(runs[(n, s)].to_reach(target)[0] for s in seeds) for n in names]
        rows.append(
            f"| {target} | median | {med[0]:.0f} | {med[1]:.0f} "
            f"| **{med[1] / med[0]:.1f}×** (goal ≥ 3×) |"
        )
        # Over every seed's whole budget: epochs trained per trial that reached the target, the
        # expected cost of one success, steadier than the first success of a few seeds.
        costs, cells = [], []
        for n in names:
            epochs = sum(runs[(n, s)].epochs for s in seeds)
            hits = sum(runs[(n, s)].hits(target) for s in seeds)
            costs.append(epochs / hits if hits else None)
            cells.append(f"{epochs / hits:.0f} ({hits} trials)" if hits else f"none in {epochs}")
        rows.append(
            f"| {target} | all: epochs per trial that reached it | {cells[0]} | {cells[1]} | "
            + (f"**{costs[1] / costs[0]:.1f}×** |" if costs[0] and costs[1] else "— |")
        )
    per_trial = [
        sum(runs[(n, s)].epochs for s in seeds) / sum(len(runs[(n, s)].rows) for s in seeds)
        for n in names
    ]
    rows.append(
        f"| — | all: epochs per trial | {per_trial[0]:.1f} | {per_trial[1]:.1f} "
        f"| {per_trial[1] / per_trial[0]:.1f}× |"
    )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--targets", type=float, nargs="+", default=[0.98, 1.0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--save", help="write every study's history (JSON) to this file")
    parser.add_argument("--load", nargs="+", help="no new runs: the tables of saved histories")
    parser.add_argument("--block", default="pruning", help="BENCHMARKS.md block for --write")
    parser.add_argument(
        "overrides", nargs="*", help="study settings for every study, before the options"
    )
    args = parser.parse_args()
    if args.load:  # earlier runs' histories, merged: the seeds are theirs
        runs, settings = {}, set()
        for path in args.load:
            saved = json.loads(Path(path).read_text())
            settings.add(" ".join(saved.pop(SETTINGS, [])))  # none saved: the defaults
            for key, rows in saved.items():
                c, s = key.rsplit("|", 1)
                runs[(c, int(s))] = History([(r[0], r[1], r[2]) for r in rows])
        args.seeds = sorted({s for _, s in runs})
        if len(settings) > 1:
            raise SystemExit(f"--load: the files were run with different settings: {settings}")
        args.overrides = " ".join(settings).split()
    else:
        jobs = [(c, s) for s in args.seeds for c in CONTENDERS]

        def run(job: tuple[str, int]) -> History:
            overrides = [*args.overrides, *CONTENDERS[job[0]], f"max_epochs={args.max_epochs}"]
            return run_one(overrides, job[1], args.trials, args.url)

        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = dict(zip(jobs, pool.map(run, jobs), strict=True))
    if args.save:
        saved = {f"{c}|{s}": h.rows for (c, s), h in runs.items()}
        Path(args.save).write_text(json.dumps({SETTINGS: args.overrides, **saved}))
    for (c, s), h in runs.items():
        print(f"{c:20s} seed {s}: {h.rows}")

    table = render(runs, args.seeds, args.targets)
    print(table)
    if args.write:
        source = (
            f"--load {' '.join(args.load)} --block {args.block}"
            if args.load
            else " ".join(args.overrides)
            + f" --seeds {' '.join(map(str, args.seeds))} --trials {args.trials} "
            f"--max-epochs {args.max_epochs} --block {args.block}"
        ).strip()
        trials = max(len(h.rows) for h in runs.values())
        write_block(
            args.block,
            f"`python bench/pruning.py {source} --targets {' '.join(map(str, args.targets))} "
            f"--write` ({time.strftime('%Y-%m-%d')}; "
            f"settings: {' '.join(args.overrides) or 'the defaults'}; "
            "target: best validation accuracy, "
            f"{trials} trials per study, seeds {', '.join(map(str, args.seeds))}, "
            f"{os.cpu_count()} cores, one worker per study, two studies at a time):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
