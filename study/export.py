"""Every trial as tables: one row a trial, and one row an epoch of every learning curve.

``trials``: Optuna's own ``trials_dataframe`` (number, state, value (the study's metric), start,
end, ``params_*``), plus ``duration_s``, ``epochs`` and the labels and best-epoch metrics a
reader filters on. ``curves``: trial, state, fold, epoch, step and every recorded train and
validation metric. Both are written as CSV and as Parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from study.rdb import COPIED

#: User attributes worth a column of their own (the rest stay in the database).
COLUMNS = (
    "iteration",
    COPIED,
    "worker",
    "device",
    "best_epoch",
    "train_examples",
    "val_accuracy",
    "val_f1",
    "val_rmse",
    "val_mae",
    "val_mape",
    "fail_reason",
)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    frame = study.trials_dataframe(
        attrs=(
            "number",
            "state",
            "value",
            "datetime_start",
            "datetime_complete",
            "duration",
            "params",
        )
    )
    if frame.empty:
        return frame
    # Optuna names the value column after the metric (value_val_loss); one name for every study.
    frame = frame.rename(columns=lambda c: "value" if c.startswith("value_") else c)
    trials = study.get_trials(deepcopy=False)
    for key in COLUMNS:
        values = [t.user_attrs.get(key) for t in trials]
        if any(v is not None for v in values):
            frame[key] = values
    frame["epochs"] = [len(t.user_attrs.get("curve") or []) for t in trials]
    frame["duration_s"] = frame["duration"].dt.total_seconds()
    return frame.drop(columns=["duration"])


def curves_frame(study: optuna.Study) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for t in study.get_trials(deepcopy=False):
        for row in t.user_attrs.get("curve") or []:
            rows.append({"trial": t.number, "state": t.state.name, **row})
    return pd.DataFrame(rows)


def write(study: optuna.Study, folder: Path) -> list[Path]:
    """Write trials.csv, trials.parquet, curves.csv and curves.parquet; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("trials", trials_frame(study)), ("curves", curves_frame(study))):
        for suffix in ("csv", "parquet"):
            path = folder / f"{name}.{suffix}"
            if suffix == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            written.append(path)
    return written
