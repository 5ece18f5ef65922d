"""The study report: the diagnosis on constructed curves, and a real report of a finished study."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from conftest import TINY, Finished, Project, load_study, trials_of
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from study.diagnosis import diagnose, of_trial

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize(
    ("train", "val", "target", "verdict"),
    [
        (0.01, 0.30, 0.0, "high variance"),  # memorised the training split
        (0.40, 0.42, 0.05, "high bias"),  # cannot even fit the training split
        (0.30, 0.50, 0.0, "high bias and high variance"),
        (0.06, 0.08, 0.05, "good"),
        (0.04, 0.07, 0.0, "good"),  # inside the 0.05 tolerance both ways
    ],
)
def test_the_diagnosis_of_constructed_errors(
    train: float, val: float, target: float, verdict: str
) -> None:
    d = diagnose(train, val, target_error=target)
    assert d.verdict == verdict
    assert d.bias == pytest.approx(train - target) and d.variance == pytest.approx(val - train)
    if "variance" in verdict:
        assert any("regularisation" in a for a in d.advice)
    if "bias" in verdict:
        assert any("hidden units" in a for a in d.advice)


def _curve(train_acc: list[float], val_acc: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": 1 - t, "train_accuracy": t, "val_loss": 1 - v, "val_accuracy": v}
        for e, (t, v) in enumerate(zip(train_acc, val_acc, strict=True))
    ]


def test_a_trial_is_diagnosed_at_its_best_epoch_from_its_curves() -> None:
    # Over-fitting: training accuracy climbs to 1 while validation falls after epoch 1.
    over = {"curve": _curve([0.7, 0.97, 0.99, 1.0], [0.68, 0.8, 0.7, 0.6]), "best_epoch": 1}
    d = of_trial(over)
    assert d is not None and (d.train_error, d.val_error) == pytest.approx((0.03, 0.2))
    assert d.verdict == "high variance"
    # The training split re-scored in evaluation mode wins over the training pass's accuracy.
    d = of_trial({**over, "train_eval": {"loss": 0.5, "accuracy": 0.79}})
    assert d is not None and d.train_error == pytest.approx(0.21) and d.verdict == "high bias"
    # Under-fitting against a human-level error of 2 %.
    under = {"curve": _curve([0.5, 0.6, 0.62], [0.5, 0.6, 0.61]), "best_epoch": 2}
    d = of_trial(under, target_error=0.02)
    assert d is not None and d.verdict == "high bias"
    # Forecasting: RMSE, tolerance a tenth of the validation error.
    rows = [{"epoch": 0, "train_loss": 0.1, "val_loss": 0.2, "val_rmse": 30.0}]
    d = of_trial({"curve": rows, "best_epoch": 0, "train_eval": {"loss": 0.1, "rmse": 10.0}})
    assert d is not None and d.measure == "RMSE" and d.tolerance == pytest.approx(3.0)
    assert d.verdict == "high bias and high variance"


def test_time_spent_and_what_pruning_saved() -> None:
    from study.report.page import time_spent

    start = datetime.datetime(2026, 1, 1)

    def trial(state: TrialState, epochs: int, seconds: float) -> optuna.trial.FrozenTrial:
        curve = [{"epoch": e, "seconds": seconds / epochs} for e in range(epochs)]
        return optuna.trial.FrozenTrial(
            number=0, state=state, value=1.0 if state == TrialState.COMPLETE else None,
            values=None, datetime_start=start,
            datetime_complete=start + datetime.timedelta(seconds=seconds),
            params={"x": 1}, distributions={"x": IntDistribution(0, 2)},
            user_attrs={"curve": curve}, system_attrs={}, intermediate_values={}, trial_id=0,
        )  # fmt: skip

    spent = time_spent(
        [trial(TrialState.COMPLETE, 10, 100), trial(TrialState.PRUNED, 2, 20)], steps=10
    )
    assert spent["seconds"]["complete"] == 100 and spent["seconds"]["pruned"] == 20
    assert spent["saved_epochs"] == 8 and spent["saved_seconds"] == pytest.approx(80)


@pytest.mark.slow
def test_a_report_of_a_finished_study(finished: Finished, tmp_path: Path, pg_url: str) -> None:
    # The shared study: this is the one test that scores its test split.
    project, args = finished.project, [*finished.args, "report.out_dir=out"]
    first = project.run("study report", *args)
    assert first.code == 0, first.err
    assert "(computed now; evaluations: 1)" in first.out
    assert "diagnosis: " in first.out and "try: " in first.out
    folder = project.path / "out" / finished.name
    page = (folder / "report.html").read_text()
    for key in (
        "lengths", "examples", "confusion",
        "history", "iterations", "importances", "parallel", "slices", "curves", "capacity",
    ):  # fmt: skip
        assert f'<figure id="{key}">' in page, key
    # The page opens with the data, and the model's answers stand beside the best trial.
    assert page.index("The data: ") < page.index("Best trial") < page.index('id="confusion"')
    assert page.index('id="confusion"') < page.index("Top 5 trials")
    assert page.count("<script") >= 10 and "plotly" in page.lower()
    assert 'src="http' not in page, "self-contained: no script from the network"
    assert "Bias and variance" in page and "Top 5 trials" in page
    for png in (
        "optimization_history", "iterations", "param_importances", "parallel_coordinate",
        "slice", "learning_curves", "capacity", "data_lengths", "data_examples", "test_confusion",
    ):  # fmt: skip
        data = (folder / f"{png}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 15_000, png

    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 8 and list(trials["iteration"][:2]) == ["baseline", "units 16"]
    assert {"params_lr", "value", "state", "duration_s", "epochs"} <= set(trials.columns)
    curves = pd.read_csv(folder / "curves.csv")
    assert len(curves) == trials["epochs"].sum()
    assert {"trial", "epoch", "train_loss", "val_loss", "val_accuracy"} <= set(curves.columns)

    # The answers are the tested model's own: one per test example, kept on the study.
    study = load_study(pg_url, finished.name)
    answers, test = study.user_attrs["test_answers"], study.user_attrs["test"]
    assert answers["trial"] == test["trial"]
    assert sum(map(sum, answers["confusion"])) == test["n"]
    right = sum(answers["confusion"][i][i] for i in range(len(answers["classes"])))
    assert right / test["n"] == pytest.approx(test["accuracy"])
    counts = _table_row(page, "all")  # examples per split, beside each class's counts
    assert counts[2] == test["n"] and counts[0] > counts[1] > 0

    _looks_right_in_a_browser(folder, tmp_path)

    # The test split is scored once per study: a second report reuses the stored score.
    second = project.run("study report", *args)
    assert second.code == 0, second.err
    assert "(stored, computed " in second.out and "evaluations: 1)" in second.out
    assert "reuses the score computed" in (folder / "report.html").read_text()


def _table_row(page: str, first: str) -> list[int]:
    import re

    found = re.search(rf'<tr><td class="l">{first}</td>(.*?)</tr>', page, re.S)
    assert found, f"no row {first!r}"
    return [int(v) for v in re.findall(r"<td>(\d+)</td>", found.group(1))]


def test_a_report_of_a_study_without_a_finished_trial_says_so(
    project: Project, study_name: str
) -> None:
    result = project.run("study report", f"study.name={study_name}")
    assert result.code == 3
    assert f"no study named {study_name!r}" in result.err


@pytest.mark.slow
def test_trials_are_logged_to_mlflow_when_a_tracking_uri_is_set(
    project: Project, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [f"study.name={study_name}", *TINY, "max_epochs=1", f"tracking.mlflow_uri={uri}"]
    ran = project.run("study-worker", "n_trials=2", *args)
    assert ran.code == 0, ran.err
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, which later configs would read as
    # tracking.mlflow_uri: monkeypatch takes it out again after the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[study_name])
    assert len(runs) == 2
    assert runs["metrics.val_loss"].notna().all() and runs["params.lr"].notna().all()


def _tensorboard_runs(folder: Path) -> dict[str, Any]:
    """Each run's scalars (tag -> [(step, value)]) and HParams data, read back from its event
    files with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    runs = {}
    for run in sorted(p for p in folder.iterdir() if p.is_dir()):
        events = EventAccumulator(str(run), size_guidance={"scalars": 0})
        events.Reload()
        scalars = {
            tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]
        }
        hparams: dict[str, Any] = {}
        for content in events.PluginTagToContent("hparams").values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for name, value in data.session_start_info.hparams.items():
                    hparams[name] = value.WhichOneof("kind") and getattr(
                        value, value.WhichOneof("kind")
                    )
        runs[run.name] = {"scalars": scalars, "hparams": hparams}
    return runs


@pytest.mark.slow
def test_every_trial_is_a_tensorboard_run_with_its_curve_and_parameters(
    project: Project, study_name: str, tmp_path: Path
) -> None:
    folder = tmp_path / "tb"
    args = [f"study.name={study_name}", *TINY, f"tracking.tensorboard_dir={folder}"]
    ran = project.run("study-worker", "n_trials=3", "pruner=none", *args)
    assert ran.code == 0, ran.err
    runs = _tensorboard_runs(folder / study_name)
    trials = trials_of(project.storage[1].split("=", 1)[1], study_name)
    assert sorted(runs) == [f"trial-{t.number:05d}" for t in trials]
    for t in trials:
        run = runs[f"trial-{t.number:05d}"]
        curve = t.user_attrs["curve"]
        losses = run["scalars"]["val/loss"]
        assert [step for step, _ in losses] == [row["epoch"] for row in curve]
        assert [v for _, v in losses] == pytest.approx([row["val_loss"] for row in curve])
        assert {"train/loss", "val/accuracy", "val/f1"} <= set(run["scalars"])
        assert run["hparams"]["lr"] == pytest.approx(t.params["lr"])
        assert run["hparams"]["cell"] == t.params["cell"] and run["hparams"]["state"] == "complete"
        (value,) = run["scalars"]["hparam/val_loss"]
        assert value[1] == pytest.approx(t.value)


def test_a_tensorboard_folder_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = Project(tmp_path, []).run("study-worker", f"tracking.tensorboard_dir={blocked}/tb")
    assert result.code == 2
    assert result.err.startswith(f"error: tracking.tensorboard_dir={blocked}/tb: cannot write")


#: Loads the report in a frame of the width of a laptop screen and writes what it measured.
_MEASURE = """<pre id="out">pending</pre>
<iframe id="f" src="report.html" style="width:1280px;height:900px;border:0"></iframe>
<script>
document.getElementById("f").onload = () => setTimeout(() => {
  const d = document.getElementById("f").contentDocument, page = d.documentElement;
  const plots = [...d.querySelectorAll(".plotly-graph-div")];
  document.getElementById("out").textContent = JSON.stringify({
    scroll: page.scrollWidth, client: page.clientWidth, plots: plots.length,
    drawn: plots.filter(p => p.querySelector(".main-svg")).length,
    beyond: plots.filter(p => p.getBoundingClientRect().right > page.clientWidth + 1).length,
    ticks: [...d.querySelectorAll("#history .xtick text, #curves .xtick text")].map(
      t => t.textContent),
    labels: [...d.querySelectorAll("#history .ytitle, #slices .ytitle")].map(t => t.textContent),
  });
}, 4000);
</script>"""


def _looks_right_in_a_browser(folder: Path, tmp_path: Path) -> None:
    """In headless Chromium, at 1280 px: no sideways scrolling, every plot drawn inside the page,
    whole-number ticks for trials and epochs, and the metric's name on the value axes."""
    import functools
    import http.server
    import json
    import re
    import threading

    from conftest import ARTIFACTS, browse, chromium

    chromium()
    (folder / "measure.html").write_text(_MEASURE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        dom = browse(f"{base}/measure.html", tmp_path / "chromium", "--dump-dom")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report.png"
        browse(f"{base}/report.html", tmp_path / "chromium2", "--window-size=1280,4000",
               f"--screenshot={shot}")  # fmt: skip
    finally:
        server.shutdown()
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "pending", dom[-500:]
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert seen["scroll"] <= seen["client"], f"the page scrolls sideways: {seen}"
    assert seen["plots"] == 10 and seen["drawn"] == 10 and seen["beyond"] == 0, seen
    assert seen["ticks"] and all(re.fullmatch(r"\d+", t) for t in seen["ticks"]), seen["ticks"]
    assert seen["labels"] and all(label == "val_loss" for label in seen["labels"]), seen["labels"]
    assert shot.stat().st_size > 50_000, "a real screenshot"
