"""Benchmark 3b (issue 16): TPE's cost per trial at a large history, in one process.

The same history for both contenders: N trials of the default search space drawn at random and
scored by ``bench/coordination.py``'s zero-cost objective (median pruning, so most are pruned),
added to an in-memory study. Each contender, Optuna's ``TPESampler`` and the product's
``study.samplers.TPESampler`` (the same draws, less repeated work), then runs a few trials to warm
up and ``--asks`` trials that are timed: CPU milliseconds per trial, sampling included, storage
excluded. What remains in ours at that size is printed by ``--profile`` (cProfile, cumulative).
Usage:

    python bench/tpe_history.py [--histories 5000 20000] [--asks 30] [--profile] [--write]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402
from coordination import zero_cost  # noqa: E402

from study.config import load_config  # noqa: E402
from study.samplers import TPEConfig, TPESampler  # noqa: E402

#: The default sampler's settings (conf/sampler/tpe.yaml).
TPE = {k: v for k, v in vars(TPEConfig()).items() if k != "_target_"}


def _study(sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    return optuna.create_study(
        sampler=sampler, pruner=optuna.pruners.MedianPruner(n_warmup_steps=2)
    )


def per_trial(cls: Any, history: list[optuna.trial.FrozenTrial], space: Any, asks: int,
              profile: bool = False) -> float:  # fmt: skip
    """CPU ms per trial of ``asks`` trials on top of ``history``."""
    study = _study(cls(seed=1, **TPE))
    study.add_trials(history)
    study.optimize(lambda t: zero_cost(t, space), n_trials=3)  # caches filled, as in a worker
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    started = time.process_time()
    study.optimize(lambda t: zero_cost(t, space), n_trials=asks)
    spent = (time.process_time() - started) / asks * 1000
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--asks", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_config([]).search_space
    rows = []
    for n in args.histories:
        source = _study(optuna.samplers.RandomSampler(seed=0))
        source.optimize(lambda t: zero_cost(t, space), n_trials=n)
        history = source.get_trials(deepcopy=False)
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in history)
        plain = per_trial(optuna.samplers.TPESampler, history, space, args.asks)
        ours = per_trial(TPESampler, history, space, args.asks, args.profile)
        rows.append(
            f"| {n:,} ({pruned:,} pruned) | {plain:.0f} | {ours:.0f} | **{plain / ours:.2f}×** |"
        )
        print(rows[-1], flush=True)
    head = (
        f"`python bench/tpe_history.py --histories {' '.join(map(str, args.histories))} "
        f"--asks {args.asks} --write` ({datetime.date.today()}, optuna {optuna.__version__}, "
        "one process, in-memory storage):\n\n"
        "| history (trials) | Optuna's TPE: CPU ms per trial | ours | ratio |\n|---|---|---|---|"
    )
    table = "\n".join([head, *rows])
    print(table)
    if args.write:
        write_block("tpe-history", table)


if __name__ == "__main__":
    main()
