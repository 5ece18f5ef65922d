"""optuna-dashboard on the study's storage, looked at in a real headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ARTIFACTS, Finished, PgBouncer, Project, free_port, wait_until
from conftest import browse as _browse
from conftest import chromium as _chromium

pytestmark = pytest.mark.slow


def test_dashboard_shows_the_study_and_its_trials(
    finished: Finished, pg_url: str, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """Through PgBouncer in transaction mode, as a team's dashboard reaches a fleet's study."""
    _chromium()
    study_name = finished.name
    port = free_port()
    through = f"storage.url={pgbouncer.url(pg_url)}"
    # Writable: this PgBouncer knows only the workers' role (the read-only view: below).
    server = finished.project.popen(
        "study dashboard", "--port", str(port), *finished.args, through, "dashboard.writable=true"
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.strip() == f"optuna-dashboard: http://127.0.0.1:{port}/dashboard/ (read-write)"

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=60, what="for the dashboard to listen")
        home = _browse(f"http://127.0.0.1:{port}/dashboard/", tmp_path / "profile", "--dump-dom")
        assert study_name in home, "the study is listed"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as r:
            studies = json.load(r)["study_summaries"]
        (study_id,) = [s["study_id"] for s in studies if s["study_name"] == study_name]
        _learning_curves_are_tables(f"http://127.0.0.1:{port}", study_id, pg_url, study_name)
        url = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard-study.png"
        page = _browse(
            url,
            tmp_path / "profile2",
            "--window-size=1400,1000",
            "--dump-dom",
        )
        _browse(
            url,
            tmp_path / "profile3",
            "--window-size=1400,1000",
            f"--screenshot={shot}",
        )
        assert shot.stat().st_size > 10_000, "a real screenshot was written"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Intermediate" in page or "intermediate" in page


def _learning_curves_are_tables(base: str, study_id: int, pg_url: str, study_name: str) -> None:
    """Every finished trial, complete or pruned, lists a learning_curve.csv among its artifacts,
    which the dashboard serves (and shows as a table): one row per epoch, as its curve."""
    import csv
    import io

    from conftest import trials_of

    with urllib.request.urlopen(f"{base}/api/studies/{study_id}") as r:
        trials = json.load(r)["trials"]
    curves = {t.number: t.user_attrs["curve"] for t in trials_of(pg_url, study_name)}
    finished = [t for t in trials if t["state"] in ("Complete", "Pruned")]
    assert finished, [t["state"] for t in trials]
    for t in finished:
        (meta,) = [a for a in t["artifacts"] if a["filename"] == "learning_curve.csv"]
        url = f"{base}/artifacts/{study_id}/{t['trial_id']}/{meta['artifact_id']}"
        code, body = _request(url)
        assert code == 200, (code, body)
        rows = list(csv.DictReader(io.StringIO(body)))
        curve = curves[t["number"]]
        assert len(rows) == len(curve) and {"epoch", "train_loss", "val_loss"} <= set(rows[0])
        assert float(rows[-1]["val_loss"]) == pytest.approx(curve[-1]["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_sigterm_to_the_dashboard_stops_its_embedded_server(tmp_path: Path) -> None:
    project = Project(tmp_path, ["storage=embedded"])
    port = free_port()
    server = project.popen("study dashboard", "--port", str(port))

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout=60, what="for the dashboard to listen")
    # It reads through the read-only role it made on the embedded server.
    assert _request(f"http://127.0.0.1:{port}/api/studies")[0] == 200
    assert _request(f"http://127.0.0.1:{port}/api/studies", "POST")[0] == 403
    pid_file = tmp_path / ".study" / "pgdata" / "postmaster.pid"
    assert pid_file.is_file(), "the embedded PostgreSQL runs"
    server.terminate()  # SIGTERM, as a service manager or `kill` sends
    server.wait(timeout=60)
    wait_until(lambda: not pid_file.exists(), timeout=30, what="for PostgreSQL to stop")


def _request(url: str, method: str = "GET", login: str | None = None) -> tuple[int, str]:
    """Status and body of a plain HTTP request, with HTTP basic authentication when given."""
    import base64
    import urllib.error

    request = urllib.request.Request(url, method=method, data=b"{}" if method != "GET" else None)
    if login is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@contextlib.contextmanager
def _viewer_role(project: Project, args: list[str], pg_url: str) -> Iterator[str]:
    """The read-only role made by the SQL `study dashboard --viewer-sql` prints, run with psql
    as an administrator would; dropped afterwards (roles are shared by the server's databases)."""
    import uuid

    import psycopg2

    role = f"viewer_{uuid.uuid4().hex[:8]}"
    sql = project.run("study dashboard", "--viewer-sql", *args, f"dashboard.user={role}")
    assert sql.code == 0, sql.err
    assert "PASSWORD :'viewer_password'" in sql.out, "the password is not in the text"
    made = subprocess.run(
        ["psql", "--no-psqlrc", "-q", pg_url],
        input=sql.out,
        capture_output=True,
        text=True,
        env={**os.environ, "STUDY_VIEWER_PASSWORD": "viewer-pw"},
    )
    assert made.returncode == 0, made.stderr
    try:
        yield role
    finally:
        with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
            cur.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_the_dashboard_reads_only_and_asks_for_a_login(
    finished: Finished, pg_url: str, tmp_path: Path
) -> None:
    """The default view: a role that can only read, every write refused with a reason the
    page shows, and a login asked of the browser."""
    import psycopg2

    _chromium()
    project = finished.project
    with _viewer_role(project, finished.args, pg_url) as role:
        port = free_port()
        viewer = Project(
            project.path, project.storage, {"STUDY_DASHBOARD_AUTH": "team:s3cret-login"}
        )
        server = viewer.popen(
            "study dashboard", "--port", str(port), *finished.args, f"dashboard.user={role}"
        )
        base = f"http://127.0.0.1:{port}"
        try:
            assert server.stdout is not None
            first = server.stdout.readline().strip()
            assert first == (
                f"optuna-dashboard: {base}/dashboard/ (read-only as {role}, login required)"
            ), first or server.communicate(timeout=5)[1]

            def listening() -> bool:
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", port)) == 0

            wait_until(listening, timeout=60, what="for the dashboard to listen")
            assert _request(f"{base}/api/studies")[0] == 401
            assert _request(f"{base}/api/studies", login="team:wrong")[0] == 401
            code, body = _request(f"{base}/api/studies", login="team:s3cret-login")
            assert code == 200
            (study_id,) = [
                s["study_id"]
                for s in json.loads(body)["study_summaries"]
                if s["study_name"] == finished.name
            ]
            for method, path in (
                ("DELETE", f"/api/studies/{study_id}"),
                ("POST", f"/api/studies/{study_id}/rename"),
                ("PUT", f"/api/studies/{study_id}/note"),
            ):
                code, body = _request(base + path, method, login="team:s3cret-login")
                assert code == 403, (method, path, code)
                assert "read-only" in json.loads(body)["reason"]
                assert "dashboard.writable=true" in json.loads(body)["reason"]
            code, body = _request(f"{base}/api/studies/{study_id}", login="team:s3cret-login")
            assert code == 200 and len(json.loads(body)["trials"]) == 8, "the study is intact"

            # The browser: the login page without credentials, the study with them.
            refused = _browse(f"{base}/dashboard/", tmp_path / "p1", "--dump-dom")
            assert finished.name not in refused
            # From the root, so that the login covers the page's scripts and API calls too.
            page = _browse(
                f"http://team:s3cret-login@127.0.0.1:{port}/", tmp_path / "p2", "--dump-dom"
            )
            assert finished.name in page
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert "s3cret-login" not in server.communicate()[1]

        # Below the dashboard, the database itself refuses the role any change.
        as_viewer = f"postgresql://{role}@{pg_url.split('@', 1)[1]}"
        with psycopg2.connect(as_viewer) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM trials")
            assert cur.fetchone()[0] >= 8
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("DELETE FROM studies")


def test_serving_beyond_this_machine_needs_a_login(tmp_path: Path, pg_url: str) -> None:
    project = Project(tmp_path, ["storage=postgres", f"storage.url={pg_url}"])
    result = project.run("study dashboard", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.code == 2
    assert result.err.startswith("error: --host 0.0.0.0 serves the dashboard beyond this machine")
    assert "export STUDY_DASHBOARD_AUTH=name:password" in result.err
    project.env["STUDY_DASHBOARD_AUTH"] = "only-a-name"
    result = project.run("study dashboard", "--host", "0.0.0.0", "--port", str(free_port()))
    assert (result.code, result.err.strip()) == (
        2,
        "error: STUDY_DASHBOARD_AUTH must be name:password (both non-empty)",
    )


def test_a_missing_read_only_role_names_the_command_that_makes_it(
    tmp_path: Path, pg_url: str
) -> None:
    project = Project(tmp_path, ["storage=postgres", f"storage.url={pg_url}"])
    result = project.run(
        "study dashboard", "--port", str(free_port()), "dashboard.user=nobody_here"
    )
    assert result.code == 3
    (line,) = result.err.strip().splitlines()
    assert 'role "nobody_here" does not exist' in line
    assert "--viewer-sql" in line and "dashboard.writable=true" in line
