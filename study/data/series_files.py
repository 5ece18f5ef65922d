"""The user's own time-series classification files: ``.ts``, ``.npz`` or a long ``.csv``.

- ``.ts``: the sktime/UEA format (multivariate, variable length).
- ``.npz``: ``x`` of shape (N, T) or (N, T, channels), NaN after a sequence's end; ``y`` (N,).
- ``.csv``: one row per time step, rows in time order; ``id_column`` names the sequence,
  ``label_column`` its class, every other column is a numeric channel.

Without ``test_path`` the examples are split 80/10/10 (stratified, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.data._files import existing, read_csv, reading, require_columns
from study.data._options import SeriesOptions
from study.data._sequences import SequenceData, build_splits
from study.data._ts import read_ts
from study.errors import DataError


@dataclass
class SeriesFilesConfig(SeriesOptions):
    _target_: str = "study.data.series_files.load"
    name: str = "series"
    train_path: str = ""
    #: Optional: without it the test set is drawn from train_path.
    test_path: str = ""
    id_column: str = "id"
    label_column: str = "label"
    #: Without test_path: the share of the examples (stratified, seeded) that becomes the test set.
    test_fraction: float = 0.1


def _npz(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    with reading(path), np.load(path, allow_pickle=False) as f:
        if "x" not in f or "y" not in f:
            raise DataError(f"{path}: needs arrays 'x' and 'y' (found {', '.join(f.files)})")
        x, y = np.asarray(f["x"], dtype=np.float32), np.asarray(f["y"])
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or len(x) != len(y):
        raise DataError(f"{path}: 'x' must be (N, T) or (N, T, channels) with N = len(y)")
    seqs = []
    for i, s in enumerate(x):
        ended = np.isnan(s).all(axis=1)
        n = int(np.argmax(ended)) if ended.any() else len(s)
        if np.isnan(s[:n]).any() or not np.isnan(s[n:]).all():
            raise DataError(f"{path}: sequence {i} has NaN values before its end")
        seqs.append(s[:n])
    return seqs, y


def _csv(path: Path, id_column: str, label_column: str) -> tuple[list[np.ndarray], np.ndarray]:
    import pandas as pd

    with reading(path):
        frame = read_csv(path)
    require_columns(path, frame, [("id_column", id_column), ("label_column", label_column)])
    channels = frame.drop(columns=[id_column, label_column])
    bad = [c for c in channels.columns if not pd.api.types.is_numeric_dtype(channels[c])]
    if bad:
        raise DataError(f"{path}: column {bad[0]!r} is not numeric")
    seqs, labels = [], []
    for _, group in frame.groupby(id_column, sort=False):
        if group[label_column].nunique() > 1:
            raise DataError(f"{path}: sequence {group[id_column].iloc[0]!r} has several labels")
        seqs.append(group[channels.columns].to_numpy(dtype=np.float32))
        labels.append(group[label_column].iloc[0])
    return seqs, np.asarray(labels)


def _read(path: Path, id_column: str, label_column: str) -> tuple[list[np.ndarray], np.ndarray]:
    kind = path.suffix.lower()
    if kind == ".ts":
        return read_ts(path)
    if kind == ".npz":
        return _npz(path)
    if kind == ".csv":
        return _csv(path, id_column, label_column)
    raise DataError(f"{path}: use a .ts, .npz or .csv file")


def load(
    name: str,
    train_path: str,
    test_path: str = "",
    id_column: str = "id",
    label_column: str = "label",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    scaling: str = "auto",
) -> SequenceData:
    train = existing("data.train_path", train_path)
    seqs, labels = _read(train, id_column, label_column)
    test_seqs = test_labels = None
    if test_path:
        test_seqs, test_labels = _read(
            existing("data.test_path", test_path), id_column, label_column
        )
    return build_splits(
        name,
        seqs,
        labels,
        test_seqs,
        test_labels,
        val_fraction=val_fraction,
        seed=seed,
        test_fraction=test_fraction,
        source=str(train),
        scaling=scaling,
    )
