"""The classical baseline of time-series classification: 1-nearest-neighbour DTW, on the same split.

Each UCR/UEA set bundled with sktime keeps its own train/test split; every test series is given
the label of its nearest training series under dynamic time warping with no window (the
archive's "DTW, full window"), on the values as the archive ships them (univariate sets only).
It uses ``dtaidistance`` (C, parallel): ``pip install 'caviar-study[bench]'``. Usage:

    python bench/dtw.py [--datasets OSULeaf ACSF1 PLAID] [--znorm] [--write]

``--znorm`` z-normalises each series first (what ``data.scaling=series`` gives a network: the
shape without the loudness), to show what that loses on sets such as PLAID.

``--write`` replaces this benchmark's table in BENCHMARKS.md; the README quotes it beside the
tuned models' test accuracy on the same test split.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402

from study.data._ts import read_ts
from study.data.ucr import bundled_folder


def one_nn_dtw(dataset: str, znorm: bool = False) -> tuple[float, int, int, float]:
    """Test accuracy, the number of training and test series, and the seconds it took."""
    from dtaidistance import dtw

    folder = bundled_folder(dataset)
    train, y_train = read_ts(folder / f"{dataset}_TRAIN.ts")
    test, y_test = read_ts(folder / f"{dataset}_TEST.ts")
    if train[0].shape[1] != 1:
        raise SystemExit(f"{dataset} is multivariate; this baseline takes univariate sets")
    series = [s[:, 0].astype(np.double) for s in [*train, *test]]
    if znorm:
        series = [(s - s.mean()) / (s.std() + 1e-8) for s in series]
    n = len(train)
    started = time.perf_counter()
    distances = dtw.distance_matrix_fast(series, block=((0, n), (n, len(series))), compact=False)
    nearest = np.argmin(distances[:n, n:], axis=0)
    accuracy = float((np.asarray(y_train)[nearest] == np.asarray(y_test)).mean())
    return accuracy, n, len(test), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["OSULeaf", "ACSF1", "PLAID"])
    parser.add_argument("--znorm", action="store_true", help="each series z-normalised first")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.znorm and args.write:
        parser.error("--znorm is a check beside the table (raw values); it does not replace it")
    rows = ["| data | train / test series | 1-NN DTW test accuracy | seconds |"]
    rows.append("|---|---|---|---|")
    for name in args.datasets:
        accuracy, n_train, n_test, seconds = one_nn_dtw(name, args.znorm)
        rows.append(f"| {name} | {n_train} / {n_test} | **{accuracy:.3f}** | {seconds:.0f} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_block(
            "dtw",
            f"`python bench/dtw.py --datasets {' '.join(args.datasets)} --write` "
            f"({time.strftime('%Y-%m-%d')}; full window, the archive's own split):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
