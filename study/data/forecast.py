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

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from study.data._files import existing, read_csv, reading, require_columns
from study.data._options import BaseOptions
from study.data._sequences import FORECASTING, SequenceData, SequenceSet
from study.errors import DataError

if TYPE_CHECKING:  # torch is imported where tensors are made: configs and status need none
    import torch

#: Forecast origins an automatic validation or test part holds (fewer when the series is short).
ORIGINS = 12

#: The longest input window the search tries, as a share of the training part (``data.
#: max_input_share``): Box and Jenkins estimate autocorrelations only up to lag n/4, beyond which
#: too few pairs of steps remain to learn a dependence from.
MAX_INPUT_SHARE = 0.25


@dataclass
class _WindowOptions(BaseOptions):
    """The forecasting task: shared by every forecasting option."""

    horizon: int = 12
    #: The seasonal period (12 for monthly data): the seasonal-naive baseline, the classical
    #: models' season and the ``seasonal`` search-space choice. 1: no season.
    season: int = 12
    #: Validation and test targets: steps at the end of the series. 0 (automatic): a backtest of
    #: up to 12 rolling origins each (``horizon + 11`` steps), fewer where the series is short.
    val_size: int = 0
    test_size: int = 0
    #: Forecast log(values) (positive series with multiplicative seasonality).
    log: bool = False
    #: The search's input windows reach at most this share of the training part: a range in
    #: ``search_space.input_length`` is cut there, and the launcher says so. 1: the whole range.
    max_input_share: float = MAX_INPUT_SHARE

    def task(self) -> str:
        return FORECASTING

    def uses(self) -> tuple[str, ...]:
        return forecast_params(self.season)


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
    #: The published split: the last year, one origin.
    test_size: int = 12
    log: bool = True


#: How a trial treats the season (``search_space.seasonal``): not at all; take out the training
#: part's seasonal component (classical decomposition); or model seasonal differences, each
#: target relative to the same step of the last observed season.
SEASONAL = ("none", "decompose", "difference")

#: What a trial's network forecasts (``search_space.base``): the series itself, or what the
#: classical ARIMA model's forecast from the same origin misses (a hybrid: Zhang 2003; the M4
#: competition's winner, Smyl 2020, also put a network on top of a classical model). The ARIMA
#: model is :func:`study.baselines.arima`'s, its parameters fitted on the training part only.
BASES = ("none", "arima")


@dataclass
class LynxConfig(_WindowOptions):
    _target_: str = "study.data.forecast.load_lynx"
    name: str = "lynx"
    horizon: int = 1
    season: int = 1
    log: bool = True


#: How many series of a multi-series forecast the stored test answers keep.
ANSWERED_SERIES = 4


@dataclass
class _Scaled:
    """The series as one trial's model sees it: transformed, standardised on the training part."""

    kind: str  # one of SEASONAL
    #: What the model reads, per step, standardised (seasonal differences for ``difference``).
    series: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    #: The first step with an input (a season in, for ``difference``).
    start: int
    #: ``decompose``: the seasonal component, per step.
    seasonal: np.ndarray | None = None


@dataclass
class SeriesData(SequenceData):
    """Windows are cut per trial (``input_length``, ``seasonal``) from the raw values."""

    values: np.ndarray = field(default_factory=lambda: np.empty((0, 1)))
    train_end: int = 0
    val_end: int = 0
    horizon: int = 12
    season: int = 12
    log: bool = False
    #: The longest input window worth searching (``data.max_input_share`` of the training part;
    #: 0: no cap).
    input_cap: int = 0
    #: What the current splits were cut with (set by :meth:`for_trial`).
    scaled: _Scaled | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    task = FORECASTING

    @property
    def n_outputs(self) -> int:
        return self.horizon * self.n_features

    @property
    def max_input_length(self) -> int:
        """The longest input that still leaves one training window (without seasonal
        differences, which need a season more)."""
        return self.train_end - self.horizon

    def to(self, device: torch.device | str) -> SeriesData:
        return replace(self, train=self.train.to(device), val=self.val.to(device))

    def transformed(self) -> np.ndarray:
        """The values in the space the models work in (log when ``data.log``); computed once."""
        if "transformed" not in self._cache:
            self._cache["transformed"] = np.log(self.values) if self.log else self.values
        return self._cache["transformed"]

    def _common_scale(self) -> torch.Tensor:
        """The transformed series' standard deviation over the training part (computed once)."""
        import torch

        if "common_scale" not in self._cache:
            std = self.transformed()[: self.train_end].std(axis=0) + 1e-8
            self._cache["common_scale"] = torch.tensor(std)
        return self._cache["common_scale"]

    def _scale(self, kind: str) -> _Scaled:
        if ("scaled", kind) in self._cache:
            return self._cache["scaled", kind]
        work, s, end = self.transformed(), self.season, self.train_end
        seasonal, start = None, 0
        if kind == "difference":
            inputs, start = np.zeros_like(work), s
            inputs[s:] = work[s:] - work[:-s]
        elif kind == "decompose":  # the training part's component, repeated periodically
            seasonal = seasonal_indices(work[:end], s, len(work))
            inputs = work - seasonal
        else:
            inputs = work
        mean, std = inputs[start:end].mean(axis=0), inputs[start:end].std(axis=0) + 1e-8
        scaled = _Scaled(kind, (inputs - mean) / std, mean, std, start, seasonal)
        self._cache["scaled", kind] = scaled
        return scaled

    def classical(self) -> np.ndarray:
        """The ARIMA model's forecasts (transformed space) from every origin that has a
        season and one step of past: shape (origins, horizon, series), indexed by origin (NaN
        before the first). Its parameters are fitted on the training part only, so validation
        stays unseen; the model then filters the observed values up to each origin with them
        kept, as the classical baselines do. Computed once per data set."""
        if "classical" not in self._cache:
            from study.baselines import arima  # statsmodels: imported only where it is used

            work, h = self.transformed(), self.horizon
            fit, first = work[: self.train_end], self.season + 1
            origins = list(range(first, len(work) - h + 1))
            out = np.full((len(work) - h + 1, h, work.shape[1]), np.nan)
            _, forecaster = arima(fit[:, 0], self.season)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter from statsmodels
                for c in range(work.shape[1]):
                    out[first:, :, c] = forecaster(fit[:, c], origins, h, work[:, c])
            self._cache["classical"] = out
        return self._cache["classical"]

    def _offset(self, sc: _Scaled, origins: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """What each target is taken relative to, known at its origin: the same step of the
        last observed season (``difference``), the seasonal component (``decompose``), or 0."""
        work, s = self.transformed(), self.season
        if sc.kind == "difference":
            return work[origins[:, None] - s + np.arange(self.horizon)[None, :] % s]
        if sc.kind == "decompose":
            assert sc.seasonal is not None
            return sc.seasonal[steps]
        return np.zeros((len(origins), self.horizon, work.shape[1]))

    def _cut(
        self, sc: _Scaled, length: int, first: int, last: int, base: str = "none"
    ) -> SequenceSet:
        """Windows whose forecasts start at ``first`` ... ``last`` (inclusive).

        A target is the value minus an offset known at the origin (the seasonal component, or
        the same step of the last observed season), standardised, and made relative to the
        window's last input; ``level`` holds what to add back per target step to return to
        standardised units (see :meth:`units`). With ``base=arima`` the target is what the
        classical forecast from the origin misses, standardised, and ``level`` that forecast."""
        import torch

        work = self.transformed()
        origins = np.arange(first, last + 1)
        steps = origins[:, None] + np.arange(self.horizon)[None, :]  # (windows, horizon)
        x = np.stack([sc.series[o - length : o] for o in origins])
        last_seen = x[:, -1:, :]
        if base == "arima":
            forecast = self.classical()[origins]
            target = (work[steps] - forecast) / sc.std
            level = (forecast - sc.mean) / sc.std
        else:
            offset = self._offset(sc, origins, steps)
            target = (work[steps] - offset - sc.mean) / sc.std - last_seen
            level = last_seen + offset / sc.std

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.tensor(a, dtype=torch.float32)

        lengths = torch.full((len(origins),), length, dtype=torch.long)
        return SequenceSet(t(x - last_seen), lengths, t(target).flatten(1), t(level))

    def for_trial(self, params: dict[str, Any]) -> SeriesData:
        length = int(params["input_length"])
        kind = str(params.get("seasonal", "none")) if self.season > 1 else "none"
        if kind not in SEASONAL:
            raise DataError(f"seasonal={kind!r} is not one of {', '.join(SEASONAL)}")
        base = str(params.get("base", "none"))
        if base not in BASES:
            raise DataError(f"base={base!r} is not one of {', '.join(BASES)}")
        sc = self._scale(kind)
        if not 1 <= length <= self.max_input_length - sc.start:
            raise DataError(
                f"input_length={length} (seasonal={kind}) leaves no training window; "
                f"set search_space.input_length.high <= {self.max_input_length - sc.start}"
            )
        key = (length, kind, base)
        if key not in self._cache:
            h, end = self.horizon, len(self.values)
            # The classical forecast needs a season and a step of past before its origin.
            first = max(sc.start + length, self.season + 1 if base == "arima" else 0)
            if first > self.train_end - h:
                raise DataError(
                    f"base=arima needs a season and a step before a training window's origin; "
                    f"{self.train_end} training steps leave none: set "
                    "search_space.base.choices=[none]"
                )
            self._cache[key] = (
                self._cut(sc, length, first, self.train_end - h, base),
                self._cut(sc, length, self.train_end, self.val_end - h, base),
                self._cut(sc, length, self.val_end, end - h, base),
            )
        train, val, test = self._cache[key]
        return replace(self, train=train, val=val, test=test, scaled=sc)

    def _unscaled(self, scaled: torch.Tensor, s: SequenceSet) -> torch.Tensor:
        """Outputs or targets in the transformed space (log with ``data.log``), unscaled."""
        import torch

        assert s.level is not None and self.scaled is not None
        values = scaled.reshape(len(s), self.horizon, -1) + s.level
        std, mean = (
            torch.tensor(a, dtype=values.dtype) for a in (self.scaled.std, self.scaled.mean)
        )
        return values * std.to(values.device) + mean.to(values.device)

    def units(self, scaled: torch.Tensor, s: SequenceSet) -> torch.Tensor:
        """Outputs or targets back in the data's own units, shape (windows, horizon, series)."""
        values = self._unscaled(scaled, s)
        return values.exp() if self.log else values

    def loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return F.mse_loss(outputs, y)

    def eval_loss(self, outputs: torch.Tensor, s: SequenceSet) -> float:
        """The mean squared error in one scale for every trial (the transformed series'
        standard deviation over the training part), whatever the trial's seasonal treatment:
        trials stay comparable, for the sampler and the pruner alike."""
        return self._common_mse(self._unscaled(outputs, s), s)

    def _common_mse(self, forecast: torch.Tensor, s: SequenceSet) -> float:
        """The mean squared error of forecasts of the transformed series (log with
        ``data.log``, unscaled) against the split's targets, in the common scale."""
        err = forecast - self._unscaled(s.y, s)
        return float((err.double() / self._common_scale().to(err.device)).pow(2).mean())

    def score(self, outputs: torch.Tensor, s: SequenceSet) -> dict[str, float]:
        return forecast_scores(self.units(outputs, s), self.units(s.y, s))

    def ensemble_score(self, members: list[tuple[SequenceData, torch.Tensor]]) -> dict[str, float]:
        """Forecasts averaged in the data's units (members may differ in window and transform)."""
        return forecast_scores(self.averaged(members), self.units(self.test.y, self.test))

    def combinable(self, outputs: torch.Tensor, s: SequenceSet) -> torch.Tensor:
        """Forecasts in the data's units: members may differ in window and transform."""
        return self.units(outputs, s)

    def combined_loss(self, mean: torch.Tensor, s: SequenceSet) -> float:
        """Averaged forecasts (in the data's units) scored as :meth:`eval_loss` scores one
        model's: the mean squared error of the transformed series in the common scale, so one
        member alone gets its trial's value."""
        return self._common_mse(mean.clamp_min(1e-12).log() if self.log else mean, s)

    def answers(self, members: list[tuple[SequenceData, torch.Tensor]]) -> dict[str, Any]:
        """The test forecasts in the data's units, averaged over the members, beside the actual
        values from a few seasons before the first test origin (the first
        :data:`ANSWERED_SERIES` series): what the report draws as forecast against actual."""
        pred = self.averaged(members)
        first, last = self.origins("test")
        shown = min(self.n_features, ANSWERED_SERIES)
        start = max(0, first - 3 * max(self.horizon, self.season))
        return {
            "series": shown,
            "start": start,
            "actual": self.values[start:, :shown].tolist(),
            "origins": list(range(first, last + 1)),
            "forecast": pred[:, :, :shown].tolist(),
        }

    def averaged(self, members: list[tuple[SequenceData, torch.Tensor]]) -> torch.Tensor:
        """The members' test forecasts in the data's units, averaged: (windows, horizon, series)."""
        import torch

        views = [(view, out) for view, out in members if isinstance(view, SeriesData)]
        return torch.stack([view.combinable(out, view.test) for view, out in views]).mean(0)

    def origins(self, split: str) -> tuple[int, int]:
        """The first and last forecast origin of ``val`` or ``test``."""
        if split == "val":
            return self.train_end, self.val_end - self.horizon
        return self.val_end, len(self.values) - self.horizon


def forecast_params(season: int) -> tuple[str, ...]:
    """The search-space parameters a forecasting task uses (``seasonal`` only with a season)."""
    if season > 1:
        return ("input_length", "seasonal", "highway", "base")
    return ("input_length", "highway", "base")


def seasonal_indices(fit: np.ndarray, season: int, steps: int) -> np.ndarray:
    """The additive seasonal component of ``fit`` (classical decomposition: a centred moving
    average takes out the trend, each phase's mean detrended value is its index), repeated for
    ``steps`` steps from the first."""
    from statsmodels.tsa.seasonal import seasonal_decompose  # a second to import: only here

    component = seasonal_decompose(fit, period=season, model="additive").seasonal
    return np.asarray(component).reshape(len(fit), -1)[np.arange(steps) % season]


def seasonal_naive(values: np.ndarray, first: int, last: int, horizon: int, season: int) -> dict:
    """Each step forecast by the value one season earlier (repeated over the horizon)."""
    import torch

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


def part_sizes(
    steps: int, horizon: int, season: int, val_size: int, test_size: int
) -> tuple[int, int]:
    """Validation and test steps: as given, or (0) grown one origin at a time up to
    :data:`ORIGINS` while the training part keeps at least 60 % of the series."""
    sizes = {"val": val_size or horizon, "test": test_size or horizon}
    auto = [k for k, given in (("val", val_size), ("test", test_size)) if not given]
    floor = max(2 * horizon + 1, season + 1, math.ceil(0.6 * steps))
    for _ in range(ORIGINS - 1):
        for k in auto:
            if steps - sizes["val"] - sizes["test"] > floor:
                sizes[k] += 1
    return sizes["val"], sizes["test"]


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
    max_input_share: float = MAX_INPUT_SHARE,
    seed: int = 0,  # windows are deterministic; accepted so every option takes the seed
) -> SeriesData:
    import torch

    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"{source}: row {row + 1} has a NaN or missing value; fill or drop it")
    if horizon < 1:
        raise DataError(f"data.horizon={horizon} must be at least 1")
    if season < 1:
        raise DataError(f"data.season={season} must be at least 1 (1: no season)")
    if (val_size and val_size < horizon) or (test_size and test_size < horizon):
        raise DataError("data.val_size and data.test_size must be at least data.horizon")
    if not 0 < max_input_share <= 1:
        raise DataError(
            f"data.max_input_share={max_input_share} must be in (0, 1]; "
            f"{MAX_INPUT_SHARE} by default, 1 searches the whole input_length range"
        )
    val_size, test_size = part_sizes(len(values), horizon, season, val_size, test_size)
    val_end = len(values) - test_size
    train_end = val_end - val_size
    if train_end < 2 * horizon or train_end <= season:
        raise DataError(
            f"{source}: {len(values)} steps leave {train_end} for training; need more than "
            f"2 x horizon ({2 * horizon}) and one season ({season})"
        )
    if log and (values <= 0).any():
        raise DataError(f"{source}: data.log=true needs positive values; set data.log=false")
    empty = SequenceSet(torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0))
    baseline = {
        split: seasonal_naive(values, first, last, horizon, season)
        for split, first, last in (
            ("val", train_end, val_end - horizon),
            ("test", val_end, len(values) - horizon),
        )
    }
    val_origins = val_size - horizon + 1
    notes = []
    if val_origins < ORIGINS:
        notes.append(
            f"validation scores {val_origins} forecast origin(s) ({val_size} steps at "
            f"data.horizon={horizon}): trials are chosen on few forecasts; raise data.val_size "
            "(each step adds an origin) or give a longer series"
        )
    return SeriesData(
        name=name,
        train=empty,
        val=empty,
        test=empty,
        n_features=values.shape[1],
        classes=[],
        uses=forecast_params(season),
        info={
            "steps": len(values),
            "train": train_end,
            "val": val_size,
            "test": test_size,
            "horizon": horizon,
            "val_origins": val_origins,
            "test_origins": test_size - horizon + 1,
            "seasonal_naive": baseline,
        },
        notes=notes,
        values=values,
        train_end=train_end,
        val_end=val_end,
        horizon=horizon,
        season=season,
        log=log,
        input_cap=max(1, math.floor(max_input_share * train_end)) if max_input_share < 1 else 0,
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
        frame = read_csv(file)
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


def _bundled(dataset: str) -> np.ndarray:
    """A series sktime ships (``sktime.datasets.load_<dataset>``), read offline."""
    import sktime.datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(getattr(sktime.datasets, f"load_{dataset}")().to_numpy())


def load_airline(name: str = "airline", **options: Any) -> SeriesData:
    """Monthly airline passengers 1949-1960 (Box & Jenkins), shipped with sktime."""
    return build_series(name, _bundled("airline"), source="airline", **options)


def load_lynx(name: str = "lynx", **options: Any) -> SeriesData:
    """Lynx trappings in Canada's Mackenzie River district, yearly 1821-1934 (Elton & Nicholson
    1942; Campbell & Walker 1977), shipped with sktime."""
    return build_series(name, _bundled("lynx"), source="lynx", **options)
