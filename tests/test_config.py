"""Every option of every config group composes and builds; bad settings fail clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import Project
from hydra.utils import instantiate

from study.config import load_config, options
from study.errors import EXIT_CONFIG, ConfigError
from study.pruners import build_pruner
from study.samplers import build_sampler


@pytest.mark.parametrize("option", options("sampler"))
def test_every_sampler_builds(option: str) -> None:
    cfg = load_config([f"sampler={option}", "search_space=grid"])
    assert build_sampler(cfg.sampler, seed=1) is not None


@pytest.mark.parametrize("option", options("pruner"))
def test_every_pruner_builds(option: str) -> None:
    cfg = load_config([f"pruner={option}"])
    assert build_pruner(cfg.pruner) is not None


@pytest.mark.parametrize("option", options("model"))
def test_every_model_builds_with_its_cell(option: str) -> None:
    cfg = load_config([f"model={option}"])
    model = instantiate(cfg.model, n_features=3, n_outputs=2)
    assert type(model.rnn).__name__.lower() == option
    assert cfg.search_space.cell.choices == [option]
    assert cfg.study.name.endswith(option)


@pytest.mark.parametrize("option", options("storage"))
def test_every_storage_composes(option: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDY_DB_URL", "postgresql://someone@db.example:5432/studies")
    cfg = load_config([f"storage={option}"])
    assert cfg.storage.kind == option


@pytest.mark.parametrize("option", options("artifacts"))
def test_every_artifact_store_composes(option: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDY_S3_BUCKET", "a-bucket")
    cfg = load_config([f"artifacts={option}"])
    assert cfg.artifacts.describe("x.pt") in (".study/artifacts/x.pt", "s3://a-bucket/x.pt")


@pytest.mark.parametrize("option", options("search_space"))
def test_every_search_space_composes(option: str) -> None:
    assert load_config([f"search_space={option}"]).search_space.lr is not None


@pytest.mark.parametrize("option", options("data"))
def test_every_dataset_loads_its_three_splits(option: str, user_files: dict) -> None:
    from study.data import load_data

    files = {
        "series_files": [f"data.train_path={user_files['series_csv']}"],
        "text": [
            f"data.train_path={user_files['text_csv']}",
            "data.text_column=review",
            "data.label_column=sentiment",
        ],
        "forecast": [f"data.path={user_files['sales_csv']}", "data.time_column=month"],
    }
    cfg = load_config([f"data={option}", *files.get(option, [])])
    data = load_data(cfg.data).for_trial({"max_length": 32, "input_length": 12})
    assert len(data.train) and len(data.val) and len(data.test)
    assert data.task == cfg.data.task() and data.uses == cfg.data.uses()
    assert data.n_outputs >= (2 if data.task == "classification" else 1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["study.nme=x"], "unknown setting 'study.nme'; did you mean study.name?"),
        (["sampler=foo"], "sampler=foo is not an option; choose one of: gp, grid, random, tpe"),
        (["workers=abc"], "workers='abc' is invalid; give an integer"),
        (["workers=0"], "workers=0 must be at least 1"),
        (
            ["search_space.lr.low=1", "search_space.lr.high=0.1"],
            "search_space.lr is an empty range (low=1.0 > high=0.1); set low <= high",
        ),
        (["search_space.batch_size.choices=[]"], "search_space.batch_size.choices is empty"),
        (["search_space.optimizer.choices=[adam,lbfgs]"], "'lbfgs' is not one of"),
        (["sampler=grid"], "search_space=grid"),
        (
            ["study.metric=val_accuracy", "study.direction=minimize"],
            "set study.direction=maximize (or auto)",
        ),
        (["study.metric=val_rmse"], "classification records val_loss, val_accuracy, val_f1"),
        (["data=airline", "study.prune_on=val_f1"], "study.prune_on='val_f1': forecasting"),
        (["+whatever=1"], "unknown setting 'whatever'"),
        (
            ["search_space.batch_size.choices=[-4]"],
            "batch_size: -4 is invalid; give an integer >= 1",
        ),
        (["search_space.dropout.high=1.0"], "dropout: 1.0 is invalid; give a number >= 0 and < 1"),
        (["search_space.hidden_size.value=0"], "hidden_size: 0 is invalid; give an integer >= 1"),
        (["search_space.lr.value=0"], "search_space.lr: 0 is invalid; give a number > 0"),
        (["--n_trials=5"], "'--n_trials=5' is not an option here; settings are key=value without"),
        (["study.name=it's"], 'cannot read "study.name=it\'s": quote a value'),
        ([f"study.name={'a' * 300}"], "study.name is 300 characters long; use at most 120"),
        (["tracking.mlflow_uri=foo://bar"], "mlflow_uri='foo://bar': MLflow cannot use 'foo'"),
        (["storage.pool_size=-1"], "storage.pool_size=-1, storage.max_overflow=2: both must be"),
    ],
)
def test_bad_setting_is_one_clear_line(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(overrides)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_an_mlflow_uri_is_accepted_once_mlflow_has_been_imported(tmp_path: Path) -> None:
    """optuna_integration's lazy module has no ``__spec__`` once imported (a worker that logged
    to MLflow has imported it); the check for MLflow must not trip over that."""
    pytest.importorskip("mlflow")
    import optuna_integration  # noqa: F401

    cfg = load_config([f"tracking.mlflow_uri=sqlite:///{tmp_path / 'mlflow.db'}"])
    assert cfg.tracking.mlflow_uri.startswith("sqlite:///")


def test_postgres_without_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDY_DB_URL", raising=False)
    with pytest.raises(ConfigError, match="STUDY_DB_URL"):
        load_config(["storage=postgres"])


def test_bad_config_exits_2_and_creates_nothing(project: Project, study_name: str) -> None:
    result = project.run("study-launch", f"study.name={study_name}", "search_space.lr.low=-1")
    assert result.code == EXIT_CONFIG
    lines = result.err.strip().splitlines()
    assert lines == [
        "error: search_space.lr.low must be > 0 on a log scale; raise low or log=false"
    ]
    missing = project.run("study status", f"study.name={study_name}")
    assert missing.code != 0
    assert f"no study named '{study_name}'" in missing.err
    assert not (project.path / ".study").exists()


def test_bad_data_exits_2_and_creates_nothing(project: Project, study_name: str) -> None:
    """The data is checked before the artifact store is tried (which makes its folder)."""
    args = (f"study.name={study_name}", "data=airline", "data.max_input_share=0")
    result = project.run("study-launch", *args)
    assert result.code == EXIT_CONFIG
    assert result.err.strip().splitlines() == [
        "error: data.max_input_share=0.0 must be in (0, 1]; 0.25 by default, 1 searches the "
        "whole input_length range"
    ]
    assert not (project.path / ".study").exists()


def test_password_is_never_printed(project: Project) -> None:
    result = project.run(
        "study status",
        "storage.url=postgresql://alice:s3cret-pw@127.0.0.1:1/nowhere",
    )
    assert result.code == 3
    assert "s3cret-pw" not in result.err + result.out
    assert "alice:***@127.0.0.1:1/nowhere" in result.err
    shown = project.run("study-worker", "--cfg", "storage.url=postgresql://alice:s3cret-pw@h/db")
    assert shown.code == 0 and "s3cret-pw" not in shown.out and "alice:***@h/db" in shown.out


def test_a_study_from_an_earlier_release_continues_and_a_changed_setting_is_refused(
    pg_url: str, study_name: str
) -> None:
    """The settings a study recorded are compared with today's: one added by a later release
    (here the stem's) is not a change; one the user changed is, named in one line."""
    from study.setup import load_checked_data, prepare_study
    from study.storage import open_storage

    args = ["storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}"]
    cfg = load_config(args)
    storage = open_storage(cfg.storage)
    data = load_checked_data(cfg)
    study = prepare_study(cfg, storage, data)
    settings = study.user_attrs["settings"]
    for added in ("stem", "stem_steps"):
        del settings["search_space"][added]
    study.set_user_attr("settings", settings)
    prepare_study(cfg, storage, data)  # continues
    changed = load_config([*args, "search_space.lr.low=1e-3"])
    with pytest.raises(ConfigError, match=r"search_space\.lr\.low: 0\.0001 -> 0\.001"):
        prepare_study(changed, storage, data)


def test_a_study_goes_on_with_the_scaling_auto_chose_when_it_was_created(
    pg_url: str, study_name: str, tmp_path: Path
) -> None:
    """An earlier release's ``auto`` chose ``series`` where this one chooses ``series_stats``:
    its trials' checkpoints read one channel, so continuing it with three is refused in one
    line that names the fix, and the fix is not itself taken for a changed setting."""
    from study.setup import load_checked_data, prepare_study
    from study.storage import open_storage

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, 20)) * 10.0 ** rng.uniform(-3, 2, (40, 1))
    np.savez(tmp_path / "loud.npz", x=x, y=np.arange(40) % 2)
    args = ["storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
            "data=series_files", f"data.train_path={tmp_path / 'loud.npz'}"]  # fmt: skip
    cfg = load_config(args)
    storage = open_storage(cfg.storage)
    data = load_checked_data(cfg)
    assert data.info["scaling"] == "series_stats"
    study = prepare_study(cfg, storage, data)
    study.set_user_attr("data", {**data.info, "scaling": "series"})  # as the earlier release did
    with pytest.raises(ConfigError, match="add data.scaling=series to continue it$"):
        prepare_study(cfg, storage, data)
    named = load_config([*args, "data.scaling=series"])
    again = load_checked_data(named)
    assert again.n_features == 1
    prepare_study(named, storage, again)  # continues: what auto chose then, named
    other = load_config([*args, "data.scaling=global"])
    other_data = load_checked_data(other)
    with pytest.raises(ConfigError, match=r"data\.scaling: 'auto' -> 'global'"):
        prepare_study(other, storage, other_data)


def test_help_lists_every_group_and_its_options_without_loading_torch() -> None:
    bin_dir = Path(sys.executable).parent
    shown = subprocess.run(
        [str(bin_dir / "study-launch"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and shown.stderr == ""
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.startswith("  ")}
    for group in ("data", "model", "sampler", "pruner", "search_space", "storage", "artifacts"):
        assert set(options(group)) <= set(lines[group].split(None, 1)[1].split(", ")), group
    assert lines["data"].split(None, 1)[1].startswith("japanese_vowels"), "the default first"
    assert "protocol.ensemble" in shown.stdout and "n_trials" in shown.stdout
    top = subprocess.run([str(bin_dir / "study"), "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "status" in top.stdout
    # Instant: the help path imports neither torch nor the config (which imports it).
    probe = "import sys; from study.cli import usage; usage('x'); print('torch' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
