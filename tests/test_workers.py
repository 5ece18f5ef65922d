"""Real worker processes on one study in a real PostgreSQL database."""

from __future__ import annotations

import pytest
from conftest import TINY, Project, trials_of
from optuna.trial import TrialState

pytestmark = pytest.mark.slow


def test_two_workers_share_one_study_with_distinct_trials(
    project: Project, pg_url: str, study_name: str
) -> None:
    health = project.path / "health" / "w0.alive"
    first = project.popen(
        "study-worker",
        f"study.name={study_name}",
        "n_trials=8",
        f"worker.health_file={health}",
        *TINY,
    )
    second = project.popen(
        "study-worker", f"study.name={study_name}", "n_trials=8", "worker.index=1", *TINY
    )
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert second.wait(timeout=300) == 0, second.stderr.read() if second.stderr else ""
    trials = trials_of(pg_url, study_name)
    assert len(trials) == 8
    assert health.stat().st_mtime > max(t.datetime_start.timestamp() for t in trials) - 60
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, "both workers took trials"
    assert len({t.number for t in trials}) == 8
    # Each trial ran once: its learning curve has one entry per epoch and no repeats.
    for t in trials:
        epochs = [row["epoch"] for row in t.user_attrs["curve"]]
        assert epochs == list(range(len(epochs)))

    # The kept model unreadable (a wrong artifacts setting, a damaged disk): one line, exit 3.
    for f in (project.path / ".study" / "artifacts").iterdir():
        if f.is_file():
            f.write_bytes(b"not a model")
    result = project.run("study test", f"study.name={study_name}")
    assert result.code == 3
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("error: the model of trial") and " at .study/artifacts/" in last
    assert "is damaged (" in last and last.endswith("add protocol.retrain=always")
    fixed = project.run("study test", f"study.name={study_name}", "protocol.retrain=always")
    assert fixed.code == 0, fixed.err
    retrained = fixed.json()["retrained"]
    assert retrained["epochs"] >= 1, "the fix it names works"
    assert retrained["train_examples"] == 270, "on JapaneseVowels' training and validation splits"


def test_global_budget_holds_across_two_launches(
    project: Project, pg_url: str, study_name: str
) -> None:
    def states() -> list[TrialState]:
        return [t.state for t in trials_of(pg_url, study_name)]

    first = project.run("study-launch", f"study.name={study_name}", "n_trials=5", *TINY)
    assert first.code == 0, first.err
    assert len(states()) == 5
    again = project.run("study-launch", f"study.name={study_name}", "n_trials=5", *TINY)
    assert again.code == 0, again.err
    assert len(states()) == 5
    more = project.run("study-launch", f"study.name={study_name}", "n_trials=7", *TINY)
    assert more.code == 0, more.err
    assert len(states()) == 7 and TrialState.RUNNING not in states()


def test_grid_runs_each_point_exactly_once_with_three_workers(
    bounced: Project, pg_url: str, study_name: str
) -> None:
    """Through PgBouncer in transaction mode, as a fleet reaches its database: the grid's
    queue hands each point out once."""
    result = bounced.run(
        "study-launch",
        f"study.name={study_name}",
        "sampler=grid",
        "search_space=grid",
        "pruner=none",
        "workers=3",
        "n_trials=100",
        "max_epochs=2",
        "search_space.hidden_size.choices=[8]",
    )
    assert result.code == 0, result.err
    trials = trials_of(pg_url, study_name)
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(points) == 12 == len(set(points)), "3 cells x 1 size x 2 directions x 2 lrs"
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 3


def test_a_lagging_trial_is_pruned(project: Project, pg_url: str, study_name: str) -> None:
    # One worker runs a fixed order: a good learning rate, then a hopeless one, and so on.
    result = project.run(
        "study-launch",
        f"study.name={study_name}",
        "workers=1",
        "sampler=grid",
        "search_space=grid",
        "search_space.cell.choices=[gru]",
        "search_space.bidirectional.choices=[false]",
        "search_space.hidden_size.choices=[16,24]",
        "search_space.lr.choices=[0.02,1e-6]",
        "pruner=median",
        "pruner.n_startup_trials=1",
        "pruner.n_warmup_steps=1",
        "max_epochs=6",
    )
    assert result.code == 0, result.err
    by_lr = {}
    for t in trials_of(pg_url, study_name):
        by_lr.setdefault(t.params["lr"], []).append(t)
    slow = by_lr[1e-6]
    assert all(t.state == TrialState.PRUNED for t in slow)
    assert all(len(t.user_attrs["curve"]) < 6 for t in slow), "pruned before the last epoch"
    assert any(t.state == TrialState.COMPLETE for t in by_lr[0.02])


def test_default_study_on_embedded_postgres_reports_test_score_once(tmp_path) -> None:
    project = Project(tmp_path, ["storage=embedded"])
    result = project.run("study-launch", "n_trials=6", "workers=2", *TINY)
    assert result.code == 0, result.err
    assert "TEST accuracy" in result.out
    # One line per finished trial, without the worker id the [wI] prefix already gives.
    finished = [line for line in result.err.splitlines() if " complete: val_loss=" in line]
    finished += [line for line in result.err.splitlines() if " pruned after " in line]
    assert len(finished) == 6, result.err
    assert all(line.startswith("[w") and "worker=" not in line for line in finished)
    assert "finished with value" not in result.err and "parameters:" not in result.err
    s = project.status()
    assert s["study"] == "japanese_vowels-lstm"
    assert s["n_trials"]["total"] == 6 and s["n_trials"]["RUNNING"] == 0
    test = s["best"]["test"]
    assert test["trial"] == s["best"]["number"] and test["evaluations"] == 1
    assert 0.0 <= test["accuracy"] <= 1.0 and test["n"] == 370
    again = project.run("study test")
    assert again.code == 0, again.err
    assert '"evaluations": 1' in again.out, "the stored score is reused, the test set untouched"
    assert (tmp_path / ".study" / "pgdata" / "PG_VERSION").exists()
    # Of all final models only the best trial's is kept, and status names it; each trial's
    # learning curve (a small CSV) stays.
    assert (tmp_path / s["best"]["model"]).is_file()
    files = [p for p in (tmp_path / ".study" / "artifacts").iterdir() if p.is_file()]
    curves = [p for p in files if p.read_bytes().startswith(b"epoch,")]
    assert len(curves) == 6
    assert sorted(set(files) - set(curves)) == [tmp_path / s["best"]["model"]]


def test_drained_workers_look_less_often_the_longer_they_wait() -> None:
    """A worker whose budget is spent waits for the trials still running elsewhere. At first it
    looks every second (a small study's last worker leaves promptly); after minutes of waiting
    (a fleet's hundreds of drained workers) every heartbeat interval, at jittered times."""
    import random
    import threading

    from study.drain import Drain

    drain = Drain(None, 0, threading.Event(), lambda: None, jitter=random.Random(0))  # type: ignore[arg-type]
    assert 0.8 <= drain.pause(0.0, 10.0) <= 1.2
    assert 0.8 <= drain.pause(5.0, 10.0) <= 1.2, "a short wait: still every second"
    assert 3.2 <= drain.pause(40.0, 10.0) <= 4.8, "a tenth of the time waited"
    long_waits = [drain.pause(600.0, 10.0) for _ in range(200)]
    assert all(8.0 <= p <= 12.0 for p in long_waits), "at most the heartbeat interval, +-20 %"
    assert max(long_waits) - min(long_waits) > 2.0, "spread out, not in lockstep"
