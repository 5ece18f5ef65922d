"""The fleet's database: a full server is waited out, and every guarantee the workers rely on
holds through PgBouncer in transaction mode (a real PgBouncer before the real server)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from conftest import (
    HEARTBEAT,
    SERVER,
    SLOW,
    TINY,
    PgBouncer,
    Project,
    curve_lengths,
    fresh_database,
    running_pgbouncer,
    trials_of,
    wait_until,
)
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


@contextlib.contextmanager
def limited_database(limit: int) -> Iterator[str]:
    """A database whose owner may hold at most ``limit`` connections (the server refuses more,
    as a full server does): its URL, for that owner."""
    role = f"fleet_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(SERVER)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}")
    try:
        with fresh_database("study_full") as url:
            name = url.rpartition("/")[2]
            with admin.cursor() as cur:
                cur.execute(f'ALTER DATABASE "{name}" OWNER TO {role}')
            yield url.replace("://postgres@", f"://{role}@")
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP ROLE {role}")
        admin.close()


def test_workers_wait_for_a_full_server_instead_of_crashing(tmp_path, study_name: str) -> None:
    """Four workers and their launcher on three connection slots (creating Optuna's tables takes
    three at once), each opening a connection per call (storage.pool_size=0): they take turns,
    and the study ends with its exact budget and no traceback. With one connection kept per
    process (the default) they starved one another: those training kept their slots while one
    holding a study lock waited for a second connection."""
    with limited_database(3) as url:
        project = Project(tmp_path, ["storage=postgres", f"storage.url={url}"])
        result = project.run(
            "study-launch",
            f"study.name={study_name}",
            "workers=4",
            "n_trials=8",
            "storage.pool_size=0",
            *TINY,
        )
        printed = result.out + result.err
        assert result.code == 0, result.err
        assert "Traceback" not in printed
        assert "database full (no free connection: max_connections)" in printed
        assert "database back after" in printed
        # A worker cut off past the grace period has its trial taken over and retried: the
        # budget counts the retry, and nothing is left failed or running.
        n = project.status(f"study.name={study_name}")["n_trials"]
        assert n["COMPLETE"] + n["PRUNED"] == 8
        assert n["FAIL"] == n["RUNNING"] == n["WAITING"] == 0
        assert n["total"] == 8 + n["INTERRUPTED"]


def test_a_server_that_stays_full_ends_in_one_line_naming_the_fix(
    tmp_path, study_name: str
) -> None:
    with limited_database(0) as url:
        project = Project(tmp_path, ["storage=postgres", f"storage.url={url}"])
        result = project.run("study-worker", f"study.name={study_name}", "storage.retry_seconds=2")
    assert result.code == 3
    assert "Traceback" not in result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("error: the database had no free connection for 2 s")
    assert "max_connections" in last and "PgBouncer" in last


def test_a_heartbeat_refused_past_the_window_is_one_line_and_the_next_one_lands(
    study_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Optuna's heartbeat thread dies at its first exception: a beat the full server refused for
    storage.retry_seconds killed it with a traceback, and the trial then looked dead while it
    trained. The beat is skipped in one line instead, and the next one is recorded."""
    import optuna

    from study.storage import StorageConfig, open_storage

    with limited_database(4) as url:  # enough to create the tables
        storage = open_storage(StorageConfig(kind="postgres", url=url, retry_seconds=1))
        trial = optuna.create_study(study_name=study_name, storage=storage).ask()
        storage.engine.dispose()  # its idle connection gives the slot back

        def last_beat() -> object:
            with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
                cur.execute("SELECT heartbeat FROM trial_heartbeats")
                return cur.fetchone()[0]

        first = last_beat()
        held = [psycopg2.connect(url) for _ in range(4)]  # the server is full
        try:
            storage.record_heartbeat(trial._trial_id)
        finally:
            for conn in held:
                conn.close()
        assert (
            f"heartbeat of trial id {trial._trial_id} not recorded: the database had no free "
            "connection for 1 s"
        ) in caplog.text
        storage.record_heartbeat(trial._trial_id)
        storage.engine.dispose()
        assert last_beat() > first


def test_through_pgbouncer_a_killed_worker_is_retried_and_the_budget_is_exact(
    bounced: Project, pg_url: str, pgbouncer: PgBouncer, study_name: str
) -> None:
    """Heartbeats, the retry of a dead worker's trial, the budget lock, the setup and
    test-evaluation locks and ``study status``, all through transaction pooling, with more
    worker connections than PgBouncer has server connections."""
    args = [f"study.name={study_name}", "n_trials=5", "max_epochs=4", *HEARTBEAT, *SLOW]
    worker = bounced.popen("study-worker", *args)
    wait_until(lambda: curve_lengths(pg_url, study_name).get(0, 0) >= 2, what="for 2 epochs")
    worker.kill()
    worker.wait()

    launched = bounced.run("study-launch", "workers=3", *args)
    assert launched.code == 0, launched.err
    assert "TEST accuracy" in launched.out
    trials = trials_of(pg_url, study_name)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 5, "the budget, exactly"
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [0]
    (retry,) = [t for t in done if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 0]
    assert retry.user_attrs["resumed_from_epoch"] >= 1, "resumed from its checkpoint"
    assert len({t.user_attrs["worker"] for t in done}) >= 2

    status = bounced.status(f"study.name={study_name}")
    assert status["n_trials"]["INTERRUPTED"] == 1 and status["n_trials"]["total"] == 6
    assert status["best"]["test"] is not None
    pools = [row for row in pgbouncer.show("POOLS") if row[0] == pg_url.rpartition("/")[2]]
    assert pools, "the workers' connections went through PgBouncer"


def test_a_worker_starts_through_a_pool_of_one_server_connection(pg_url: str) -> None:
    """Optuna's schema check held a transaction open while it took a second connection: through
    PgBouncer every starting worker held one server connection and waited for another, so
    workers starting together (here one, with one server connection) deadlocked the pool until
    PgBouncer gave up. Each step of a start now needs one connection at a time."""
    from study.storage import StorageConfig, open_storage

    open_storage(StorageConfig(kind="postgres", url=pg_url))  # the tables exist
    with running_pgbouncer(pool_size=1, query_wait_timeout=10) as bouncer:
        cfg = StorageConfig(kind="postgres", url=bouncer.url(pg_url), retry_seconds=5)
        with pytest.MonkeyPatch.context() as patch:
            import study.storage

            patch.setattr(study.storage, "_SCHEMA_CHECKED", set())  # as in a fresh process
            storage = open_storage(cfg)
        assert storage.get_all_studies() is not None
        storage.engine.dispose()
