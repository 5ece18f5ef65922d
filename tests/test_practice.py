"""The practice of tuning: k-fold cross-validation, tuning on a fraction then retraining, a
baseline and hand-tuned iterations, and warm starts from another study."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    SLOW,
    TINY,
    Finished,
    Project,
    curve_lengths,
    load_study,
    run_worker,
    study_exists,
    wait_until,
)
from optuna.trial import TrialState

from study import ensemble, iterations, protocol, status, testset
from study.config import load_config
from study.errors import ConfigError
from study.setup import load_checked_data
from study.storage import best_trials, open_storage
from study.training import predict

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --- the protocol: folds and fractions -----------------------------------------------------------


def test_folds_partition_train_and_validation_and_leave_the_test_split_alone() -> None:
    cfg = load_config(["protocol.folds=4"])
    data = load_checked_data(cfg)
    pool = len(data.train) + len(data.val)
    seen = []
    for f in range(4):
        part = protocol.trial_data(data, cfg.protocol, f, seed=0)
        assert len(part.train) + len(part.val) == pool
        assert part.test is data.test
        # Stratified: every class is in every fold's validation part.
        assert set(part.val.y.tolist()) == set(range(data.n_classes))
        seen.append(part.val.y.shape[0])
        again = protocol.trial_data(data, cfg.protocol, f, seed=0)
        assert again.val.x.equal(part.val.x), "every trial sees the same folds"
    assert sum(seen) == pool, "each example validates in exactly one fold"


def test_a_fraction_keeps_the_classes_and_the_validation_split() -> None:
    cfg = load_config(["protocol.train_fraction=0.25"])
    data = load_checked_data(cfg)
    part = protocol.trial_data(data, cfg.protocol, 0, seed=0)
    assert len(part.train) == pytest.approx(len(data.train) / 4, abs=1)
    assert set(part.train.y.tolist()) == set(range(data.n_classes))
    assert part.val is data.val
    # Forecasting: the most recent windows, never a shuffle across time.
    cfg = load_config(["data=airline", "protocol.train_fraction=0.5"])
    series = load_checked_data(cfg).for_trial({"input_length": 12})
    part = protocol.trial_data(series, cfg.protocol, 0, seed=0)
    n = len(series.train)
    assert part.train.y.equal(series.train.y[n - len(part.train) :])


def test_final_epochs_average_the_folds_best_epochs() -> None:
    curve = [
        {"fold": f, "epoch": e, "val_loss": v}
        for f, losses in enumerate([[3, 2, 1, 2], [3, 1, 2, 2]])
        for e, v in enumerate(losses)
    ]
    assert protocol.final_epochs(curve, "val_loss", "minimize") == round((2 + 1) / 2) + 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["protocol.folds=1"], "protocol.folds=1: use 0 (one split) or 2 and more"),
        (["data=airline", "protocol.folds=3"], "protocol.folds needs classification data"),
        (["protocol.train_fraction=0"], "protocol.train_fraction=0.0 must be in (0, 1]"),
        (["protocol.folds=3", "protocol.retrain=never"], "use protocol.retrain=auto"),
        (["protocol.selection=best"], "protocol.selection='best' is not one of top, greedy"),
        (["protocol.folds=3", "protocol.selection=greedy"], "use protocol.selection=top"),
        (["protocol.pool=-1"], "protocol.pool=-1: use 0 (four times protocol.ensemble) or more"),
        (["protocol.retrain_seeds=0"], "protocol.retrain_seeds=0: use 1 (one model per"),
        (["protocol.retrain_seeds=3"], "tests the trials' own models; add protocol.retrain=always"),
        (["protocol.retrain_seeds=3", "protocol.retrain=never", "data=airline"], "retrain=always"),
    ],
)
def test_bad_protocol_settings_are_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides)


@pytest.mark.slow
def test_cross_validated_trials_report_growing_steps_and_the_mean_of_folds(
    project: Project, pg_url: str, study_name: str
) -> None:
    args = [f"study.name={study_name}", "protocol.folds=3", *TINY, "max_epochs=2"]
    ran = project.run("study-worker", "n_trials=2", *args)
    assert ran.code == 0, ran.err
    for t in load_study(pg_url, study_name).trials:
        assert t.state == TrialState.COMPLETE
        assert sorted(t.intermediate_values) == list(range(6)), "step = fold * max_epochs + epoch"
        rows = t.user_attrs["curve"]
        assert [(r["fold"], r["epoch"], r["step"]) for r in rows] == [
            (f, e, 2 * f + e) for f in range(3) for e in range(2)
        ]
        folds = t.user_attrs["fold_values"]
        best = [min(r["val_loss"] for r in rows if r["fold"] == f) for f in range(3)]
        assert folds == pytest.approx(best)
        assert t.value == pytest.approx(np.mean(folds))
        assert "model_artifact" not in t.user_attrs, "no single model stands for a CV trial"

    result = project.run("study test", *args)
    assert result.code == 0, result.err
    scored = result.json()
    data = load_checked_data(load_config([]))
    # Retrained on the training and validation splits together (CV used both), tested once.
    assert scored["retrained"]["train_examples"] == len(data.train) + len(data.val)
    assert scored["n"] == len(data.test) and scored["evaluations"] == 1
    assert "retrained on" in project.run("study status", *args).out


@pytest.mark.slow
def test_a_cross_validated_trial_stopped_mid_fold_resumes_where_it_stopped(
    project: Project, pg_url: str, study_name: str
) -> None:
    args = [f"study.name={study_name}", "n_trials=1", "max_epochs=3", "protocol.folds=2", *SLOW]
    worker = project.popen("study-worker", *args)
    wait_until(lambda: curve_lengths(pg_url, study_name).get(0, 0) >= 4)  # inside fold 1
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    again = project.run("study-worker", *args)
    assert again.code == 0, again.err
    resumed = load_study(pg_url, study_name).trials[1]
    assert resumed.state == TrialState.COMPLETE
    assert resumed.user_attrs["resumed_from_epoch"] >= 4
    assert [r["step"] for r in resumed.user_attrs["curve"]] == list(range(6))
    assert len(resumed.user_attrs["fold_values"]) == 2


@pytest.mark.slow
def test_tuning_on_a_fraction_then_retraining_on_the_whole_training_split(
    project: Project, study_name: str
) -> None:
    args = [f"study.name={study_name}", "protocol.train_fraction=0.25", *TINY]
    ran = project.run("study-worker", "n_trials=2", *args)
    assert ran.code == 0, ran.err
    data = load_checked_data(load_config([]))
    if not torch.cuda.is_available():  # retraining follows `device` as the workers do
        refused = project.run("study test", *args, "device=cuda")
        assert refused.code == 2 and refused.err.strip().splitlines() == [
            "error: device=cuda but no CUDA device is visible; use device=auto or cpu"
        ], refused.err
    result = project.run("study test", *args)
    assert result.code == 0, result.err
    retrained = result.json()["retrained"]
    assert retrained["train_examples"] == len(data.train)
    assert 1 <= retrained["epochs"] <= 3 and retrained["val_accuracy"] > 0
    assert project.run("study test", *args).json()["evaluations"] == 1, "the test split once"


# --- iterations ----------------------------------------------------------------------------------


def test_the_bundled_hand_tuned_iterations_fit_the_default_space() -> None:
    cfg = load_config(["iterations=hand_tuned"])
    steps = iterations.resolve(cfg.iterations, cfg.search_space, cfg.data.uses())
    assert [s.name for s in steps] == [
        "baseline",
        "units 128",
        "+ dropout 0.3",
        "lr 5e-4",
        "stacked",
    ]
    # Cumulative: "stacked" keeps every earlier change.
    last = steps[-1].params
    assert (last["hidden_size"], last["input_dropout"], last["lr"]) == (128, 0.3, 5e-4)
    assert (last["num_layers"], last["dropout"]) == (2, 0.3)
    assert "dropout" not in steps[0].params, "no dropout between layers in a one-layer network"


@pytest.mark.slow
def test_iterations_run_first_labelled_and_are_compared_with_the_search(
    finished: Finished, pg_url: str
) -> None:
    trials = load_study(pg_url, finished.name).trials
    assert [t.user_attrs.get("iteration") for t in trials] == [
        "baseline", "units 16", "lr 1e-2", None, None, None, None, None,
    ]  # fmt: skip
    assert [(t.params["hidden_size"], t.params["lr"]) for t in trials[:3]] == [
        (8, 1e-3), (16, 1e-3), (16, 1e-2),
    ]  # fmt: skip
    status = finished.project.run("study status", *finished.args)
    assert status.code == 0, status.err
    assert "baseline" in status.out and "lr 1e-2" in status.out and "automatic" in status.out
    compared = finished.project.status(*finished.args)["iterations"]
    assert [r["name"] for r in compared["iterations"]] == ["baseline", "units 16", "lr 1e-2"]
    assert compared["automatic"]["trial"] in range(3, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- name: a\n  params: {units: 8}\n", "step 'a' sets unknown parameter 'units'"),
        ("- name: a\n  params: {hidden_size: 4096}\n", "outside search_space.hidden_size"),
        ("- params: {lr: 0.001}\n", "step 1 needs a name"),
        ("- name: a\n- name: a\n", "two steps are named 'a'"),
        ("steps: [\n", "not valid YAML at line"),
    ],
)
def test_a_bad_iterations_file_is_refused_with_the_file_and_the_step(
    tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "steps.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config([f"iterations.file={bad}"])
    assert str(e.value).startswith(f"{bad}") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_iterations_file_stops_the_worker_before_a_study_exists(
    project: Project, pg_url: str, study_name: str, tmp_path: Path
) -> None:
    bad = tmp_path / "steps.yaml"
    bad.write_text("- name: a\n  params: {units: 8}\n")
    result = project.run("study-worker", f"study.name={study_name}", f"iterations.file={bad}")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"error: {bad}") and "unknown parameter 'units'" in line
    assert not study_exists(pg_url, study_name), "no study created"


# --- warm start ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_warm_start_copies_trials_outside_the_budget_and_fine_tunes_the_best_model(
    bounced: Project, pg_url: str, study_name: str
) -> None:
    """Through PgBouncer in transaction mode, as a fleet reaches its database."""
    project = bounced
    # No LSTM-FCN branch: its batch norm's running statistics move in an epoch whatever the
    # learning rate, and the fine-tuning check below relies on a first epoch that changes nothing.
    source = [f"study.name={study_name}-a", *TINY, "search_space.hidden_size.low=12",
              "search_space.fcn.value=false"]  # fmt: skip
    assert project.run("study-worker", "n_trials=3", *source).code == 0
    best = load_study(pg_url, f"{study_name}-a").best_trial

    # Trials: copied, marked, and not counted against the new study's budget.
    # A hopeless learning rate here, so that a copied trial is the best one of study b.
    b = [f"study.name={study_name}-b", *TINY, f"warm_start.study={study_name}-a"]
    b += ["search_space.lr.value=1e-7"]
    ran = project.run("study-worker", "n_trials=2", *b)
    assert ran.code == 0, ran.err
    trials = load_study(pg_url, f"{study_name}-b").trials
    assert [t.user_attrs.get("copied_from") for t in trials] == [
        f"{study_name}-a#0", f"{study_name}-a#1", f"{study_name}-a#2", None, None,
    ]  # fmt: skip
    assert [t.value for t in trials[:3]] == [
        t.value for t in load_study(pg_url, f"{study_name}-a").trials
    ]
    # The test scores the best trial run here; a copied one has no model in this study.
    tested = project.run("study test", *b)
    assert tested.code == 0, tested.err
    assert tested.json()["trial"] in (3, 4)

    # Weights: the architecture is the source's, and with a learning rate of ~0 the first epoch
    # scores what the source's best model scored.
    c = [
        f"study.name={study_name}-c", *TINY, f"warm_start.study={study_name}-a",
        "warm_start.weights=true", "warm_start.trials=false", "search_space.lr.value=1e-12",
    ]  # fmt: skip
    ran = project.run("study-worker", "n_trials=1", *c)
    assert ran.code == 0, ran.err
    (tuned,) = load_study(pg_url, f"{study_name}-c").trials
    for key in ("hidden_size", "num_layers", "bidirectional"):
        assert tuned.user_attrs["params_all"][key] == best.params[key]
    assert tuned.user_attrs["curve"][0]["val_loss"] == pytest.approx(best.value, abs=1e-4)


def test_warm_start_from_a_study_that_does_not_exist_is_refused(
    project: Project, study_name: str
) -> None:
    result = project.run("study-worker", f"study.name={study_name}", "warm_start.study=nope")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith("error: warm_start.study: no study named 'nope' in this storage")
    assert line.endswith("name one of them, or leave warm_start.study empty")
    assert "set study.name" not in line, "the fix is for warm_start.study, not study.name"


# --- ensembles of the best trials ------------------------------------------------------------


def test_an_ensemble_averages_the_best_trials_probabilities_and_scores_the_test_once(
    pg_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # artifacts land here
    cfg = load_config(
        [
            "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
            "n_trials=4", "pruner=none", "worker.threads=1", "protocol.ensemble=3", *TINY,
        ]
    )  # fmt: skip
    assert run_worker(cfg) == 0
    storage = open_storage(cfg.storage)
    study = load_study(pg_url, study_name)
    best3 = [t.number for t in best_trials(study, 3)]
    assert sorted(map(int, study.user_attrs["models"])) == sorted(best3), "the members' models"

    scored = testset.test_score(cfg, storage)
    assert scored["ensemble"]["trials"] == best3 and scored["trial"] == best3[0]
    # The same figure by hand: the three saved models' probabilities, averaged.
    data = load_checked_data(cfg)
    probs = []
    for t in best_trials(study, 3):
        view = data.for_trial(t.user_attrs["params_all"])
        probs.append(predict(testset._load_model(cfg, t, view), view.test).softmax(1))
    by_hand = (torch.stack(probs).mean(0).argmax(1) == data.test.y).double().mean().item()
    assert scored["accuracy"] == pytest.approx(by_hand)
    assert len(scored["ensemble"]["members"]) == 3
    # The answers the report draws are the ensemble's, not its first member's.
    confusion = load_study(pg_url, study_name).user_attrs["test_answers"]["confusion"]
    right = sum(confusion[i][i] for i in range(len(confusion)))
    assert right / sum(map(sum, confusion)) == pytest.approx(by_hand)
    assert testset.test_score(cfg, storage)["evaluations"] == 1, "asked again: the stored score"
    assert "ensemble of 3 trials" in status.test_line(scored)


@pytest.mark.parametrize("base", ["none", "arima"])
def test_a_forecast_ensemble_retrains_each_member_through_validation(
    base: str, pg_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        [
            "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
            "data=airline", "n_trials=3", "pruner=none", "worker.threads=1",
            "protocol.ensemble=2", "search_space.input_length.value=24",
            f"search_space.base.value={base}", *TINY,
        ]
    )  # fmt: skip
    assert run_worker(cfg) == 0
    scored = testset.test_score(cfg, open_storage(cfg.storage))
    # The final models forecast the test from all of its past: training and validation windows.
    best = load_study(pg_url, study_name).trials[scored["trial"]]
    view = load_checked_data(cfg).for_trial(best.user_attrs["params_all"])
    assert scored["retrained"]["train_examples"] == len(view.train) + len(view.val)
    assert len(scored["ensemble"]["members"]) == 2 and scored["n"] == 1
    assert set(scored["baselines"]) >= {"seasonal naive", "SARIMA(0,1,1)(0,1,1)12"}
    # Forecasts averaged in the data's units: never worse than the members' mean error (up to
    # float32 rounding, which shows when members on the base forecast nearly alike).
    members = [m["rmse"] for m in scored["ensemble"]["members"]]
    assert scored["rmse"] <= sum(members) / len(members) * (1 + 1e-5)
    # A hybrid says so: how many of the tested models stand on the ARIMA base.
    line = status.test_line(scored)
    if base == "arima":
        assert scored["on_arima_base"] == 2 and "(2 of 2 on the ARIMA base)" in line
    else:
        assert "on_arima_base" not in scored and "ARIMA base" not in line


def test_retrain_seeds_average_a_configurations_models_and_keep_only_the_first(
    pg_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}", "data=airline",
        "n_trials=2", "pruner=none", "worker.threads=1", "seed=4",
        "search_space.input_length.value=24", *TINY,
        # Networks alone: on the ARIMA base, a trial drawn with a tiny learning rate stays at
        # the base whatever its seed, and three seeds could not be told apart by their score.
        "search_space.base.value=none",
    ]  # fmt: skip
    cfg = load_config([*args, "protocol.retrain_seeds=3"])
    assert run_worker(cfg) == 0
    models = tmp_path / ".study" / "artifacts"
    before = {p for p in models.rglob("*") if p.is_file()}
    storage = open_storage(cfg.storage)
    scored = testset.test_score(cfg, storage)
    after = {p for p in models.rglob("*") if p.is_file()}
    assert len(after - before) == 1, "one final model kept, not one per seed"
    assert scored["retrained"]["seeds"] == 3 and "model_artifact" in scored["retrained"]
    assert "3 seeds averaged" in status.test_line(scored)
    # The same forecast by hand: the configuration retrained from seeds 4, 5 and 6, averaged.
    best = load_study(pg_url, study_name).trials[scored["trial"]]
    params = best.user_attrs["params_all"]
    view = load_checked_data(cfg).for_trial(params)
    epochs = scored["retrained"]["epochs"]
    outputs = [
        predict(protocol.retrain(cfg.model, view, params, epochs, True, s, torch.device("cpu"),
                                 cfg.max_epochs)[0],
                view.test)
        for s in (4, 5, 6)
    ]  # fmt: skip
    by_hand = view.ensemble_score([(view, out) for out in outputs])
    assert scored["rmse"] == pytest.approx(by_hand["rmse"], rel=1e-5)
    alone = view.score(outputs[0], view.test)["rmse"]
    assert scored["rmse"] != pytest.approx(alone, rel=1e-5), "the seeds' models differ"
    # Asked with one seed: scored again, now the first seed's model alone.
    one = testset.test_score(load_config([*args, "protocol.retrain_seeds=1"]), storage)
    assert one["evaluations"] == 2 and "seeds" not in one["retrained"]
    assert one["rmse"] == pytest.approx(alone, rel=1e-5)


def test_greedy_selection_adds_the_trial_that_errs_the_other_way_not_the_next_best() -> None:
    target = torch.zeros(6)
    best, near_copy, opposite = torch.full((6,), 1.0), torch.full((6,), 1.1), torch.full((6,), -1.2)

    def mse(mean: torch.Tensor) -> float:
        return float((mean - target).pow(2).mean())

    # Ranked alone: best, near copy, opposite. Top-2 would average the first two (error 1.05).
    picks = ensemble.greedy_picks([best, near_copy, opposite], mse, 2)
    assert picks == [0, 2], "the second pick cancels the first one's error"
    assert ensemble.greedy_picks([best, near_copy, opposite], mse, 3) == [0, 2, 0]
    # A candidate whose loss is NaN is never picked; ties go to the better-ranked candidate.
    nan = torch.full((6,), float("nan"))
    assert ensemble.greedy_picks([nan, best, best.clone()], mse, 1) == [1]


def test_a_greedy_ensemble_is_chosen_on_validation_from_the_kept_pool(
    pg_url: str,
    study_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    overrides = [
        "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
        "data=airline", "n_trials=4", "pruner=none", "worker.threads=1",
        "protocol.ensemble=3", "protocol.selection=greedy", "protocol.pool=3",
        "search_space.input_length.value=24", *TINY,
    ]  # fmt: skip
    cfg = load_config(overrides)
    assert run_worker(cfg) == 0
    storage = open_storage(cfg.storage)
    study = load_study(pg_url, study_name)
    pool = best_trials(study, 3)
    assert sorted(map(int, study.user_attrs["models"])) == sorted(t.number for t in pool)

    scored = testset.test_score(cfg, storage)
    chosen = scored["ensemble"]
    assert chosen["selection"] == "greedy" and chosen["pool"] == [t.number for t in pool]
    assert sum(chosen["picks"]) == 3 and set(chosen["trials"]) <= set(chosen["pool"])
    # The same picks by hand: each trial's own model forecasts validation, in the data's units.
    data = load_checked_data(cfg)
    forecasts = []
    for t in pool:
        view = data.for_trial(t.user_attrs["params_all"])
        out = predict(testset._load_model(cfg, t, view), view.val)
        forecasts.append(view.units(out, view.val))
    judge = data.for_trial(pool[0].user_attrs["params_all"])
    # Averages are judged as the trials are: one member alone scores its trial's value.
    for t, forecast in zip(pool, forecasts, strict=True):
        assert judge.combined_loss(forecast, judge.val) == pytest.approx(t.value, rel=1e-4)
    picks = ensemble.greedy_picks(forecasts, lambda m: judge.combined_loss(m, judge.val), 3)
    assert picks[0] == 0, "the first pick is the best trial"
    by_trial = [pool[i].number for i in picks]
    assert chosen["trials"] == list(dict.fromkeys(by_trial))
    assert chosen["picks"] == [by_trial.count(n) for n in chosen["trials"]]
    assert "chosen greedily on validation from the 3 best" in status.test_line(scored)

    assert testset.test_score(cfg, storage)["evaluations"] == 1, "asked again: the stored score"
    top = load_config([*overrides, "protocol.selection=top"])
    again = testset.test_score(top, storage)
    assert again["evaluations"] == 2 and again["ensemble"]["selection"] == "top"
    assert again["ensemble"]["trials"] == [t.number for t in pool]
    # A pool larger than the models kept: chosen from those, and said so.
    wider = load_config([*overrides, "protocol.pool=4"])
    with caplog.at_level(logging.WARNING, logger="study.ensemble"):
        assert testset.test_score(wider, storage)["ensemble"]["pool"] == chosen["pool"]
    assert "from the 3 best trials whose models the study kept, not 4" in caplog.text
