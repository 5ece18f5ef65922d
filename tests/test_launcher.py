"""study-launch: GPU placement, and a clean stop on Ctrl-C that loses no trial."""

from __future__ import annotations

import signal

import psycopg2
import pytest
import torch
from conftest import SLOW, TINY, Project, curve_lengths, study_exists, trials_of, wait_until

from study.errors import ConfigError
from study.launcher import gpu_plan
from study.storage import StorageConfig, database_url


def test_gpus_are_assigned_round_robin_with_k_workers_each() -> None:
    assert gpu_plan(4, ["0", "1"], per_gpu=2) == ["0", "1", "0", "1"]
    assert gpu_plan(3, ["5"], per_gpu=4) == ["5", "5", "5"]
    assert gpu_plan(2, [], per_gpu=1) == [None, None]
    with pytest.raises(ConfigError, match="workers=5 exceeds 2 GPU"):
        gpu_plan(5, ["0", "1"], per_gpu=2)


def test_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDY_DB_PASSWORD", "pw-from-env")
    url = database_url(StorageConfig(kind="postgres", url="postgresql://tuner@db:5432/studies"))
    assert url == "postgresql+psycopg2://tuner:pw-from-env@db:5432/studies"


def _running(pg_url: str, name: str) -> int:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trials') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute(
            "SELECT count(*) FROM trials JOIN studies USING (study_id)"
            " WHERE study_name = %s AND state = 'RUNNING'",
            (name,),
        )
        return int(cur.fetchone()[0])


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_the_study_resumes(
    project: Project, pg_url: str, study_name: str
) -> None:
    args = [f"study.name={study_name}", "n_trials=4", *TINY]
    launcher = project.popen("study-launch", *args, "max_epochs=500")
    wait_until(lambda: _running(pg_url, study_name) == 2, what="for both workers' trials")
    launcher.send_signal(signal.SIGINT)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, err
    assert "run the same command again" in err
    s = project.status(f"study.name={study_name}")["n_trials"]
    assert s["RUNNING"] == 0, "no trial is left running"
    assert s["WAITING"] == 2, "both interrupted trials were put back in the queue"
    again = project.run("study-launch", *args, "max_epochs=3")
    assert again.code == 0, again.err
    s = project.status(f"study.name={study_name}")["n_trials"]
    assert s["COMPLETE"] + s["PRUNED"] == 4 and s["RUNNING"] == 0 and s["WAITING"] == 0


@pytest.mark.slow
def test_ctrl_c_while_the_final_model_retrains_stops_the_launcher(
    project: Project, study_name: str
) -> None:
    """Once the workers are done the launcher retrains and scores; Ctrl-C there stops it (it
    used to be forwarded to workers that had ended, and the launcher went on), and `study test`
    scores the study afterwards."""
    args = [f"study.name={study_name}", "n_trials=1", "workers=1", *TINY]
    launcher = project.popen(
        "study-launch", *args, "protocol.retrain=always", "protocol.retrain_seeds=500"
    )
    assert launcher.stderr is not None
    for line in launcher.stderr:  # the board and the workers' lines, then the retraining
        if "retraining on" in line:
            break
    launcher.send_signal(signal.SIGINT)
    _, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 130, err
    assert "stopped while scoring the test split; `study test` scores it" in err
    assert "Traceback" not in err
    assert "test" not in project.status(f"study.name={study_name}")["best"], "nothing scored"
    scored = project.run("study test", f"study.name={study_name}", "protocol.retrain_seeds=1")
    assert scored.code == 0, scored.err
    assert 0.0 <= scored.json()["accuracy"] <= 1.0


@pytest.mark.slow
def test_two_machines_share_one_study_with_an_exact_budget(
    project: Project, pg_url: str, study_name: str
) -> None:
    # Two launchers in process groups of their own, as on two machines, on one PostgreSQL.
    args = [f"study.name={study_name}", "n_trials=9", "workers=2", *TINY]
    machines = [project.popen("study-launch", *args) for _ in range(2)]
    for m in machines:
        _, err = m.communicate(timeout=300)
        assert m.returncode == 0, err
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM studies WHERE study_name = %s", (study_name,))
        assert cur.fetchone()[0] == 1, "one study, created once"
        cur.execute(
            "SELECT t.number, t.state, a.value_json FROM trials t JOIN studies s USING (study_id)"
            " JOIN trial_user_attributes a USING (trial_id)"
            " WHERE s.study_name = %s AND a.key = 'worker'",
            (study_name,),
        )
        rows = cur.fetchall()
    assert sorted(n for n, _, _ in rows) == list(range(9)), "distinct trials, exact budget"
    assert {state for _, state, _ in rows} <= {"COMPLETE", "PRUNED"}
    assert len({w for _, _, w in rows}) >= 3, "workers of both launchers took trials"


def test_the_live_board_counts_rate_and_time_left() -> None:
    from rich.console import Console

    from study.launcher import Board

    now = [0.0]
    board = Board(budget=10, copied=2, clock=lambda: now[0])

    def snap(complete: int, pruned: int, best: float | None) -> dict:
        counts = {"COMPLETE": complete, "PRUNED": pruned, "FAIL": 1, "RUNNING": 2}
        return {"counts": counts, "best": best}

    assert board.rate(snap(2, 0, None)) == (None, None)  # copied trials only: nothing run yet
    console = Console(width=100, record=True)
    console.print(board.table(snap(2, 0, None)))
    assert "first trials running (2)" in console.export_text()
    nothing = {"counts": {"COMPLETE": 2, "PRUNED": 0, "FAIL": 0, "RUNNING": 0}, "best": None}
    console.print(board.table(nothing))
    assert "starting the workers" in console.export_text()
    now[0] = 1800.0  # half an hour later, 3 trials finished by this launch
    per_hour, eta = board.rate(snap(4, 1, 0.25))
    assert per_hour == pytest.approx(6.0) and eta == pytest.approx(7 / 6 * 3600)
    console = Console(width=100, record=True)
    console.print(board.table(snap(4, 1, 0.25)))
    text = console.export_text()
    for word in ("complete", "pruned", "failed", "running", "best", "trials/h", "ETA"):
        assert word in text
    assert "0.2500" in text and "6.0" in text and "1 h 10 min" in text
    assert "starting" not in text and "first trials" not in text, "numbers say it now"
    fast = Board(budget=10, copied=0, clock=lambda: now[0])
    fast.rate(snap(0, 0, None))
    now[0] += 600.0  # 9 trials in 10 minutes: the last one in about 67 s
    console = Console(width=100, record=True)
    console.print(fast.table(snap(9, 0, 0.25)))
    assert "67 s" in console.export_text(), "the last minute counts in seconds"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_refused_before_a_study_exists(
    project: Project, pg_url: str, study_name: str
) -> None:
    for command in ("study-worker", "study-launch"):
        result = project.run(command, f"study.name={study_name}", "device=cuda")
        assert result.code == 2, result.err
        assert result.err.strip().splitlines() == [
            "error: device=cuda but no CUDA device is visible; use device=auto or cpu"
        ]
    assert not study_exists(pg_url, study_name)


def test_an_artifact_store_the_workers_cannot_write_is_refused_before_a_study_exists(
    project: Project, pg_url: str, study_name: str
) -> None:
    """A path through a file: refused even for root, who may write anywhere else."""
    (project.path / "a-file").write_text("not a directory")
    for command in ("study-worker", "study-launch"):
        result = project.run(
            command, f"study.name={study_name}", "artifacts.base_path=a-file/artifacts"
        )
        assert result.code == 2, result.err
        (line,) = result.err.strip().splitlines()
        assert line.startswith("error: artifacts.base_path=a-file/artifacts is not writable (")
        assert line.endswith("e.g. artifacts.base_path=/shared/artifacts")
    assert not study_exists(pg_url, study_name)


@pytest.mark.slow
def test_workers_stop_when_their_launcher_is_killed(
    project: Project, pg_url: str, study_name: str
) -> None:
    """kill -9 of study-launch leaves no orphan: its worker finishes the epoch, puts its trial
    back in the queue and exits, as on a first SIGTERM."""
    import psutil
    from optuna.trial import TrialState

    args = [f"study.name={study_name}", "workers=1", "n_trials=2", "max_epochs=30", *SLOW]
    launcher = project.popen("study-launch", *args)
    wait_until(lambda: curve_lengths(pg_url, study_name).get(0, 0) >= 1, what="for an epoch")
    (worker,) = psutil.Process(launcher.pid).children()
    launcher.kill()
    launcher.wait()
    worker.wait(timeout=60)  # raises psutil.TimeoutExpired if it lives on
    states = {t.number: t.state for t in trials_of(pg_url, study_name)}
    assert states[0] == TrialState.FAIL and TrialState.WAITING in states.values(), states
