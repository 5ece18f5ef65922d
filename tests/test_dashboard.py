"""optuna-dashboard on the study's storage, looked at in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from conftest import Finished, PgBouncer, free_port, wait_until

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing; .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return found


def _browse(url: str, profile: Path, *extra: str) -> str:
    """The page's DOM after its scripts ran (virtual time lets the API calls finish)."""
    result = subprocess.run(
        [
            _chromium(),
            *CHROMIUM,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def test_dashboard_shows_the_study_and_its_trials(
    finished: Finished, pg_url: str, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    """Through PgBouncer in transaction mode, as a team's dashboard reaches a fleet's study."""
    _chromium()
    study_name = finished.name
    port = free_port()
    through = f"storage.url={pgbouncer.url(pg_url)}"
    server = finished.project.popen("study dashboard", "--port", str(port), *finished.args, through)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.strip() == f"optuna-dashboard: http://127.0.0.1:{port}/dashboard/"

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=60, what="for the dashboard to listen")
        home = _browse(f"http://127.0.0.1:{port}/dashboard/", tmp_path / "profile", "--dump-dom")
        assert study_name in home, "the study is listed"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as r:
            studies = json.load(r)["study_summaries"]
        (study_id,) = [s["study_id"] for s in studies if s["study_name"] == study_name]
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


@pytest.mark.slow
def test_sigterm_to_the_dashboard_stops_its_embedded_server(tmp_path: Path) -> None:
    from conftest import Project

    project = Project(tmp_path, ["storage=embedded"])
    port = free_port()
    server = project.popen("study dashboard", "--port", str(port))

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout=60, what="for the dashboard to listen")
    pid_file = tmp_path / ".study" / "pgdata" / "postmaster.pid"
    assert pid_file.is_file(), "the embedded PostgreSQL runs"
    server.terminate()  # SIGTERM, as a service manager or `kill` sends
    server.wait(timeout=60)
    wait_until(lambda: not pid_file.exists(), timeout=30, what="for PostgreSQL to stop")
