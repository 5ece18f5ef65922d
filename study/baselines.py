"""The classical models beside the tuned one, scored on the same test targets as the RNN, so a
user sees at once whether the search paid off.

- Forecasting: seasonal naive (the last value without a season); exponential smoothing (ETS,
  its trend and season chosen by AICc); and ARIMA: the airline model SARIMA(0,1,1)(0,1,1) with
  a season, an autoregression AR(p) (p by AIC) without one. Each is fitted on the part the
  final model trained on (the training and validation parts, in the data's own transform: log
  with ``data.log``), then filters the observed values up to each test origin with its fitted
  parameters kept, and forecasts ``horizon`` steps from there, as the RNN does.
- Text: TF-IDF of words and word pairs, then logistic regression (its regularisation chosen on
  the validation split), fitted on the training split's texts.

Numeric sequence classification has no baseline here: its classical one, 1-NN DTW, is
``bench/dtw.py`` (minutes to hours on long sets).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from study.data import SequenceData
from study.data.forecast import SeriesData, forecast_scores, seasonal_naive
from study.data.text import TextData

log = logging.getLogger(__name__)

#: A forecaster: (fit part, origins, horizon, full series) -> forecasts (origins, horizon).
Forecaster = Callable[[np.ndarray, list[int], int, np.ndarray], np.ndarray]


def for_test(data: SequenceData) -> dict[str, dict[str, float]]:
    """Each classical model's test scores, by its name (empty when there is none)."""
    if isinstance(data, SeriesData):
        return forecasts(data)
    if isinstance(data, TextData):
        return {"TF-IDF + logistic regression": tfidf_logistic(data)}
    return {}


def best(baselines: dict[str, dict[str, float]], metric: str) -> tuple[str, float] | None:
    """The strongest baseline on ``metric`` (``rmse``: lowest; ``accuracy``: highest)."""
    scored = [(name, s[metric]) for name, s in baselines.items() if metric in s]
    if not scored:
        return None
    pick = min if metric in ("rmse", "mae", "mape") else max
    return pick(scored, key=lambda pair: pair[1])


# --- forecasting ---------------------------------------------------------------------------


def forecasts(data: SeriesData) -> dict[str, dict[str, float]]:
    import torch

    first, last = data.origins("test")
    origins = list(range(first, last + 1))
    values, h = data.values, data.horizon
    truth = np.stack([values[o : o + h] for o in origins])
    naive = "seasonal naive" if data.season > 1 else "naive (last value)"
    result = {naive: seasonal_naive(values, first, last, h, data.season)}
    work = data.transformed()
    fit_end = data.val_end  # the final model's training part: training and validation
    models: list[tuple[str, Forecaster]] = [_ets(work[:fit_end, 0], data.season, data.log)]
    models.append(arima(work[:fit_end, 0], data.season))
    for label, forecaster in models:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter from statsmodels
                pred = np.stack(
                    [
                        forecaster(work[:fit_end, c], origins, h, work[:, c])
                        for c in range(work.shape[1])
                    ],
                    axis=-1,
                )
        except Exception as e:  # a classical fit that fails must not cost the RNN's score
            log.warning("%s could not be fitted (%s): left out", label, type(e).__name__)
            continue
        if data.log:
            pred = np.exp(pred)
        result[label] = forecast_scores(torch.tensor(pred), torch.tensor(truth))
    return result


def _ets(fit: np.ndarray, season: int, logged: bool) -> tuple[str, Forecaster]:
    """ETS with additive errors; trend none, additive or damped, season none, additive or (on
    positive, unlogged data) multiplicative: the form with the lowest AICc on ``fit``."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonals: list[str | None] = [None]
    if season > 1 and len(fit) >= 2 * season:
        seasonals.append("add")
        if not logged and (fit > 0).all():
            seasonals.append("mul")
    forms = [
        (trend, damped, seasonal)
        for trend, damped in ((None, False), ("add", False), ("add", True))
        for seasonal in seasonals
    ]

    def model(endog: np.ndarray, form: tuple) -> Any:
        trend, damped, seasonal = form
        return ETSModel(
            endog,
            error="add",
            trend=trend,
            damped_trend=damped,
            seasonal=seasonal,
            seasonal_periods=season if seasonal else None,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {}
        for form in forms:
            try:
                fits[form] = model(fit, form).fit(disp=False)
            except Exception:  # noqa: S112  # a form that cannot be fitted is not chosen
                continue
    form = min(fits, key=lambda f: fits[f].aicc)
    trend, damped, seasonal = form
    letter = {None: "N", "add": "A", "mul": "M"}
    label = f"ETS(A,{letter[trend]}{'d' if damped else ''},{letter[seasonal]})"

    def forecast(fit_c: np.ndarray, origins: list[int], h: int, series: np.ndarray) -> np.ndarray:
        params = model(fit_c, form).fit(disp=False).params
        return np.stack([model(series[:o], form).smooth(params).forecast(h) for o in origins])

    return label, forecast


def arima(fit: np.ndarray, season: int) -> tuple[str, Forecaster]:
    """SARIMA(0,1,1)(0,1,1)s with a season and three seasons of data; otherwise AR(p) with a
    constant, p up to 12 chosen by AIC. Also the base of ``search_space.base=arima``."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    if season > 1 and len(fit) >= 3 * season:
        spec: dict[str, Any] = {"order": (0, 1, 1), "seasonal_order": (0, 1, 1, season)}
        label = f"SARIMA(0,1,1)(0,1,1){season}"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            orders = range(1, max(2, min(12, len(fit) // 5) + 1))
            aic = {p: SARIMAX(fit, order=(p, 0, 0), trend="c").fit(disp=False).aic for p in orders}
        p = min(aic, key=lambda k: aic[k])
        spec, label = {"order": (p, 0, 0), "trend": "c"}, f"AR({p})"

    def forecast(fit_c: np.ndarray, origins: list[int], h: int, series: np.ndarray) -> np.ndarray:
        fitted = SARIMAX(fit_c, **spec).fit(disp=False)
        return np.stack([fitted.apply(series[:o]).forecast(h) for o in origins])

    return label, forecast


# --- text ----------------------------------------------------------------------------------


def tfidf_logistic(data: TextData) -> dict[str, float]:
    """TF-IDF (words and word pairs, sublinear term frequencies) + logistic regression; C from
    {0.25, 1, 4, 16} by validation accuracy; the test split scored once."""
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def joined(split: str) -> list[str]:
        return [" ".join(tokens) for tokens in data.tokens[split]]

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"\S+", lowercase=False
    )
    train = vectorizer.fit_transform(joined("train"))
    val, test = vectorizer.transform(joined("val")), vectorizer.transform(joined("test"))
    y_train, y_val = data.train.y.numpy(), data.val.y.numpy()

    def fitted(c: float) -> Any:
        return LogisticRegression(C=c, max_iter=2000).fit(train, y_train)

    c = max((0.25, 1.0, 4.0, 16.0), key=lambda c: (fitted(c).predict(val) == y_val).mean())
    pred = torch.from_numpy(fitted(c).predict(test))
    return data.score(torch.nn.functional.one_hot(pred, data.n_classes).float(), data.test)
