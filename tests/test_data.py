"""The three tasks on users' own files and the bundled data; bad data refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, Project, load_study, run_worker, study_exists

from study import space
from study.config import load_config
from study.data import load_data
from study.data.forecast import SeriesData
from study.data.text import UNK
from study.errors import ConfigError, DataError
from study.models import build_model
from study.setup import load_checked_data
from study.training import build_optimizer, evaluate, predict, train_epoch

ARCH = {"cell": "gru", "hidden_size": 16, "num_layers": 1, "bidirectional": False}


def _data(*overrides: str):  # type: ignore[no-untyped-def]
    return load_checked_data(load_config(list(overrides)))


def _fit(data, params: dict, epochs: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Train a small model the way a trial does; the validation scores after ``epochs``."""
    data = data.for_trial(params)
    torch.manual_seed(0)
    model = build_model(load_config([]).model, data.dims(), {**ARCH, **params}, data.pretrained)
    opt = build_optimizer("adam", model.parameters(), 1e-2, 0.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        train_epoch(model, opt, data, 16, 1.0, gen)
    return evaluate(model, data, data.val)


# --- time-series classification ------------------------------------------------------------


def test_a_bundled_ucr_set_by_name_keeps_its_own_test_split() -> None:
    data = _data("data=ucr", "data.dataset=ItalyPowerDemand")
    assert data.info == {"train": 53, "val": 14, "test": 1029, "scaling": "global"}
    assert data.n_features == 1 and data.classes == ["1", "2"]


def test_a_ucr_set_that_is_not_bundled_is_refused_with_the_list() -> None:
    with pytest.raises(DataError, match="data.dataset='Adiac' is not bundled.*JapaneseVowels"):
        _data("data=ucr", "data.dataset=Adiac")


@pytest.mark.parametrize("kind", ["series_csv", "series_npz"])
def test_own_series_files_train_end_to_end(kind: str, user_files: dict) -> None:
    data = _data("data=series_files", f"data.train_path={user_files[kind]}")
    assert data.info == {"train": 48, "val": 6, "test": 6, "scaling": "global"}  # 80/10/10
    # Variable length survives: the lengths are the sequences' own, not the padded width.
    assert data.train.lengths.min() < data.train.lengths.max() == data.train.x.shape[1]
    assert _fit(data, {}, 15)["accuracy"] == 1.0


def test_series_whose_scales_span_decades_are_scaled_each_by_its_own(tmp_path: Path) -> None:
    """Shape is the class; loudness spans six decades (as PLAID's currents do). One global
    scaling leaves the quiet series flat and a model cannot tell them apart; auto sees the
    spread and z-normalises each series, and the same small model learns them all."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 60)
    y = np.arange(120) % 2
    shapes = np.where(y[:, None] == 0, np.sin(t), np.sign(np.sin(t)))
    loudness = 10.0 ** rng.uniform(-4, 2, size=(120, 1))
    x = shapes * loudness + rng.normal(0, 0.01, (120, 60)) * loudness
    np.savez(tmp_path / "loud.npz", x=x.astype(np.float32), y=y)
    path = f"data.train_path={tmp_path / 'loud.npz'}"
    auto = _data("data=series_files", path, "data.val_fraction=0.3")
    fixed = _data("data=series_files", path, "data.val_fraction=0.3", "data.scaling=global")
    assert auto.info["scaling"] == "series_stats" and fixed.info["scaling"] == "global"
    assert _fit(auto, {}, 15)["accuracy"] == 1.0
    assert _fit(fixed, {}, 15)["accuracy"] < 0.85  # 0.75: a quarter of the 36 are flat
    with pytest.raises(DataError, match="data.scaling='each' is not one of auto, global, series"):
        _data("data=series_files", path, "data.scaling=each")


def test_scaling_each_series_keeps_its_loudness_as_channels(tmp_path: Path) -> None:
    """The same shape in every class, loudness (spanning five decades) the only clue, as an
    appliance's current is on PLAID. z-normalising each series alone erases it: the model is
    left at chance. ``auto`` feeds each series' log amplitude, log scale and level beside its
    shape (``series_stats``, four channels from one), and the same model tells the classes
    apart."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 40)
    y = np.arange(120) % 2
    loudness = 10.0 ** np.where(y == 0, rng.uniform(-3, -1, 120), rng.uniform(0, 2, 120))
    x = (np.sin(t)[None, :] + rng.normal(0, 0.05, (120, 40))) * loudness[:, None]
    np.savez(tmp_path / "loud.npz", x=x.astype(np.float32), y=y)
    path = f"data.train_path={tmp_path / 'loud.npz'}"
    auto = _data("data=series_files", path, "data.val_fraction=0.3")
    shape_only = _data("data=series_files", path, "data.val_fraction=0.3", "data.scaling=series")
    assert auto.info["scaling"] == "series_stats"
    assert (auto.n_features, shape_only.n_features) == (4, 1)
    assert auto.train.x.shape[2] == auto.test.x.shape[2] == 4
    # The log amplitude (channel 1) ranks the series by loudness where the shape cannot.
    for split in (auto.train, auto.test):
        peak = split.x[:, :, 1].amax(dim=1)
        assert peak[split.y == 1].min() > peak[split.y == 0].max()
    assert _fit(auto, {}, 15)["accuracy"] == 1.0
    assert _fit(shape_only, {}, 15)["accuracy"] < 0.75


def test_own_ts_files_with_their_test_split() -> None:
    from importlib.util import find_spec

    origin = find_spec("sktime.datasets").origin  # type: ignore[union-attr]
    folder = Path(origin).parent / "data" / "UnitTest"  # type: ignore[arg-type]
    data = _data(
        "data=series_files",
        f"data.train_path={folder / 'UnitTest_TRAIN.ts'}",
        f"data.test_path={folder / 'UnitTest_TEST.ts'}",
    )
    assert len(data.test) == 22 and len(data.train) + len(data.val) == 20


def test_a_parsed_ts_file_is_read_back_from_the_cache_without_sktime(tmp_path: Path) -> None:
    """Every worker reads its data; the second read of a .ts file skips sktime (seconds)."""
    load = (
        "import json, sys\n"
        "from study.data.ucr import load\n"
        "d = load('JapaneseVowels', 'jv')\n"
        "print(json.dumps(['sktime' in sys.modules, d.train.x.sum().item(), d.info]))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run() -> list:
        done = subprocess.run(
            [sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first, second = run(), run()
    assert first[0] is True and second[0] is False, "parsed once, then read from the cache"
    assert first[1:] == second[1:], "the same sequences, the same splits"


def test_a_changed_ts_file_is_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from study.data._ts import read_ts

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "two.ts"
    header = "@problemName two\n@timeStamps false\n@univariate true\n@classLabel true a b\n@data\n"
    path.write_text(header + "1,2,3:a\n4,5:b\n")
    seqs, labels = read_ts(path)
    assert [s[:, 0].tolist() for s in seqs] == [[1, 2, 3], [4, 5]] and labels.tolist() == ["a", "b"]
    assert read_ts(path)[0][1].tolist() == [[4], [5]], "read back from the cache"
    path.write_text(header + "1,2,3:a\n7,8,9,10:b\n")
    assert read_ts(path)[0][1][:, 0].tolist() == [7, 8, 9, 10]


# --- text ----------------------------------------------------------------------------------


def _reviews(user_files: dict, *more: str):  # type: ignore[no-untyped-def]
    return _data(
        "data=text",
        f"data.train_path={user_files['text_csv']}",
        "data.text_column=review",
        "data.label_column=sentiment",
        *more,
    )


def test_own_text_csv_trains_end_to_end(user_files: dict) -> None:
    data = _reviews(user_files)
    assert data.uses == ("embedding_dim", "max_length", "nb_ratios", "ngrams")
    assert data.classes == ["neg", "pos"] and data.info["test"] == 30
    assert _fit(data, {"embedding_dim": 16, "max_length": 8}, 10)["accuracy"] > 0.95


def test_the_vocabulary_comes_from_the_training_split_only(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.tsv"
    train.write_text("".join(json.dumps({"text": t, "label": t[0]}) + "\n" for t in ["ab"] * 20))
    lines = [f"{lab} zebra\t{lab}\n" for lab in ["yes", "no"] * 3]
    test.write_text("text\tlabel\n" + "".join(lines))
    with pytest.raises(DataError, match="every example has the label"):
        _data("data=text", f"data.train_path={train}", f"data.test_path={test}")
    train.write_text(
        "".join(json.dumps({"text": f"{w} {w}", "label": w}) + "\n" for w in ["yes", "no"] * 20)
    )
    data = _data("data=text", f"data.train_path={train}", f"data.test_path={test}")
    assert data.vocab_size == 4  # padding, unknown, yes, no: nothing from the test file
    assert set(data.test.x[:, 1].tolist()) == {UNK}  # "zebra" only occurs in the test file


def test_an_aclimdb_folder_and_glove_vectors(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for label, word in (("pos", "good"), ("neg", "bad")):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(10):
                (folder / f"{i}_7.txt").write_text(f"A {word} film.<br />Really {word}.")
    glove = tmp_path / "vectors.txt"
    glove.write_text("good 1 0 0\nbad 0 1 0\nfilm 0 0 1\n")
    data = _data("data=text", f"data.train_path={tmp_path / 'aclImdb'}", f"data.embeddings={glove}")
    assert len(data.test) == 20 and data.classes == ["neg", "pos"]
    assert data.uses == ("max_length", "nb_ratios", "ngrams") and data.dims()["embedding_dim"] == 3
    assert data.pretrained is not None
    rows = {tuple(r) for r in data.pretrained.tolist()}
    assert {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)} <= rows  # good, bad, film
    model = build_model(load_config([]).model, data.dims(), ARCH, data.pretrained)
    assert torch.equal(model.embedding.weight.detach(), data.pretrained)


def test_truncation_length_is_per_trial(user_files: dict) -> None:
    data = _reviews(user_files)
    cut = data.for_trial({"max_length": 2})
    assert cut.train.x.shape[1] == 2 and int(cut.train.lengths.max()) == 2
    assert data.train.x.shape[1] == 6  # the loaded data is untouched


# --- forecasting ---------------------------------------------------------------------------


def test_airline_splits_by_time_and_validates_on_twelve_rolling_origins() -> None:
    data = _data("data=airline")
    assert isinstance(data, SeriesData)
    # The published test split (the last year, one origin); validation: 12 origins before it.
    assert (data.info["train"], data.info["val"], data.info["test"]) == (109, 23, 12)
    assert (data.info["val_origins"], data.info["test_origins"]) == (12, 1)
    assert data.info["seasonal_naive"]["test"]["rmse"] == pytest.approx(50.708, abs=1e-3)
    trial = data.for_trial({"input_length": 24})
    assert (len(trial.train), len(trial.val), len(trial.test)) == (74, 12, 1)
    assert data.notes == []


@pytest.mark.parametrize("seasonal", ["none", "decompose", "difference"])
def test_forecast_windows_return_to_the_data_units(seasonal: str) -> None:
    """Whatever the transform (log, seasonal component out, scaling, relative to the last
    value), a window's targets come back as the series' own values."""
    data = _data("data=airline")
    trial = data.for_trial({"input_length": 12, "seasonal": seasonal})
    back = trial.units(trial.test.y, trial.test)[0, :, 0]
    assert torch.allclose(back.double(), torch.tensor(data.values[-12:, 0]), rtol=1e-4)
    first_val = trial.units(trial.val.y[:1], trial.val.subset([0]))[0, :, 0]
    assert torch.allclose(first_val.double(), torch.tensor(data.values[109:121, 0]), rtol=1e-4)
    plain = data.for_trial({"input_length": 12, "seasonal": "none"})
    if seasonal != "none":  # the model sees the series with its season treated
        assert not torch.allclose(trial.val.x, plain.val.x)
    # Seasonal differences need a season before the first input: 12 training windows fewer.
    assert len(trial.train) == len(plain.train) - (12 if seasonal == "difference" else 0)


def test_val_loss_is_on_one_scale_whatever_the_seasonal_treatment() -> None:
    """Trials that treat the season differently train on differently scaled targets; the
    same forecast must still get the same val_loss, or the sampler and the pruner would
    compare scales instead of forecasts."""
    data = _data("data=airline")
    work = torch.tensor(np.log(data.values), dtype=torch.float32)
    losses = {}
    for kind in ("none", "decompose", "difference"):
        view = data.for_trial({"input_length": 24, "seasonal": kind})
        first, _ = view.origins("val")
        # The naive forecast (the last observed value), as this view's model would output it.
        last = work[first - 1 : first - 1 + len(view.val)][:, None, :].expand(-1, 12, -1)
        sc = view.scaled
        out = (last - torch.tensor(sc.mean)) / torch.tensor(sc.std) - view.val.level
        losses[kind] = view.eval_loss(out.flatten(1).float(), view.val)
        assert view.eval_loss(view.val.y, view.val) == 0.0
    assert losses["none"] > 0
    assert losses["decompose"] == pytest.approx(losses["none"], rel=1e-4)
    assert losses["difference"] == pytest.approx(losses["none"], rel=1e-4)


def test_short_series_and_short_horizons_get_the_origins_they_allow(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("units\n" + "".join(f"{100 + i % 7 + i * 0.1:.2f}\n" for i in range(60)))
    history = "search_space.input_length.high=12"
    one_step = _data(
        "data=forecast", f"data.path={path}", "data.horizon=1", "data.season=7", history
    )
    assert (one_step.info["val_origins"], one_step.info["test_origins"]) == (12, 12)
    assert one_step.notes == []
    short = _data(
        "data=forecast",
        f"data.path={path}",
        "data.horizon=12",
        "data.season=7",
        history,
    )
    assert short.info["train"] >= 36 and short.info["val_origins"] < 12
    assert len(short.notes) == 1 and "data.val_size" in short.notes[0]


def test_own_forecast_csv_is_sorted_by_time_and_beats_seasonal_naive(user_files: dict) -> None:
    data = _data(
        "data=forecast",
        f"data.path={user_files['sales_csv']}",
        "data.time_column=month",
        "study.metric=val_rmse",
    )
    trial = data.for_trial({"input_length": 24})
    # Chronological: the last training target comes right before the first validation target.
    last_train_target = trial.units(trial.train.y[-1:], trial.train.subset([len(trial.train) - 1]))
    first_val_input = trial.units(trial.val.x[:1, -12:].flatten(1), trial.val.subset([0]))
    assert torch.allclose(last_train_target, first_val_input, atol=1e-3)
    scores = _fit(data, {"input_length": 24}, 60)
    assert scores["rmse"] < data.info["seasonal_naive"]["val"]["rmse"]


def test_a_highway_learns_a_linear_series_a_bare_recurrence_misses_in_few_epochs(
    tmp_path: Path,
) -> None:
    """The highway's linear map of the window carries what a small series mostly is: with it,
    a few epochs of a tiny network forecast a noisy trend-and-season series far better."""
    rng = np.random.default_rng(0)
    t = np.arange(160)
    values = 50 + 0.8 * t + 12 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, len(t))
    path = tmp_path / "trend.csv"
    path.write_text("units\n" + "".join(f"{v:.3f}\n" for v in values))
    data = _data("data=forecast", f"data.path={path}", "data.season=1")
    params = {"input_length": 24, "hidden_size": 4}
    bare = _fit(data, {**params, "highway": False}, 8)
    highway = _fit(data, {**params, "highway": True}, 8)
    assert highway["rmse"] < 0.5 * bare["rmse"], (highway, bare)


def test_an_arima_base_forecasts_what_the_classical_model_misses() -> None:
    """With base=arima a network's zero output is the ARIMA forecast fitted on the training
    part alone (the validation part stays unseen), and the targets still return to the
    series' own values, whatever the seasonal treatment of the inputs."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    data = _data("data=airline")
    logged = np.log(data.values[:, 0])
    fitted = SARIMAX(logged[:109], order=(0, 1, 1), seasonal_order=(0, 1, 1, 12)).fit(disp=False)
    expected = {origin: np.exp(fitted.apply(logged[:origin]).forecast(12)) for origin in (109, 132)}
    for kind in ("none", "decompose", "difference"):
        view = data.for_trial({"input_length": 12, "seasonal": kind, "base": "arima"})
        for split, origin in ((view.val, 109), (view.test, 132)):
            zero = view.units(torch.zeros_like(split.y[:1]), split.subset([0]))[0, :, 0]
            assert np.allclose(zero.numpy(), expected[origin], rtol=1e-3), (kind, origin)
        back = view.units(view.test.y, view.test)[0, :, 0]
        assert torch.allclose(back.double(), torch.tensor(data.values[-12:, 0]), rtol=1e-4)
    # An untrained network on the base (head and highway start at zero) forecasts the ARIMA
    # model's forecast; on the series itself it does not.
    params = {**ARCH, "input_length": 12, "highway": True, "seasonal": "none"}
    for base, same in (("arima", True), ("none", False)):
        view = data.for_trial({**params, "base": base})
        model = build_model(load_config([]).model, view.dims(), {**params, "base": base})
        first = view.units(predict(model, view.test), view.test)[0, :, 0]
        assert np.allclose(first.numpy(), expected[132], rtol=1e-3) == same, base
    # The classical forecast needs a season and a step of past: the first window starts later.
    plain = data.for_trial({"input_length": 12, "base": "none"})
    assert len(data.for_trial({"input_length": 12, "base": "arima"}).train) == len(plain.train) - 1


def test_a_network_on_an_arima_base_learns_the_cycle_the_classical_model_misses(
    tmp_path: Path,
) -> None:
    """A monthly series with a trend, a season and a five-month cycle SARIMA's airline model
    cannot express: a few epochs of a tiny network on the ARIMA base forecast far better than
    the ARIMA model alone (the base's zero output) and than the same network on the series."""
    rng = np.random.default_rng(0)
    t = np.arange(180)
    cycle = np.where(t % 5 < 2, 6.0, -4.0)
    values = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + cycle + rng.normal(0, 0.5, len(t))
    path = tmp_path / "cycle.csv"
    path.write_text("units\n" + "".join(f"{v:.3f}\n" for v in values))
    data = _data("data=forecast", f"data.path={path}", "data.horizon=6")
    params = {"input_length": 12, "hidden_size": 16, "highway": True, "seasonal": "none"}
    hybrid = _fit(data, {**params, "base": "arima"}, 6)
    bare = _fit(data, {**params, "base": "none"}, 6)
    view = data.for_trial({**params, "base": "arima"})
    arima_alone = view.score(torch.zeros_like(view.val.y), view.val)
    assert hybrid["rmse"] < 0.7 * arima_alone["rmse"], (hybrid, arima_alone)
    assert hybrid["rmse"] < bare["rmse"], (hybrid, bare)


def test_a_series_too_short_for_the_arima_base_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("units\n" + "".join(f"{100 + i % 12 + i * 0.1:.2f}\n" for i in range(48)))
    short = [
        "data=forecast", f"data.path={path}", "data.val_size=12", "data.test_size=12",
        "search_space.input_length.value=6", "search_space.seasonal.choices=[none]",
    ]  # fmt: skip
    # 24 training steps: no origin has a season and a step before it plus a horizon after it.
    with pytest.raises(ConfigError, match=r"base=arima needs 25 training steps .* 24 here"):
        _data(*short)
    alone = _data(*short, "search_space.base.choices=[none]")  # networks alone fit
    assert len(alone.for_trial({"input_length": 6}).train) > 0


def test_input_length_longer_than_the_history_is_refused() -> None:
    with pytest.raises(ConfigError, match="input_length reaches 200 .* at most 97 steps"):
        _data("data=airline", "search_space.input_length.high=200", "data.max_input_share=1")


def test_the_searched_windows_end_at_a_quarter_of_the_training_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Airline trains on 109 months: windows of 48 leave 50 training windows and won validation
    while losing the test, so the default range stops at 24 (a quarter is 27), and says so."""
    cfg = load_config(["data=airline"])
    load_checked_data(cfg, warn=True)
    p = cfg.search_space.input_length
    assert (p.low, p.high, p.step) == (12, 24, 12)
    assert (
        "search_space.input_length searches 12 to 24 steps, not up to 48: at most 0.25 of the 109"
    ) in caplog.text
    whole = load_config(["data=airline", "data.max_input_share=1"])
    load_checked_data(whole)
    assert whole.search_space.input_length.high == 48
    # The user's own values are kept: explicit choices, and a window an iteration names.
    chosen = load_config(["data=airline", "search_space.input_length.choices=[12,48]"])
    load_checked_data(chosen)
    assert chosen.search_space.input_length.choices == [12, 48]
    step = "iterations.steps=[{name: long, params: {input_length: 36}}]"
    named_overrides = ["data=airline", step]
    named = load_config(named_overrides)
    load_checked_data(named)
    assert named.search_space.input_length.high == 36
    uncut = load_config([*named_overrides, "data.max_input_share=1"])
    load_checked_data(uncut)
    assert uncut.search_space.input_length.high == 48, "no cap: an iteration cuts nothing"
    # A short series never loses the range's low end.
    assert (cut := space.cut(space.Param(low=12, high=48, step=12, integer=True), 5)) is not None
    assert (cut.low, cut.high) == (12, 12)
    with pytest.raises(DataError, match=r"data.max_input_share=0.0 must be in \(0, 1\]"):
        _data("data=airline", "data.max_input_share=0")


def test_a_study_draws_and_records_the_cut_range(
    pg_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker cuts the same range from the same data, the study records it, and its
    trials draw only windows inside it."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        [
            "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
            "data=airline", "n_trials=4", "pruner=none", "worker.threads=1",
            "sampler=random", *TINY,
        ]
    )  # fmt: skip
    assert run_worker(cfg) == 0
    study = load_study(pg_url, study_name)
    assert study.user_attrs["settings"]["search_space"]["input_length"]["high"] == 24
    windows = {t.params["input_length"] for t in study.trials}
    assert windows <= {12, 24} and len(study.trials) == 4


def test_metric_direction_follows_the_metric() -> None:
    assert load_config(["data=airline", "study.metric=val_mape"]).study.direction == "minimize"
    assert load_config(["study.metric=val_f1"]).study.direction == "maximize"


# --- bad data ------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_data_is_refused_with_the_file_and_the_problem(tmp_path: Path) -> None:
    """Every case names the file (or setting) and the problem, before any trial."""
    few = _write(tmp_path, "few.csv", "text,label\n" + "x,a\ny,b\n")
    nan = _write(tmp_path, "nan.csv", "month,units\n" + "".join(f"{i},{i}\n" for i in range(40)))
    nan.write_text(nan.read_text().replace("\n7,7\n", "\n7,\n"))
    words = _write(
        tmp_path, "words.csv", "month,units\n" + "".join(f"{i},n{i}\n" for i in range(40))
    )
    short = _write(tmp_path, "short.csv", "units\n" + "".join(f"{i}\n" for i in range(40)))
    header = _write(tmp_path, "header.csv", "month,units\n")
    # Everything on one line (20 MB took pandas 4 minutes and 9.6 GB): refused at the first MB.
    dump = _write(tmp_path, "dump.csv", ",".join(str(i) for i in range(300_000)))
    one = _write(tmp_path, "one.csv", "id,label,x\n" + "".join(f"{i},a,{i}\n" for i in range(30)))
    cases = [
        (["data=text", "data.train_path=/nowhere.csv"], "data.train_path=/nowhere.csv: no such"),
        (["data=text", f"data.train_path={few}", "data.text_column=review"], "no column 'review'"),
        (["data=text", f"data.train_path={few}"], f"{few}: 2 examples are too few"),
        (["data=series_files", f"data.train_path={one}"], "every example has the label ['a']"),
        (["data=forecast", f"data.path={words}"], "column 'units' is not numeric"),
        (["data=forecast", f"data.path={nan}"], f"{nan}: row 8 has a NaN or missing value"),
        (["data=forecast", f"data.path={short}", "data.horizon=15"], "leave 10 for training"),
        (["data=forecast", f"data.path={header}"], f"{header}: no rows below the header"),
        (["data=series_files", f"data.train_path={dump}"], "first line runs past 1 MB"),
        (["data=text", f"data.train_path={dump}"], f"{dump}: its first line runs past 1 MB"),
        (["data=forecast", f"data.path={dump}"], "not a table of one header row"),
    ]
    for overrides, message in cases:
        with pytest.raises(DataError) as e:
            load_data(load_config(overrides).data)
        assert message in str(e.value) and "\n" not in str(e.value), (overrides, str(e.value))


def test_nan_inside_a_sequence_is_refused(tmp_path: Path) -> None:
    x = np.zeros((30, 5), dtype=np.float32)
    x[3, 1] = np.nan
    path = tmp_path / "gap.npz"
    np.savez(path, x=x, y=np.array(["a", "b"] * 15))
    with pytest.raises(DataError, match="gap.npz: sequence 3 has NaN values before its end"):
        _data("data=series_files", f"data.train_path={path}")


# --- from the command line -------------------------------------------------------------------

SMALL = ["n_trials=3", "max_epochs=4", "search_space.hidden_size.high=16"]


@pytest.mark.slow
def test_a_text_study_and_a_forecasting_study_from_own_files(
    project: Project, user_files: dict, study_name: str, pg_url: str
) -> None:
    text = [
        "data=text",
        f"data.train_path={user_files['text_csv']}",
        "data.text_column=review",
        "data.label_column=sentiment",
        "study.metric=val_accuracy",
    ]
    ran = project.run("study-worker", f"study.name={study_name}-text", *SMALL, *text)
    assert ran.code == 0, ran.err
    result = project.run("study test", f"study.name={study_name}-text", *text)
    assert result.code == 0, result.err
    assert result.json()["accuracy"] > 0.5 and result.json()["n"] == 30
    status = project.status(f"study.name={study_name}-text")
    assert status["direction"] == "maximize"
    assert set(status["best"]["params"]) >= {"embedding_dim", "max_length"}
    page = _report(project, f"{study_name}-text", ["lengths", "confusion"], "examples")
    assert "tokens in the vocabulary" in page

    sales = ["data=forecast", f"data.path={user_files['sales_csv']}", "data.time_column=month"]
    ran = project.run("study-worker", f"study.name={study_name}-sales", *SMALL, *sales)
    assert ran.code == 0, ran.err
    result = project.run("study test", f"study.name={study_name}-sales", *sales)
    assert result.code == 0, result.err
    scored = result.json()
    assert scored["rmse"] > 0 and scored["n"] == 12, "the automatic test: 12 rolling origins"
    assert {"seasonal naive", "SARIMA(0,1,1)(0,1,1)12"} <= set(scored["baselines"])
    best = project.status(f"study.name={study_name}-sales")["best"]
    assert "input_length" in best["params"] and "val_rmse" in best["metrics"]
    page = _report(project, f"{study_name}-sales", ["series", "forecasts"], "confusion")
    assert "forecast origins" in page
    # The drawn forecasts are the tested model's: their error is the stored test RMSE.
    answers = load_study(pg_url, f"{study_name}-sales").user_attrs["test_answers"]
    actual, start = np.array(answers["actual"])[:, 0], answers["start"]
    errors = [
        path[0] - actual[origin + k - start]
        for origin, steps in zip(answers["origins"], answers["forecast"], strict=True)
        for k, path in enumerate(steps)
    ]
    assert len(answers["origins"]) == 12
    assert np.sqrt(np.mean(np.square(errors))) == pytest.approx(scored["rmse"], rel=1e-4)


def _report(project: Project, name: str, shown: list[str], absent: str) -> str:
    """``study report`` of the study: the page, with the figures named in ``shown`` (and their
    PNGs) drawn and ``absent`` not there."""
    result = project.run("study report", f"study.name={name}", "report.out_dir=out")
    assert result.code == 0, result.err
    folder = project.path / "out" / name
    page = (folder / "report.html").read_text()
    for key in shown:
        assert f'<figure id="{key}">' in page, key
    assert f'<figure id="{absent}">' not in page
    pngs = {p.name for p in folder.glob("*.png")}
    wanted = {"series": "data_series.png", "forecasts": "test_forecasts.png",
              "lengths": "data_lengths.png", "confusion": "test_confusion.png"}  # fmt: skip
    assert {wanted[k] for k in shown} <= pngs, pngs
    return page


def test_bad_data_from_the_command_line_creates_no_study(
    project: Project, pg_url: str, tmp_path: Path, study_name: str
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    for command in ("study-worker", "study-launch"):
        result = project.run(
            command, f"study.name={study_name}", "data=text", f"data.train_path={empty}"
        )
        assert result.code == 2
        assert result.err.strip().splitlines() == [f"error: {empty}: no rows below the header"]
    assert not study_exists(pg_url, study_name)
