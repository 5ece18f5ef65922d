"""The shared study's storage: an exact global budget and clear database errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import optuna
import psycopg2
import pytest
import sqlalchemy as sa
from conftest import SERVER, Project, fresh_database, wait_until
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from study._retry import Outage
from study.errors import StorageError
from study.rdb import BudgetedRDBStorage, BudgetExhausted
from study.storage import StorageConfig, open_storage, trial_counts
from study.trial_cache import TrialCache

# These tests drive the storage with ask/tell, where Optuna notes that heartbeats are idle.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


def test_budget_is_exact_under_concurrent_asks(pg_url: str, study_name: str) -> None:
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url), new_trial_limit=10)
    optuna.create_study(study_name=study_name, storage=storage)
    created, refused = [], []

    def ask_until_refused() -> None:
        study = optuna.load_study(study_name=study_name, storage=storage)
        while True:
            try:
                trial = study.ask()
            except BudgetExhausted:
                refused.append(1)
                return
            created.append(trial.number)
            study.tell(trial, 1.0)

    threads = [threading.Thread(target=ask_until_refused) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(created) == list(range(10))
    assert len(refused) == 6


def test_failed_trials_do_not_use_the_budget(pg_url: str, study_name: str) -> None:
    """A trial that failed for a reason of its own (the worker records ``fail_reason``) is
    replaced by a new one."""
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url), new_trial_limit=2)
    study = optuna.create_study(study_name=study_name, storage=storage)
    failed = study.ask()
    failed.set_user_attr("fail_reason", "RuntimeError: boom")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), 1.0)
    with pytest.raises(BudgetExhausted):
        study.ask()


def test_a_stale_trial_keeps_its_place_until_its_retry_takes_it(
    pg_url: str, study_name: str
) -> None:
    """Optuna fails every stale trial first and retries them after: a new trial asked in
    between must not take the failed one's place, or the retry takes the study past its
    budget (1,000 virtual workers ended at 1,004 trials in bench/fleet.py)."""
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url), new_trial_limit=2)
    study = optuna.create_study(study_name=study_name, storage=storage)
    study.tell(study.ask(), 1.0)
    stale = study.ask()  # its worker dies
    storage.set_trial_state_values(stale._trial_id, TrialState.FAIL)  # Optuna's first loop
    with pytest.raises(BudgetExhausted):
        study.ask()  # another worker, between the two loops
    retry = storage.heartbeat_stale_trial_callback
    assert retry is not None
    retry(study, storage.get_trial(stale._trial_id))  # Optuna's second loop: the retry
    assert trial_counts(storage, storage.get_study_id_from_name(study_name))["INTERRUPTED"] == 1
    resumed = study.ask()  # the queued retry, not a new trial
    assert (
        RetryHeartbeatStaleTrialCallback.retried_trial_number(storage.get_trial(resumed._trial_id))
        == stale.number
    )
    study.tell(resumed, 1.0)
    with pytest.raises(BudgetExhausted):
        study.ask()
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


def test_a_retried_insert_counts_the_budget_again(
    pg_url: str, study_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna retries a failed insert after rolling it back, and the rollback releases the
    budget lock: the retry must lock and count again, or a trial another worker inserted
    in between takes the study past its budget."""
    import optuna.storages._rdb.storage as optuna_rdb

    cfg = StorageConfig(kind="postgres", url=pg_url)
    storage = open_storage(cfg, new_trial_limit=1)
    study = optuna.create_study(study_name=study_name, storage=storage)
    other = optuna.load_study(study_name=study_name, storage=open_storage(cfg, new_trial_limit=1))
    attempts = []

    def fail_first_attempt(study_id: int, template: object, session: object) -> None:
        attempts.append(1)
        BudgetedRDBStorage.before_insert(storage, study_id, template, session)  # type: ignore[arg-type]
        if len(attempts) == 1:  # the attempt fails after its count: Optuna rolls back, retries
            raise sa.exc.OperationalError("INSERT", {}, Exception("deadlock detected"))

    def another_worker_inserts(seconds: float) -> None:  # Optuna's pause between attempts
        other.tell(other.ask(), 1.0)

    monkeypatch.setattr(storage, "before_insert", fail_first_attempt)
    monkeypatch.setattr(optuna_rdb, "time", SimpleNamespace(sleep=another_worker_inserts))
    with pytest.raises(BudgetExhausted, match="1 of 1 trials used"):
        study.ask()
    assert len(attempts) == 2
    assert [t.number for t in other.get_trials()] == [0]


def test_a_connection_lost_during_start_up_is_waited_out(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the server has answered, a dropped connection while the worker sets up (a restart
    of the server or of PgBouncer) is weather: the worker retries instead of exiting."""
    attempts = []
    build = BudgetedRDBStorage.__init__

    def dropped_once(self: BudgetedRDBStorage, *args: object, **kwargs: object) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            lost = Exception("server closed the connection unexpectedly")
            raise sa.exc.OperationalError("SELECT 1", {}, lost)
        build(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BudgetedRDBStorage, "__init__", dropped_once)
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url))
    assert len(attempts) == 2 and storage.get_all_studies() is not None


def test_unreachable_database_is_one_line_without_password() -> None:
    cfg = StorageConfig(kind="postgres", url="postgresql://bob:hunter2@127.0.0.1:9/none")
    with pytest.raises(StorageError) as e:
        open_storage(cfg)
    message = str(e.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith(
        "cannot use the database at postgresql+psycopg2://bob:***@127.0.0.1:9"
    )


def test_a_refused_password_names_the_variable_it_comes_from() -> None:
    """The local server trusts every connection, so the server's refusal is built here: the
    line a user reads must say where the password comes from, and never show it."""
    from sqlalchemy.exc import OperationalError

    from study.storage import explain

    refused = Exception('FATAL:  password authentication failed for user "bob"')
    error = OperationalError("connect", {}, refused)
    message = explain(error, "postgresql://bob:hunter2@db:5432/x", "TEAM_DB_PASSWORD")
    assert "password authentication failed" in message and "hunter2" not in message
    assert "environment variable TEAM_DB_PASSWORD (storage.password_env)" in message


def test_study_worker_on_a_wrong_database_exits_3(project: Project) -> None:
    result = project.run("study-worker", "storage.url=postgresql://postgres@127.0.0.1:5432/nope")
    assert result.code == 3
    assert result.err.strip().splitlines()[-1].startswith("error: cannot use the database at")
    assert 'database "nope" does not exist' in result.err


def test_a_database_gone_longer_than_the_retry_window_is_one_line() -> None:
    """Storage calls wait out a restart; one that outlasts storage.retry_seconds gives up."""
    nowhere = sa.create_engine("postgresql+psycopg2://study@127.0.0.1:1/test")  # nothing listens
    with pytest.raises(StorageError, match="unreachable for 1 s.*storage.retry_seconds"):
        Outage(seconds=1.0).call(nowhere.connect)


def test_an_outage_is_timed_per_thread() -> None:
    """A worker's trial loop and its heartbeat thread share one storage. The loop's calls that
    succeed must not restart the window of a call the server keeps refusing in the other thread:
    that call would then never give up."""
    refusal = sa.exc.OperationalError(
        "SELECT 1", {}, Exception('FATAL:  too many connections for role "fleet"')
    )

    def refused() -> None:
        raise refusal

    outage = Outage(seconds=1.0)
    gave_up: list[StorageError] = []

    def beat() -> None:
        try:
            outage.call(refused)
        except StorageError as e:
            gave_up.append(e)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while thread.is_alive() and time.monotonic() < deadline:
        outage.call(lambda: None)
        time.sleep(0.05)
    assert not thread.is_alive(), "the refused call still retrying after 15 s"
    assert "no free connection for 1 s" in str(gave_up[0])


def test_trial_cache_sees_its_own_changes_at_once_and_others_after_sync(
    pg_url: str, study_name: str
) -> None:
    """A worker's view of the study (what its sampler and pruner read): its own trials at once,
    another worker's once the view is older than storage.sync_seconds."""
    now = [0.0]
    backend = open_storage(StorageConfig(kind="postgres", url=pg_url))
    mine = TrialCache(backend, sync_seconds=2, clock=lambda: now[0])
    study = optuna.create_study(study_name=study_name, storage=mine)
    other = optuna.load_study(
        study_name=study_name, storage=open_storage(StorageConfig(kind="postgres", url=pg_url))
    )
    study.tell(study.ask(), 1.0)
    done = (TrialState.COMPLETE,)
    assert [t.value for t in study.get_trials(states=done)] == [1.0]
    other.tell(other.ask(), 2.0)  # another worker finishes a trial
    assert [t.value for t in study.get_trials(states=done)] == [1.0]  # served from memory
    now[0] += 2.1  # the view is now older than sync_seconds
    assert [t.value for t in study.get_trials(states=done)] == [1.0, 2.0]
    trial = study.ask()
    assert [(t.number, t.state) for t in study.get_trials()][-1] == (2, TrialState.RUNNING)
    study.tell(trial, 0.5)
    assert [t.value for t in study.get_trials(states=done)] == [1.0, 2.0, 0.5]  # by number


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of this test's own, which it may take away and give back."""
    with fresh_database("study_outage") as url:
        yield url


def _outage(url: str, seconds: float) -> threading.Thread:
    """Cut every connection to the database and refuse new ones for ``seconds``."""
    name = url.rpartition("/")[2]
    admin = psycopg2.connect(SERVER)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )

    def end() -> None:
        time.sleep(seconds)  # how long the database stays away: the scenario, not a wait
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()

    thread = threading.Thread(target=end)
    thread.start()
    return thread


def test_a_worker_s_view_of_the_study_waits_out_an_outage(own_database: str) -> None:
    """What a worker does between and during trials, through Optuna's trial cache (reading the
    trials, writing a drawn parameter, finding the best): each waits for the database."""
    cfg = StorageConfig(kind="postgres", url=own_database, retry_seconds=60)
    study = optuna.create_study(storage=TrialCache(open_storage(cfg), sync_seconds=0))
    first = study.ask()
    first.suggest_float("x", 0, 1)
    study.tell(first, 1.0)
    down = _outage(own_database, seconds=2)
    trial = study.ask()  # reads the queue and the trials, inserts the trial: all refused at first
    trial.suggest_float("x", 0, 1)
    study.tell(trial, 0.5)
    down.join()
    assert [t.value for t in study.get_trials()] == [1.0, 0.5]
    assert study.best_trial.number == 1


def test_many_stale_trials_are_shared_out_instead_of_fought_over(
    pg_url: str, study_name: str
) -> None:
    """A lost machine leaves many stale trials: each look fails a few of them, drawn at random,
    so that a fleet's workers share them out; all are failed and retried all the same."""
    from study.rdb import STALE_PER_CHECK

    cfg = StorageConfig(kind="postgres", url=pg_url, heartbeat_interval=1, grace_period=2)
    storage = open_storage(cfg)
    study = optuna.create_study(study_name=study_name, storage=storage)
    lost = [study.ask() for _ in range(10)]
    ids = [t._trial_id for t in lost]
    for trial_id in ids:
        storage.record_heartbeat(trial_id)
    with storage.engine.begin() as conn:  # the machine went away an hour ago
        conn.execute(
            sa.text(
                "UPDATE trial_heartbeats SET heartbeat = heartbeat - interval '1 hour' "
                "WHERE trial_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    study_id = storage.get_study_id_from_name(study_name)
    first = storage.stale_trial_ids(study_id)
    assert len(first) == STALE_PER_CHECK and set(first) <= set(ids)
    looks = 0
    while storage.stale_trial_ids(study_id):
        optuna.storages.fail_stale_trials(study)
        looks += 1
    assert looks == -(-len(ids) // STALE_PER_CHECK)
    states = [storage.get_trial(i).state for i in ids]
    assert states == [TrialState.FAIL] * len(ids)
    assert trial_counts(storage, study_id)["WAITING"] == len(ids), "each one retried"


def test_enqueued_points_keep_their_order_and_retries_are_spread_out(
    pg_url: str, study_name: str
) -> None:
    """Grid points and hand-tuned steps are claimed in their order; the retries a lost machine
    leaves are tried in a different order by each worker, so workers do not fight over each."""
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url))
    study = optuna.create_study(study_name=study_name, storage=storage)
    for x in range(3):
        study.enqueue_trial({"x": x})
    study_id = storage.get_study_id_from_name(study_name)
    for n in range(8):
        lost = optuna.trial.create_trial(
            state=TrialState.WAITING, system_attrs={"failed_trial": n, "retry_history": [n]}
        )
        storage.create_new_trial(study_id, template_trial=lost)
    cache = TrialCache(storage, sync_seconds=0)
    orders = [
        [t.number for t in cache.get_all_trials(study_id, states=(TrialState.WAITING,))]
        for _ in range(6)
    ]
    assert all(
        order[:3] == [0, 1, 2] and sorted(order[3:]) == list(range(3, 11)) for order in orders
    )
    assert len({tuple(order) for order in orders}) > 1, "each look draws its own order"


def test_a_new_running_trial_has_a_heartbeat_from_its_first_commit(
    pg_url: str, study_name: str
) -> None:
    """A trial whose insert committed while its worker saw the connection drop (the worker then
    inserts another) must still go stale and be retried, not stay RUNNING for ever."""
    cfg = StorageConfig(kind="postgres", url=pg_url, heartbeat_interval=1, grace_period=2)
    storage = open_storage(cfg, new_trial_limit=5)
    study = optuna.create_study(study_name=study_name, storage=storage)
    orphan = study.ask()  # nobody will ever record a heartbeat for it
    with storage.engine.connect() as conn:
        beats = conn.execute(
            sa.text("SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t"),
            {"t": orphan._trial_id},
        ).scalar_one()
    assert beats == 1
    study_id = storage.get_study_id_from_name(study_name)
    wait_until(lambda: storage.stale_trial_ids(study_id) == [orphan._trial_id], timeout=10)


def _param_transactions(storage: BudgetedRDBStorage, trial_id: int) -> list[tuple[str, int]]:
    """Each parameter of a trial with the transaction that wrote it (PostgreSQL's xmin)."""
    with storage.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT param_name, CAST(CAST(xmin AS text) AS bigint) FROM trial_params"
                " WHERE trial_id = :t ORDER BY param_name"
            ),
            {"t": trial_id},
        ).all()
    return [(name, int(xid)) for name, xid in rows]


def test_a_worker_writes_a_trial_s_drawn_parameters_in_one_transaction(
    pg_url: str, study_name: str
) -> None:
    """The default space's parameters, drawn through a worker's trial cache, are written in one
    transaction (Optuna alone commits each), with the values drawn; a space that changed under
    the study is still refused; parameters drawn before a failure in the block are kept; and a
    parameter written already (a commit nobody was told of, retried) does not lose the others."""
    from study.config import load_config
    from study.space import suggest

    backend = open_storage(StorageConfig(kind="postgres", url=pg_url))
    study = optuna.create_study(study_name=study_name, storage=TrialCache(backend, 0.5))
    space = load_config([]).search_space
    trial = study.ask()
    chosen = suggest(trial, space)
    written = _param_transactions(backend, trial._trial_id)
    assert [name for name, _ in written] == sorted(trial.params) and len(written) >= 8
    assert len({xid for _, xid in written}) == 1
    assert backend.get_trial(trial._trial_id).params == {k: chosen[k] for k in trial.params}

    second = study.ask()
    refused = pytest.raises(ValueError, match="different distribution")
    with refused, backend.params_in_one_transaction():
        second.suggest_float("x", 0.0, 1.0)
        second.suggest_categorical("lr", ["a", "b"])  # lr is a float in this study
    assert [name for name, _ in _param_transactions(backend, second._trial_id)] == []

    third = study.ask()
    with pytest.raises(RuntimeError, match="mid-way"), backend.params_in_one_transaction():
        third.suggest_float("x", 0.0, 1.0)
        raise RuntimeError("the block failed mid-way")
    assert [name for name, _ in _param_transactions(backend, third._trial_id)] == ["x"]

    fourth = study.ask()
    backend.write_param(
        fourth._trial_id, "x", 0.25, optuna.distributions.FloatDistribution(0, 1), None
    )
    with backend.params_in_one_transaction():
        fourth.suggest_float("x", 0.0, 1.0)  # its own draw: the row there already stays
        fourth.suggest_float("y", 0.0, 1.0)
    assert [name for name, _ in _param_transactions(backend, fourth._trial_id)] == ["x", "y"]
    assert backend.get_trial(fourth._trial_id).params["x"] == 0.25


def test_the_service_s_counts_run_without_postgresql_s_jit(pg_url: str, study_name: str) -> None:
    """The budget's counts (before the lock and under it) and the status's count of interrupted
    trials run with JIT off: their estimated cost passes jit_above_cost on a database of some
    thousands of trials, and compiling them took 180-440 ms each time, for 1 ms of work."""
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url), new_trial_limit=5)
    seen: list[tuple[str, str]] = []

    @sa.event.listens_for(storage.engine, "before_cursor_execute")
    def _jit(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT count(*) FROM trials t"):
            with conn.connection.cursor() as probe:
                probe.execute("SHOW jit")
                seen.append((statement.split("AND")[1].strip()[:12], probe.fetchone()[0]))

    study = optuna.create_study(study_name=study_name, storage=storage)
    study.tell(study.ask(), 1.0)
    trial_counts(storage, storage.get_study_id_from_name(study_name))
    assert len(seen) == 3 and {jit for _, jit in seen} == {"off"}, seen
