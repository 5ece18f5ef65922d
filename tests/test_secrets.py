"""A password given in a URL stays out of every other process's command line, every output, the
study's recorded settings and every file the study writes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg2
import pytest
from conftest import TINY, Project

from study.secrets import hide_password, without_password

SECRET = "Pw-6b1f93c2e7"


def test_passwords_are_hidden_and_moved_to_the_environment() -> None:
    url = f"postgresql://tuner:{SECRET}@db:5432/studies?sslmode=require"
    assert hide_password(url) == "postgresql://tuner:***@db:5432/studies?sslmode=require"
    assert hide_password("http://mlflow:5000") == "http://mlflow:5000"
    overrides, env = without_password(["n_trials=4", f"storage.url={url}"], "STUDY_DB_PASSWORD")
    assert overrides == [
        "n_trials=4",
        "storage.url=postgresql://tuner@db:5432/studies?sslmode=require",
    ]
    assert env == {"STUDY_DB_PASSWORD": SECRET}
    encoded, env = without_password(["storage.url=postgresql://u:a%40b@h/d"], "X")
    assert encoded == ["storage.url=postgresql://u@h/d"] and env == {"X": "a@b"}
    quoted, env = without_password(["storage.url='postgresql://u:pw@h/d?sslmode=require'"], "X")
    assert quoted == ["storage.url='postgresql://u@h/d?sslmode=require'"] and env == {"X": "pw"}


def _command_lines(exclude: int) -> dict[int, str]:
    lines = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != exclude:
            try:
                lines[int(proc.name)] = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
            except OSError:
                continue  # gone meanwhile
    return lines


def _database_text(url: str) -> str:
    """Every row of every table of the study's database, as text."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [t for (t,) in cur.fetchall()]
        rows = []
        for table in tables:
            cur.execute(f'SELECT t::text FROM "{table}" t')
            rows += [r for (r,) in cur.fetchall()]
    return "\n".join(rows)


@pytest.mark.slow
def test_a_password_in_the_url_reaches_no_command_line_output_or_file(
    pg_url: str, tmp_path: Path, study_name: str
) -> None:
    with_password = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    project = Project(tmp_path, ["storage=postgres", f"storage.url={with_password}"])
    args = (
        f"study.name={study_name}",
        *TINY,
        "n_trials=4",
        "workers=2",
        f"report.out_dir={tmp_path / 'report'}",
    )
    launcher = project.popen("study-launch", *args)
    workers_seen: set[int] = set()
    leaks: list[str] = []
    while launcher.poll() is None:
        # The launcher's own command line is the user's: what it starts must not copy it.
        for pid, line in _command_lines(exclude=launcher.pid).items():
            if "workers.study_worker" in line:
                workers_seen.add(pid)
            if SECRET in line:
                leaks.append(line)
        time.sleep(0.1)
    out, err = launcher.communicate()
    assert launcher.returncode == 0, err
    assert len(workers_seen) >= 2, "the workers were looked at while they ran"
    assert not leaks, leaks

    outputs = [out, err]
    for command, *more in (
        ("study-launch", "--cfg"),
        ("study status", "--json"),
        ("study list",),
        ("study report",),
    ):
        result = project.run(command, *more, *args)
        assert result.code == 0, result.err
        outputs += [result.out, result.err]
    # An error names the database, never the password.
    missing = Project(tmp_path, ["storage=postgres", f"storage.url={with_password}_missing"])
    wrong = missing.run("study status")
    assert wrong.code == 3 and "***" in wrong.err
    outputs.append(wrong.err)
    assert all(SECRET not in text for text in outputs)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in written), "the report was written"
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []
    assert SECRET not in _database_text(pg_url), "the recorded settings hold no password"


def test_study_slurm_refuses_a_password_its_job_files_would_keep(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(Project(tmp_path, []).argv("study-slurm", ())[0])),
            "-m",
            "hydra/launcher=submitit_local",
            f"storage.url=postgresql://tuner:{SECRET}@db/studies",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "export STUDY_DB_PASSWORD" in result.stderr and SECRET not in result.stderr
    assert list(tmp_path.iterdir()) == [], "no job folder was written"
