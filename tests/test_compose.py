"""docker-compose.yml validates (Debian's docker-compose parses it without an engine) and says
what the README promises: loopback-only dashboard, GPU workers with a warm-stop grace period
and a health check, a database with a volume and a health check, secrets only from .env."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose(*args: str, env_file: str | None = ".env.example") -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's docker-compose is missing; .ci/run installs it")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    env_args = ["--env-file", env_file] if env_file else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    return subprocess.run(
        [exe, *env_args, "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_compose_file_validates_and_keeps_its_promises() -> None:
    result = _compose("config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "pgbouncer", "dashboard", "worker"}

    pg = services["postgres"]
    assert "pg_isready" in str(pg["healthcheck"]["test"])
    assert any("pgdata" in str(v) for v in pg["volumes"])

    # The fleet's way in: transaction pooling, a bounded pool, loopback unless configured.
    bouncer = services["pgbouncer"]
    assert bouncer["environment"]["POOL_MODE"] == "transaction"
    assert int(bouncer["environment"]["DEFAULT_POOL_SIZE"]) <= 50
    assert bouncer["environment"]["DB_HOST"] == "postgres"
    assert "pg_isready" in str(bouncer["healthcheck"]["test"])
    (published,) = bouncer["ports"]
    assert str(published).startswith("127.0.0.1:6432:6432")
    url = services["worker"]["environment"]["STUDY_DB_URL"]
    assert url.startswith("postgresql://tuner@pgbouncer:6432/"), "workers use PgBouncer"
    assert "pgbouncer" in services["worker"]["depends_on"]

    # The dashboard reads as the read-only role the database's init script makes, and asks
    # for a login; no password on any command line.
    assert any("postgres-viewer.sh" in str(v) for v in pg["volumes"])
    dashboard = services["dashboard"]["environment"]
    assert dashboard["STUDY_DB_URL"].startswith("postgresql://tuner@postgres:5432/")
    assert dashboard["STUDY_VIEWER_PASSWORD"] == pg["environment"]["STUDY_VIEWER_PASSWORD"]
    assert ":" in dashboard["STUDY_DASHBOARD_AUTH"]
    assert "dashboard.writable=true" not in str(services["dashboard"]["command"])
    for name, service in services.items():
        line = str(service.get("entrypoint", "")) + str(service.get("command", ""))
        assert "change-me" not in line, f"{name}: a password on a command line"

    (port,) = services["dashboard"]["ports"]
    assert str(port).startswith("127.0.0.1:8080:8080"), (
        "the dashboard is not published beyond loopback"
    )

    worker = services["worker"]
    (gpu,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    minutes = re.fullmatch(r"(\d+)m", worker["stop_grace_period"])
    assert minutes and int(minutes.group(1)) >= 5, "time to finish an epoch and re-queue"
    assert worker["healthcheck"]["test"][:3] == ["CMD", "study", "health"]
    assert worker["build"]["dockerfile"].endswith("workers/Dockerfile")
    assert "ports" not in worker, "workers scale with --scale worker=N: no fixed host port"


def test_compose_refuses_to_run_without_a_password() -> None:
    result = _compose("config", "-q", env_file=None)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_secrets_file_is_ignored_and_the_image_copies_what_exists() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must never be committed"
    dockerfile = (ROOT / "workers" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which is missing"


def test_health_check_follows_the_workers_progress(tmp_path: Path) -> None:
    study = Path(shutil.which("study") or "study")
    alive = tmp_path / "alive"
    run = lambda: subprocess.run(  # noqa: E731
        [str(study), "health", "--file", str(alive), "--max-age", "60"],
        capture_output=True,
        text=True,
    )
    assert run().returncode == 1, "no file yet: unhealthy"
    alive.touch()
    assert run().returncode == 0
    old = time.time() - 120
    os.utime(alive, (old, old))
    stale = run()
    assert stale.returncode == 1 and "no progress for" in stale.stdout


def test_kubernetes_job_example_is_a_gpu_job_with_secrets_and_a_grace_period() -> None:
    job = yaml.safe_load((ROOT / "workers" / "k8s-job.yaml").read_text())
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 300
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["STUDY_DB_PASSWORD"]["valueFrom"], "no password in the file"
    assert container["livenessProbe"]["exec"]["command"][:2] == ["study", "health"]


def test_kubernetes_pgbouncer_example_pools_transactions_for_the_workers() -> None:
    deployment, service = yaml.safe_load_all((ROOT / "workers" / "k8s-pgbouncer.yaml").read_text())
    assert deployment["kind"] == "Deployment" and service["kind"] == "Service"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POOL_MODE"]["value"] == "transaction"
    assert "secretKeyRef" in env["DB_PASSWORD"]["valueFrom"], "no password in the file"
    assert service["spec"]["ports"][0]["port"] == 6432
    job = (ROOT / "workers" / "k8s-job.yaml").read_text()
    assert "url=postgresql://tuner@pgbouncer:6432/studies" in job, "the workers go through it"


def test_the_compose_database_makes_the_dashboard_s_read_only_role() -> None:
    """workers/postgres-viewer.sh, as postgres' image runs it on a new volume, against the test
    server: the role reads the tables the workers' role creates later, and changes nothing."""
    import uuid

    import psycopg2
    from conftest import SERVER, fresh_database

    role = f"viewer_{uuid.uuid4().hex[:8]}"
    try:
        with fresh_database("study_viewer") as url:
            made = subprocess.run(
                ["sh", str(ROOT / "workers" / "postgres-viewer.sh")],
                env={
                    **os.environ,
                    "PGHOST": "127.0.0.1",
                    "POSTGRES_USER": "postgres",
                    "POSTGRES_DB": url.rsplit("/", 1)[1],
                    "STUDY_VIEWER_USER": role,
                    "STUDY_VIEWER_PASSWORD": "viewer-pw",
                    "STUDY_VIEWER_SQL": str(ROOT / "study" / "viewer.sql"),
                },
                capture_output=True,
                text=True,
            )
            assert made.returncode == 0, made.stderr
            with psycopg2.connect(url) as conn, conn.cursor() as cur:  # the workers, later
                cur.execute("CREATE TABLE studies (study_id int)")
                cur.execute("INSERT INTO studies VALUES (1)")
            as_viewer = f"postgresql://{role}@{url.split('@', 1)[1]}"
            with psycopg2.connect(as_viewer) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM studies")
                assert cur.fetchone()[0] == 1
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute("DELETE FROM studies")
    finally:
        admin = psycopg2.connect(SERVER)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()
