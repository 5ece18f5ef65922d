"""The study is the unit: reading commands find the study and re-apply the settings it was
created with, so a user never repeats the launch's overrides."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import TINY, Finished, Project, fresh_database

from study import recorded
from study.config import load_config
from study.errors import ConfigError
from study.setup import settings_of
from study.storage import open_storage


def test_recorded_settings_replace_the_defaults_and_explicit_keys_win() -> None:
    launched = load_config(
        ["data=airline", "protocol.ensemble=5", "study.metric=val_rmse", "model=gru", "seed=3"]
    )
    plain = load_config([])
    cfg = recorded.apply(plain, settings_of(launched), ["protocol.ensemble=2"])
    assert cfg.seed == 3, "the final models are retrained with the launch's seed"
    assert recorded.apply(plain, settings_of(launched), ["seed=4"]).seed == 4
    assert cfg.data.name == "airline" and cfg.data.task() == "forecasting"
    assert cfg.model.cell == "gru" and cfg.study.metric == "val_rmse"
    assert cfg.study.direction == "minimize"
    assert cfg.protocol.ensemble == 2, "a key the command line names wins"
    assert cfg.search_space.seasonal.choices == ["none", "decompose", "difference"]


def test_a_reading_command_checks_its_settings_with_the_studys_not_the_defaults() -> None:
    """Forecasting retrains its final models, so several retraining seeds suit a forecasting
    study, though the default data (classification, tested without retraining) refuses them."""
    seeds = ["protocol.retrain_seeds=3"]
    with pytest.raises(ConfigError, match="add protocol.retrain=always"):
        load_config(seeds)
    launched = settings_of(load_config(["data=airline"]))
    cfg = recorded.apply(load_config(seeds, check=False), launched, seeds)
    assert cfg.protocol.retrain_seeds == 3 and cfg.data.task() == "forecasting"
    with pytest.raises(ConfigError, match="add protocol.retrain=always"):  # checked after all
        recorded.apply(load_config(seeds, check=False), None, seeds)


def test_the_name_falls_back_to_the_last_launch_here_then_the_only_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with fresh_database("study_recorded") as url:
        cfg = load_config(["storage=postgres", f"storage.url={url}"])
        storage = open_storage(cfg.storage)
        optuna.create_study(study_name="first", storage=storage)
        assert recorded.resolve_name(cfg, storage, []) == "first", "the only study"
        optuna.create_study(study_name="second", storage=storage)
        assert recorded.resolve_name(cfg, storage, []) == cfg.study.name, "two: no guess"
        recorded.remember("second")
        assert recorded.resolve_name(cfg, storage, []) == "second", "launched here last"
        named = ["study.name=first"]
        assert recorded.resolve_name(load_config(named), storage, named) == "first"


def test_a_study_keeps_the_scaling_auto_chose_when_it_was_created() -> None:
    """A PLAID study created when ``auto`` chose ``series`` (shape only) keeps it: its saved
    models read one channel, though this release's ``auto`` gives such data three."""
    with fresh_database("study_recorded") as url:
        overrides = ["storage=postgres", f"storage.url={url}", "data=ucr", "data.dataset=PLAID"]
        storage = open_storage(load_config(overrides).storage)
        study = optuna.create_study(study_name="old", storage=storage)
        study.set_user_attr("settings", settings_of(load_config(overrides)))
        study.set_user_attr("data", {"train": 429, "val": 108, "test": 537, "scaling": "series"})
        reading = ["storage=postgres", f"storage.url={url}"]
        assert recorded.for_study(load_config(reading), storage, reading).data.scaling == "series"
        named = [*reading, "data.scaling=series_stats"]
        cfg = recorded.for_study(load_config(named, check=False), storage, named)
        assert cfg.data.scaling == "series_stats", "a key the command line names still wins"


@pytest.mark.slow
def test_after_a_launch_status_test_and_report_need_no_overrides(
    project: Project, study_name: str
) -> None:
    launch = ["data=airline", f"study.name={study_name}", "n_trials=2", "workers=1", *TINY]
    ran = project.run("study-launch", *launch, "search_space.input_length.value=12")
    assert ran.code == 0, ran.err
    status = project.status()  # neither study.name nor data=airline
    assert status["study"] == study_name and "val_rmse" in status["best"]["metrics"]
    tested = project.run("study test")
    assert tested.code == 0, tested.err
    assert "rmse" in tested.json() and tested.json()["evaluations"] == 1
    # A setting that suits the recorded data (forecasting retrains), not the default data.
    averaged = project.run("study test", "protocol.retrain_seeds=2")
    assert averaged.code == 0, averaged.err
    assert averaged.json()["retrained"]["seeds"] == 2 and averaged.json()["evaluations"] == 2
    refused = project.run("study test", "protocol.retrain_seeds=0")
    assert refused.code == 2 and refused.err.strip().splitlines()[-1] == (
        "error: protocol.retrain_seeds=0: use 1 (one model per configuration) or more"
    ), refused.err
    report = project.run("study report")
    assert report.code == 0 and "TEST RMSE" in report.out, report.err
    # study list: the storage's studies; * marks the one the commands above read.
    listed = project.run("study list")
    assert listed.code == 0, listed.err
    (line,) = [x for x in listed.out.splitlines() if f" {study_name} " in x]
    assert line.startswith(f"* {study_name} ") and "2 trials" in line and "tested" in line
    assert "best val_loss" in line
    rows = project.run("study list", "--json").json()
    (row,) = [r for r in rows if r["study"] == study_name]
    assert row["n_trials"]["total"] == 2 and row["tested"] and row["best_value"] > 0


def test_reading_commands_never_create_an_embedded_database(tmp_path: Path) -> None:
    project = Project(tmp_path, ["storage=embedded"])
    for command in ("study status", "study test", "study report", "study list"):
        result = project.run(command)
        assert result.code == 3, result.err
        (line,) = result.err.strip().splitlines()
        assert line.startswith("error: storage=embedded: no database in") and "data_dir" in line
    assert not (tmp_path / ".study").exists(), "nothing was created"


@pytest.mark.slow
def test_status_and_list_import_no_torch(finished: Finished) -> None:
    """Commands that only read a study stay quick: neither they nor their config load torch
    (about a second of imports) or boto3 (Optuna's S3 store, 0.1 s)."""
    import subprocess
    import sys

    for command in ("status", "list"):
        code = (
            "import sys\n"
            "from study.cli import main\n"
            f"sys.argv = ['study', {command!r}, *{finished.project.storage + finished.args!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print([m for m in ('torch', 'boto3') if m in sys.modules] or 'none loaded')\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=finished.project.path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("none loaded"), (command, result.stdout[-300:])
