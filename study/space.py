"""The search space: YAML bounds in, ``trial.suggest_*`` calls out.

Every tunable parameter is a :class:`Param`. One of three forms:

- ``value: x`` fixes the parameter (any range or choices beside it are ignored);
- ``choices: [a, b]`` makes it categorical;
- ``low``/``high`` (with ``log``, ``step`` and ``integer``) make it a numeric range.

Define-by-run handles the conditional parameters: ``dropout`` (between stacked layers) only
exists when ``num_layers > 1``; ``embedding_dim`` and ``max_length`` only for text data,
``input_length`` only for forecasting, ``fcn`` only for numeric series classification,
``nb_ratios`` and ``ngrams`` only for text (the data says which it uses).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from study.data.forecast import BASES, SEASONAL
from study.errors import ConfigError
from study.model_options import CELL_NAMES, LR_SCHEDULES, OPTIMIZER_NAMES, POOLINGS, STEMS


@dataclass
class Param:
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    choices: list[Any] | None = None
    value: Any = None


def _p(**kw: Any) -> Any:
    return field(default_factory=lambda: Param(**kw))


@dataclass
class SearchSpace:
    """The parameters a trial draws; defaults here are overridden by ``conf/search_space``."""

    cell: Param = _p(choices=["lstm"])
    hidden_size: Param = _p(low=16, high=256, log=True, integer=True)
    num_layers: Param = _p(low=1, high=3, integer=True)
    dropout: Param = _p(low=0.0, high=0.5)
    input_dropout: Param = _p(low=0.0, high=0.3)
    bidirectional: Param = _p(choices=[False, True])
    #: How the outputs over the steps become one vector: last state, max or mean.
    pooling: Param = _p(choices=["last"])
    #: A strided convolutional front-end before the recurrence: none, conv, or auto (conv only
    #: when the data's longest sequence exceeds stem_steps).
    stem: Param = _p(value="auto")
    #: With a stem: the most steps the recurrence sees (the stem halves the length until then).
    stem_steps: Param = _p(value=128)
    #: Numeric series classification: a fully convolutional branch beside the recurrence
    #: (LSTM-FCN).
    fcn: Param = _p(choices=[False])
    lr: Param = _p(low=1e-4, high=3e-2, log=True)
    #: The learning rate over the epochs: constant, or cosine (annealed towards 0 at max_epochs).
    lr_schedule: Param = _p(choices=["constant"])
    batch_size: Param = _p(choices=[16, 32, 64])
    optimizer: Param = _p(choices=["adam"])
    weight_decay: Param = _p(low=1e-6, high=1e-2, log=True)
    clip_norm: Param = _p(low=0.1, high=10.0, log=True)
    #: Text: the size of the learned token embedding, and the tokens kept per text.
    embedding_dim: Param = _p(choices=[32, 64, 128])
    max_length: Param = _p(choices=[32, 64, 128])
    #: Text: each token's naive Bayes log-count ratios beside its embedding.
    nb_ratios: Param = _p(choices=[False])
    #: Text: a linear model of the words and word pairs added to the network's output.
    ngrams: Param = _p(choices=[False])
    #: Forecasting: the steps of history the model sees.
    input_length: Param = _p(low=12, high=48, step=12, integer=True)
    #: Forecasting with a season: none, decompose (take the training part's seasonal component
    #: out) or difference (forecast relative to the same step one season earlier).
    seasonal: Param = _p(choices=["none", "decompose", "difference"])
    #: Forecasting: add a linear map of the input window to the network's forecast.
    highway: Param = _p(choices=[False, True])
    #: Forecasting: what the network forecasts: the series (none), or what the classical ARIMA
    #: model's forecast misses (arima: a hybrid, the network on top of the classical model).
    base: Param = _p(choices=["none"])


#: Parameters that exist only for the data that uses them (``SequenceData.uses``).
DATA_PARAMS = (
    "embedding_dim",
    "max_length",
    "nb_ratios",
    "ngrams",
    "input_length",
    "seasonal",
    "highway",
    "base",
    "fcn",
)


#: Parameters whose values name something the model or the trainer builds.
_ALLOWED_CHOICES = {
    "cell": CELL_NAMES,
    "optimizer": OPTIMIZER_NAMES,
    "lr_schedule": LR_SCHEDULES,
    "pooling": POOLINGS,
    "stem": STEMS,
    "seasonal": SEASONAL,
    "base": BASES,
}


#: Numeric parameters' valid values: (the lowest, whether the lowest itself is allowed, whether
#: an integer); the dropouts also stay below 1. A value outside fails at once, not every trial.
_BOUNDS: dict[str, tuple[float, bool, bool]] = {
    "hidden_size": (1, True, True),
    "num_layers": (1, True, True),
    "dropout": (0.0, True, False),
    "input_dropout": (0.0, True, False),
    "stem_steps": (1, True, True),
    "lr": (0.0, False, False),
    "batch_size": (1, True, True),
    "weight_decay": (0.0, True, False),
    "clip_norm": (0.0, False, False),
    "embedding_dim": (1, True, True),
    "max_length": (1, True, True),
    "input_length": (1, True, True),
}


def _check_bounds(key: str, name: str, values: list[Any]) -> None:
    if name not in _BOUNDS:
        return
    low, closed, integer = _BOUNDS[name]
    below_one = name.endswith("dropout")
    for v in values:
        number = isinstance(v, int | float) and not isinstance(v, bool)
        ok = number and (low <= v if closed else low < v)
        ok = ok and (not integer or float(v).is_integer()) and (not below_one or v < 1.0)
        if not ok:
            kind = "an integer" if integer else "a number"
            side = f">= {low:g}" if closed else f"> {low:g}"
            raise ConfigError(
                f"{key}: {v!r} is invalid; give {kind} {side}{' and < 1' if below_one else ''}"
            )


def _kind(p: Param) -> str:
    if p.value is not None:
        return "fixed"
    if p.choices is not None:
        return "categorical"
    return "range"


def validate(space: SearchSpace) -> None:
    """Fail with one line naming ``search_space.<name>`` when a parameter cannot be sampled."""
    for f in fields(space):
        name, p = f.name, getattr(space, f.name)
        key = f"search_space.{name}"
        kind = _kind(p)
        allowed = _ALLOWED_CHOICES.get(name)
        if kind == "categorical" and not p.choices:
            raise ConfigError(f"{key}.choices is empty; give at least one value")
        if kind == "range":
            if p.low is None or p.high is None:
                raise ConfigError(f"{key} needs low and high, choices, or a fixed value")
            if p.low > p.high:
                raise ConfigError(
                    f"{key} is an empty range (low={p.low} > high={p.high}); set low <= high"
                )
            if p.log and p.low <= 0:
                raise ConfigError(f"{key}.low must be > 0 on a log scale; raise low or log=false")
            if p.log and p.step is not None:
                raise ConfigError(f"{key}: step and log cannot be combined; drop one")
            if p.step is not None and p.step <= 0:
                raise ConfigError(f"{key}.step must be > 0")
        values = [p.value] if kind == "fixed" else (p.choices or [])
        _check_bounds(key, name, values if kind != "range" else [p.low, p.high])
        if allowed is not None:
            for v in values:
                if v not in allowed:
                    raise ConfigError(f"{key}: {v!r} is not one of {', '.join(allowed)}")


def distribution(p: Param) -> BaseDistribution:
    """The Optuna distribution a searched (not fixed) parameter is drawn from."""
    if _kind(p) == "categorical":
        return CategoricalDistribution(list(p.choices or []))
    assert p.low is not None and p.high is not None
    if p.integer:
        step = 1 if p.step is None else int(p.step)
        return IntDistribution(int(p.low), int(p.high), log=p.log, step=step)
    return FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def _suggest_one(trial: optuna.Trial, name: str, p: Param) -> Any:
    kind = _kind(p)
    if kind == "fixed":
        return p.value
    d = distribution(p)
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, list(d.choices))
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    assert isinstance(d, FloatDistribution)
    return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


def upper(p: Param) -> Any:
    """The largest value a parameter can take."""
    kind = _kind(p)
    if kind == "fixed":
        return p.value
    if kind == "categorical":
        return max(p.choices or [])
    assert p.high is not None
    return int(p.high) if p.integer else p.high


def cut(p: Param, most: float) -> Param | None:
    """A range cut to end at ``most`` or below (on its step grid, never below ``low``); None
    when there is nothing to cut: a fixed value or explicit choices are the user's own."""
    if _kind(p) != "range":
        return None
    assert p.low is not None and p.high is not None
    high = max(p.low, most)
    if p.step is not None:
        high = p.low + math.floor((high - p.low) / p.step + 1e-9) * p.step
    if p.integer:
        high = math.floor(high)
    if high >= p.high:
        return None
    return replace(p, high=high)


def middle(p: Param) -> Any:
    """A parameter's plain default: its fixed value, its first choice, or the middle of its range
    (geometric on a log scale, on the step grid for integers and steps)."""
    kind = _kind(p)
    if kind == "fixed":
        return p.value
    if kind == "categorical":
        return (p.choices or [None])[0]
    assert p.low is not None and p.high is not None
    mid = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
    if p.step is not None:
        mid = p.low + round((mid - p.low) / p.step) * p.step
    return int(round(mid)) if p.integer else float(mid)


def contains(p: Param, value: Any) -> bool:
    """Whether a trial of this space can take the value."""
    kind = _kind(p)
    if kind == "fixed":
        return bool(value == p.value)
    if kind == "categorical":
        return value in (p.choices or [])
    assert p.low is not None and p.high is not None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if p.integer and int(value) != value:
        return False
    if p.step is not None:
        steps = (value - p.low) / p.step
        if abs(steps - round(steps)) > 1e-9:
            return False
    return bool(p.low <= value <= p.high)


def names(space: SearchSpace, uses: tuple[str, ...] = ()) -> list[str]:
    """The parameters a trial of this space and data has."""
    return _names(space, uses)


def active(name: str, chosen: dict[str, Any]) -> bool:
    """Whether a parameter exists given the others (dropout needs a stacked network)."""
    return _active(name, chosen)


def _active(name: str, chosen: dict[str, Any]) -> bool:
    # Dropout between layers only exists in a stacked network.
    return not (name == "dropout" and chosen.get("num_layers", 1) <= 1)


def _names(space: SearchSpace, uses: tuple[str, ...]) -> list[str]:
    return [f.name for f in fields(space) if f.name not in DATA_PARAMS or f.name in uses]


def suggest(trial: optuna.Trial, space: SearchSpace, uses: tuple[str, ...] = ()) -> dict[str, Any]:
    """Draw one configuration; returns every parameter the data uses, fixed ones included.

    A worker's storage writes the drawn parameters in one transaction
    (:meth:`study.trial_cache.TrialCache.params_in_one_transaction`); others one by one."""
    chosen: dict[str, Any] = {}
    with _one_transaction(trial):
        for name in _names(space, uses):
            if _active(name, chosen):
                chosen[name] = _suggest_one(trial, name, getattr(space, name))
            else:
                chosen[name] = 0.0
    return chosen


def _one_transaction(trial: optuna.Trial) -> contextlib.AbstractContextManager[None]:
    storage = getattr(trial, "storage", None)  # an optuna.Trial's (a FixedTrial has none)
    batch = getattr(storage, "params_in_one_transaction", None)  # a worker's trial cache
    return contextlib.nullcontext() if batch is None else batch()


def _grid_values(name: str, p: Param) -> list[Any]:
    kind = _kind(p)
    if kind == "fixed":
        return [p.value]
    if kind == "categorical":
        return list(p.choices or [])
    if p.step is None and not p.integer:
        raise ConfigError(
            f"search_space.{name} is a continuous range; grid search needs "
            f"search_space.{name}.choices=[...], a step, or a fixed value"
        )
    assert p.low is not None and p.high is not None
    step = p.step if p.step is not None else 1
    n = int(math.floor((p.high - p.low) / step + 1e-9)) + 1
    vals = [p.low + i * step for i in range(n)]
    return [int(v) for v in vals] if p.integer else vals


def grid_points(space: SearchSpace, uses: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every distinct point of a discrete space, inactive parameters dropped, in a stable order."""
    names = [n for n in _names(space, uses) if _kind(getattr(space, n)) != "fixed"]
    axes = [_grid_values(n, getattr(space, n)) for n in names]
    points: list[dict[str, Any]] = []
    seen: set[tuple[tuple[str, Any], ...]] = set()
    for combo in itertools.product(*axes):
        point = dict(zip(names, combo, strict=True))
        point = {k: v for k, v in point.items() if _active(k, point)}
        key = tuple(sorted(point.items()))
        if key not in seen:
            seen.add(key)
            points.append(point)
    return points
