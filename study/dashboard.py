"""``study dashboard``: optuna-dashboard on a study's storage, read-only unless asked otherwise,
behind HTTP basic authentication once it leaves this machine.

Read-only twice over. The dashboard connects with a database role that may read the study
tables and nothing else (``dashboard.user``): the service makes it on the embedded server, and
``study dashboard --viewer-sql`` prints the SQL that makes it on an existing one. And every
request that would change something (a delete, a rename, a note, an upload) is answered 403
with a reason the page shows, before it reaches the database. ``dashboard.writable=true``
connects with the workers' role and lets the browser edit.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from study.errors import ConfigError, StorageError

if TYPE_CHECKING:  # the command imports the heavy parts only once it runs
    from study.config import Config
    from study.rdb import BudgetedRDBStorage
    from study.storage import StorageConfig

log = logging.getLogger(__name__)

#: Addresses that reach only this machine.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass
class DashboardConfig:
    #: The database role the dashboard reads with: SELECT on the study tables and nothing else.
    user: str = "study_viewer"
    #: The environment variable holding that role's password (the embedded server needs none).
    password_env: str = "STUDY_VIEWER_PASSWORD"
    #: Connect with the workers' role instead, and let the browser delete, rename and write notes.
    writable: bool = False
    #: The environment variable holding ``name:password`` for HTTP basic authentication: always
    #: asked for when set, and required when ``--host`` is not a loopback address.
    auth_env: str = "STUDY_DASHBOARD_AUTH"

    def validate(self) -> None:
        if not _ROLE.fullmatch(self.user):
            raise ConfigError(
                f"dashboard.user={self.user!r} is not a plain PostgreSQL role name; use "
                "lower-case letters, digits and _ (e.g. study_viewer)"
            )


# --- the read-only role ------------------------------------------------------------------------


def _sql() -> str:
    from importlib.resources import files

    return files("study").joinpath("viewer.sql").read_text()


def viewer_sql(storage: StorageConfig, dash: DashboardConfig) -> str:
    """``study/viewer.sql`` for psql, ready to pipe: the SQL an administrator runs once on an
    existing server to make the dashboard's role, which may read the tables the workers' role
    creates, now and later, and change nothing. The password is read from the environment
    (``dashboard.password_env``), never written in the text or on a command line."""
    from sqlalchemy.engine import make_url

    from study.storage import masked

    owner = make_url(storage.url).username or "postgres"
    return (
        f"-- study dashboard's read-only role on {masked(storage.url)}; as an administrator:\n"
        f"--   export {dash.password_env}=...\n"
        "--   study dashboard storage=postgres --viewer-sql | psql <the database, as an admin>\n"
        f"\\set viewer {dash.user}\n"
        f"\\set owner {owner}\n" + _sql().replace("STUDY_VIEWER_PASSWORD", dash.password_env)
    )


def _grant_viewer(storage: BudgetedRDBStorage, viewer: str) -> None:
    """Make (or bring up to date) the read-only role on the embedded server: the grants of
    ``study/viewer.sql``; the role needs no password, as the server trusts only its own socket."""
    import sqlalchemy as sa

    from study.storage import setup_lock

    grants = [line for line in _sql().splitlines() if line.startswith(("GRANT ", "ALTER DEFAULT "))]
    with setup_lock(storage), storage.engine.begin() as conn:
        database, owner = conn.execute(sa.text("SELECT current_database(), current_user")).one()
        names = {"viewer": viewer, "DBNAME": database, "owner": owner}
        conn.execute(
            sa.text(
                f'DO $$ BEGIN CREATE ROLE "{viewer}" LOGIN; '
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
        )
        for grant in grants:
            for name, value in names.items():
                grant = grant.replace(f':"{name}"', f'"{value}"')
            conn.execute(sa.text(grant))


def _viewer_storage(storage: StorageConfig, dash: DashboardConfig, url: str) -> StorageConfig:
    from sqlalchemy.engine import make_url

    as_viewer = make_url(url).set(username=dash.user, password=None)
    return dataclasses.replace(
        storage,
        kind="postgres",
        url=as_viewer.render_as_string(hide_password=False),
        password_env=dash.password_env,
    )


def _wait_for_tables(cfg: StorageConfig) -> None:
    """A dashboard started before any worker (compose starts them together) waits for the first
    one to create the study tables: the read-only role cannot."""
    import sqlalchemy as sa

    from study.storage import database_url, explain, masked, tables_ready

    url, said = database_url(cfg), False
    try:
        while not tables_ready(url, cfg.retry_seconds):
            if not said:
                log.info("no study tables in %s yet: waiting for the first worker", masked(url))
                said = True
            time.sleep(5)
    except sa.exc.OperationalError as e:
        raise StorageError(explain(e, url, cfg.password_env)) from e


def open_view(cfg: Config) -> tuple[Any, BudgetedRDBStorage]:
    """The storage the dashboard serves, and what keeps an embedded server up meanwhile."""
    from study.storage import open_storage

    # One process answering a browser, a page being many storage calls: it keeps a connection
    # between them even where the workers open one per call (storage.pool_size=0).
    served = dataclasses.replace(cfg.storage, pool_size=max(1, cfg.storage.pool_size))
    if cfg.dashboard.writable:
        storage = open_storage(served)
        return storage, storage
    if cfg.storage.kind == "embedded":
        owner = open_storage(cfg.storage)  # for embedded: keeps the server up meanwhile
        _grant_viewer(owner, cfg.dashboard.user)
        owner.engine.dispose()
        viewer = _viewer_storage(served, cfg.dashboard, owner.url)
        return owner, open_storage(viewer, create=False)
    viewer = _viewer_storage(served, cfg.dashboard, cfg.storage.url)
    try:
        _wait_for_tables(viewer)
        return None, open_storage(viewer, create=False)
    except StorageError as e:
        if f'"{cfg.dashboard.user}"' not in str(e):  # role missing, or its password refused
            raise
        raise StorageError(
            f"{str(e).split('; ')[0]}; the dashboard reads as dashboard.user="
            f"{cfg.dashboard.user}: make that role "
            "with `study dashboard storage=postgres --viewer-sql | psql <the database, as an "
            "admin>` (README 'Sharing the dashboard'), or read with the workers' role: "
            "dashboard.writable=true"
        ) from e


# --- the web app -------------------------------------------------------------------------------


def credentials(dash: DashboardConfig, host: str) -> tuple[str, str] | None:
    """The HTTP basic authentication pair from the environment; refused when the dashboard
    would serve beyond this machine without one."""
    raw = os.environ.get(dash.auth_env, "")
    if not raw:
        if host in LOOPBACK:
            return None
        raise ConfigError(
            f"--host {host} serves the dashboard beyond this machine and optuna-dashboard has no "
            f"login: export {dash.auth_env}=name:password (HTTP basic authentication; put TLS in "
            "front of it, README 'Sharing the dashboard') or keep --host 127.0.0.1"
        )
    name, sep, password = raw.partition(":")
    if not (sep and name and password):
        raise ConfigError(f"{dash.auth_env} must be name:password (both non-empty)")
    return name, password


READ_ONLY = (
    "this dashboard is read-only: deleting, renaming, notes and uploads need "
    "`study dashboard dashboard.writable=true`"
)
#: Methods that only read.
_SAFE = ("GET", "HEAD", "OPTIONS")


def guard(app: Any, login: tuple[str, str] | None, writable: bool) -> None:
    """Ask for ``login`` on every request (when given), and refuse every write unless
    ``writable``: hooks on optuna-dashboard's own Bottle app."""
    from bottle import HTTPResponse, request

    def check() -> None:
        if login is not None:
            given = request.auth or ("", "")
            ok = hmac.compare_digest(given[0].encode(), login[0].encode())
            ok &= hmac.compare_digest(given[1].encode(), login[1].encode())
            if not ok:
                raise HTTPResponse(
                    "login required\n",
                    status=401,
                    headers={"WWW-Authenticate": 'Basic realm="study dashboard"'},
                )
        if not writable and request.method not in _SAFE:
            raise HTTPResponse(
                json.dumps({"reason": READ_ONLY}),
                status=403,
                headers={"Content-Type": "application/json"},
            )

    app.add_hook("before_request", check)


def serve(cfg: Config, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C, which end the server between requests: a signal that
    landed inside a request would be taken for that request's error, and the server would go
    on."""
    import optuna_dashboard

    from study.artifacts import build_store

    login = credentials(cfg.dashboard, host)
    _keep, view = open_view(cfg)
    app = optuna_dashboard.wsgi(view, artifact_store=build_store(cfg.artifacts))
    guard(app, login, cfg.dashboard.writable)
    server = _server(host, port, app)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    mode = "read-write" if cfg.dashboard.writable else f"read-only as {cfg.dashboard.user}"
    print(
        f"optuna-dashboard: http://{host}:{port}/dashboard/ ({mode}"
        + (", login required)" if login else ")"),
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _server(host: str, port: int, app: Any) -> Any:
    """The standard library's WSGI server, as optuna-dashboard's ``run_server`` uses, without
    a log line per request."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    class Server(WSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    return make_server(host, port, app, server_class=Server, handler_class=Quiet)
