"""The shared study's storage: an exact global budget and clear database errors."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
import sqlalchemy as sa
from conftest import Project
from optuna.trial import TrialState

from study._retry import Outage
from study.errors import StorageError
from study.rdb import BudgetExhausted
from study.storage import StorageConfig, open_storage
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
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url), new_trial_limit=2)
    study = optuna.create_study(study_name=study_name, storage=storage)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), 1.0)
    with pytest.raises(BudgetExhausted):
        study.ask()


def test_unreachable_database_is_one_line_without_password() -> None:
    cfg = StorageConfig(kind="postgres", url="postgresql://bob:hunter2@127.0.0.1:9/none")
    with pytest.raises(StorageError) as e:
        open_storage(cfg)
    message = str(e.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith(
        "cannot use the database at postgresql+psycopg2://bob:***@127.0.0.1:9"
    )


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


def test_trial_cache_sees_its_own_changes_at_once_and_others_after_sync(
    pg_url: str, study_name: str
) -> None:
    """A worker's view of the study (what its sampler and pruner read): its own trials at once,
    another worker's once the view is older than storage.sync_seconds."""
    mine = TrialCache(open_storage(StorageConfig(kind="postgres", url=pg_url)), sync_seconds=2)
    study = optuna.create_study(study_name=study_name, storage=mine)
    other = optuna.load_study(
        study_name=study_name, storage=open_storage(StorageConfig(kind="postgres", url=pg_url))
    )
    study.tell(study.ask(), 1.0)
    done = (TrialState.COMPLETE,)
    assert [t.value for t in study.get_trials(states=done)] == [1.0]
    other.tell(other.ask(), 2.0)  # another worker finishes a trial
    assert [t.value for t in study.get_trials(states=done)] == [1.0]  # served from memory
    time.sleep(2.1)
    assert [t.value for t in study.get_trials(states=done)] == [1.0, 2.0]
    trial = study.ask()
    assert [(t.number, t.state) for t in study.get_trials()][-1] == (2, TrialState.RUNNING)
    study.tell(trial, 0.5)
    assert [t.value for t in study.get_trials(states=done)] == [1.0, 2.0, 0.5]  # by number
