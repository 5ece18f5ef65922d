"""The classical models beside the tuned one: fitted for real, on the same targets, and named in
the line a user reads."""

from __future__ import annotations

import logging

import pytest

from study import baselines, status
from study.config import load_config
from study.setup import load_checked_data


def _data(*overrides: str, warn: bool = False):  # type: ignore[no-untyped-def]
    return load_checked_data(load_config(list(overrides)), warn=warn)


def test_airline_baselines_reproduce_the_published_log_sarima() -> None:
    scores = baselines.for_test(_data("data=airline"))
    assert scores["seasonal naive"]["rmse"] == pytest.approx(50.708, abs=1e-3)
    assert scores["SARIMA(0,1,1)(0,1,1)12"]["rmse"] == pytest.approx(18.594, abs=0.01)
    ets = [name for name in scores if name.startswith("ETS(")]
    assert len(ets) == 1 and scores[ets[0]]["rmse"] < scores["seasonal naive"]["rmse"]
    assert baselines.best(scores, "rmse") == (
        "SARIMA(0,1,1)(0,1,1)12",
        scores["SARIMA(0,1,1)(0,1,1)12"]["rmse"],
    )


def test_a_series_without_season_gets_an_autoregression(user_files: dict) -> None:
    data = _data(
        "data=forecast",
        f"data.path={user_files['sales_csv']}",
        "data.time_column=month",
        "data.season=1",
        "data.horizon=1",
    )
    scores = baselines.for_test(data)
    ar = [name for name in scores if name.startswith("AR(")]
    assert len(ar) == 1
    # Trend plus a 12-month wave: an autoregression forecasts it far better than the last value.
    assert scores[ar[0]]["rmse"] < 0.5 * scores["naive (last value)"]["rmse"]


def test_text_gets_tfidf_and_logistic_regression(user_files: dict) -> None:
    data = _data(
        "data=text",
        f"data.train_path={user_files['text_csv']}",
        "data.text_column=review",
        "data.label_column=sentiment",
    )
    scores = baselines.for_test(data)["TF-IDF + logistic regression"]
    assert scores["accuracy"] > 0.9  # the words give the label away


def test_the_test_line_says_whether_the_model_beats_the_strongest_baseline() -> None:
    classical = {"seasonal naive": {"rmse": 50.7}, "SARIMA": {"rmse": 18.6}}
    scored = {"rmse": 17.0, "mae": 12.0, "mape": 3.0, "n": 1, "baselines": classical}
    assert status.test_line(scored).endswith("seasonal naive 50.7, SARIMA 18.6: beats SARIMA")
    assert "1 origin);" in status.test_line(scored)
    behind = {**scored, "rmse": 20.0}
    assert "does not beat SARIMA" in status.test_line(behind)
    hybrid = {**scored, "on_arima_base": 1}
    assert status.test_line(hybrid).endswith("beats SARIMA (on the ARIMA base)")
    text = {"accuracy": 0.77, "f1": 0.76, "n": 100, "baselines": {"TF-IDF": {"accuracy": 0.75}}}
    assert status.test_line(text).endswith("TF-IDF 0.7500: beats TF-IDF")


def test_a_tiny_validation_split_is_named_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _data("data=ucr", "data.dataset=UnitTest", warn=True)
    notes = [r.getMessage() for r in caplog.records if "validation holds" in r.getMessage()]
    assert len(notes) == 1 and "protocol.folds=5" in notes[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _data("data=ucr", "data.dataset=UnitTest", "protocol.folds=2", warn=True)
    assert not [r for r in caplog.records if "validation holds" in r.getMessage()]
