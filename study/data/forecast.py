"""Forecasting: the next ``horizon`` values of one or more series from the last ``input_length``.

Splits are chronological, never shuffled across time: the last ``test_size`` steps are the test
targets, the ``val_size`` before them the validation targets, everything earlier trains. Inputs
may reach back across a boundary (a forecast sees the past), targets never do. Values are
optionally log-transformed, standardised with statistics of the training part only, and every
window is made relative to its last observed value, so a trending series stays in range.
``input_length`` is a search-space parameter; ``horizon`` is the task's and fixed.
Scores are in the data's own units: RMSE, MAE and MAPE (%), next to a seasonal-naive forecast.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from study.data._files import existing, reading, require_columns
from study.data._options import BaseOptions
from study.data._sequences import FORECASTING, SequenceData, SequenceSet
from study.errors import DataError


@dataclass
class _WindowOptions(BaseOptions):
    """The forecasting task: shared by every forecasting option."""

    horizon: int = 12
    #: The seasonal period of the seasonal-naive baseline (12 for monthly data).
    season: int = 12
    #: Validation and test targets: steps at the end of the series (0: one horizon each).
    val_size: int = 0
    test_size: int = 0
    #: Forecast log(values) (positive series with multiplicative seasonality).
    log: bool = False

    def task(self) -> str:
        return FORECASTING

    def uses(self) -> tuple[str, ...]:
        return ("input_length",)


@dataclass
class ForecastConfig(_WindowOptions):
    _target_: str = "study.data.forecast.load"
    name: str = "forecast"
    path: str = ""
    #: Optional: rows are sorted by it (dates or numbers). Without it, file order is time order.
    time_column: str = ""
    #: The series to forecast; empty: every numeric column but the time column.
    target_columns: list[str] = field(default_factory=list)


@dataclass
class AirlineConfig(_WindowOptions):
    _target_: str = "study.data.forecast.load_airline"
    name: str = "airline"
    log: bool = True


@dataclass
class SeriesData(SequenceData):
    """Windows are cut per trial (``input_length``); the scaled series stays on the device."""

    series: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    train_end: int = 0
    val_end: int = 0
    horizon: int = 12
    mean: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    std: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    log: bool = False
    _windows: dict[int, tuple[SequenceSet, SequenceSet, SequenceSet]] = field(
        default_factory=dict, repr=False
    )

    task = FORECASTING

    @property
    def n_outputs(self) -> int:
        return self.horizon * self.n_features

    @property
    def max_input_length(self) -> int:
        """The longest input that still leaves one training window."""
        return self.train_end - self.horizon

    def to(self, device: torch.device | str) -> SeriesData:
        return replace(self, series=self.series.to(device), _windows={})

    def _cut(self, length: int, first: int, last: int) -> SequenceSet:
        """Windows whose forecasts start at ``first`` ... ``last`` (inclusive)."""
        s, h = self.series, self.horizon
        origins = range(first, last + 1)
        x = torch.stack([s[o - length : o] for o in origins])
        y = torch.stack([s[o : o + h] for o in origins])
        level = x[:, -1, :]
        lengths = torch.full((len(origins),), length, dtype=torch.long)
        return SequenceSet(x - level[:, None], lengths, (y - level[:, None]).flatten(1), level)

    def for_trial(self, params: dict[str, Any]) -> SeriesData:
        length = int(params["input_length"])
        if not 1 <= length <= self.max_input_length:
            raise DataError(
                f"input_length={length} leaves no training window; "
                f"set search_space.input_length.high <= {self.max_input_length}"
            )
        if length not in self._windows:
            h, end = self.horizon, len(self.series)
            self._windows[length] = (
                self._cut(length, length, self.train_end - h),
                self._cut(length, self.train_end, self.val_end - h),
                self._cut(length, self.val_end, end - h),
            )
        train, val, test = self._windows[length]
        return replace(self, train=train, val=val, test=test)

    def units(self, scaled: torch.Tensor, s: SequenceSet) -> torch.Tensor:
        """Outputs or targets back in the data's own units, shape (windows, horizon, series)."""
        assert s.level is not None
        values = scaled.reshape(len(s), self.horizon, -1) + s.level[:, None, :]
        values = values * self.std.to(values.device) + self.mean.to(values.device)
        return values.exp() if self.log else values

    def loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, y)

    def score(self, outputs: torch.Tensor, s: SequenceSet) -> dict[str, float]:
        return forecast_scores(self.units(outputs, s), self.units(s.y, s))


def seasonal_naive(values: np.ndarray, first: int, last: int, horizon: int, season: int) -> dict:
    """Each step forecast by the value one season earlier (repeated over the horizon)."""
    pred, true = [], []
    for o in range(first, last + 1):
        pred.append([values[o - season + (k % season)] for k in range(horizon)])
        true.append(values[o : o + horizon])
    return forecast_scores(torch.tensor(np.array(pred)), torch.tensor(np.array(true)))


def forecast_scores(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    err = (pred - true).double()
    return {
        "rmse": float(err.pow(2).mean().sqrt()),
        "mae": float(err.abs().mean()),
        "mape": float((err.abs() / true.double().abs().clamp(min=1e-12)).mean() * 100),
    }


def build_series(
    name: str,
    values: np.ndarray,
    *,
    source: str,
    horizon: int,
    season: int,
    val_size: int,
    test_size: int,
    log: bool,
    seed: int = 0,  # windows are deterministic; accepted so every option takes the seed
) -> SeriesData:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"{source}: row {row + 1} has a NaN or missing value; fill or drop it")
    if horizon < 1:
        raise DataError(f"data.horizon={horizon} must be at least 1")
    val_size, test_size = val_size or horizon, test_size or horizon
    if val_size < horizon or test_size < horizon:
        raise DataError("data.val_size and data.test_size must be at least data.horizon")
    val_end = len(values) - test_size
    train_end = val_end - val_size
    if train_end < 2 * horizon or train_end <= season:
        raise DataError(
            f"{source}: {len(values)} steps leave {train_end} for training; need more than "
            f"2 x horizon ({2 * horizon}) and one season ({season})"
        )
    if log and (values <= 0).any():
        raise DataError(f"{source}: data.log=true needs positive values; set data.log=false")
    work = np.log(values) if log else values
    mean, std = work[:train_end].mean(axis=0), work[:train_end].std(axis=0) + 1e-8
    scaled = torch.tensor((work - mean) / std, dtype=torch.float32)
    empty = SequenceSet(torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0))
    baseline = {
        split: seasonal_naive(values, first, last, horizon, season)
        for split, first, last in (
            ("val", train_end, val_end - horizon),
            ("test", val_end, len(values) - horizon),
        )
    }
    return SeriesData(
        name=name,
        train=empty,
        val=empty,
        test=empty,
        n_features=values.shape[1],
        classes=[],
        uses=("input_length",),
        info={
            "steps": len(values),
            "train": train_end,
            "val": val_size,
            "test": test_size,
            "horizon": horizon,
            "seasonal_naive": baseline,
        },
        series=scaled,
        train_end=train_end,
        val_end=val_end,
        horizon=horizon,
        mean=torch.tensor(mean, dtype=torch.float32),
        std=torch.tensor(std, dtype=torch.float32),
        log=log,
    )


def load(
    name: str,
    path: str,
    time_column: str = "",
    target_columns: list[str] | None = None,
    **options: Any,
) -> SeriesData:
    """A CSV of the user's; ``options`` are :class:`_WindowOptions`."""
    import pandas as pd

    file = existing("data.path", path)
    with reading(file):
        frame = pd.read_csv(file)
    if time_column:
        require_columns(file, frame, [("time_column", time_column)])
        order = pd.to_datetime(frame[time_column], errors="coerce")
        if order.isna().any():
            order = pd.to_numeric(frame[time_column], errors="coerce")
        if order.isna().any():
            raise DataError(f"{file}: column {time_column!r} holds neither dates nor numbers")
        frame = frame.iloc[np.argsort(order.to_numpy(), kind="stable")]
    targets = list(target_columns or [c for c in frame.columns if c != time_column])
    require_columns(file, frame, [("target_columns", c) for c in targets])
    bad = [c for c in targets if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise DataError(f"{file}: column {bad[0]!r} is not numeric")
    return build_series(name, frame[targets].to_numpy(), source=str(file), **options)


def load_airline(name: str = "airline", **options: Any) -> SeriesData:
    """Monthly airline passengers 1949-1960 (Box & Jenkins), shipped with sktime."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sktime.datasets import load_airline as sktime_airline

        values = sktime_airline().to_numpy()
    return build_series(name, values, source="airline", **options)
