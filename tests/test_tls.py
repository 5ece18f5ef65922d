"""TLS to PostgreSQL: ``sslmode`` and ``sslrootcert`` in ``storage.url`` reach every command.

The server side is a real PgBouncer in front of the test server that accepts TLS clients only,
with a certificate for localhost signed by a CA the test makes (openssl).
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY, PgBouncer, Project, free_port, running_pgbouncer, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_bouncer() -> Iterator[PgBouncer]:
    with running_pgbouncer(tls=True) as bouncer:
        yield bouncer


def _url(bouncer: PgBouncer, pg_url: str, query: str) -> str:
    database = pg_url.rsplit("/", 1)[1]
    return f"postgresql://postgres@localhost:{bouncer.port}/{database}?{query}"


def test_every_command_works_over_verified_tls(
    tls_bouncer: PgBouncer, pg_url: str, tmp_path: Path, study_name: str
) -> None:
    url = _url(tls_bouncer, pg_url, f"sslmode=verify-full&sslrootcert={tls_bouncer.ca}")
    # Quoted: Hydra reads the "=" of the URL's query otherwise.
    project = Project(tmp_path, ["storage=postgres", f"storage.url='{url}'"])
    args = (f"study.name={study_name}", *TINY, "max_epochs=2", "n_trials=2")
    launched = project.run("study-launch", "workers=1", *args)
    assert launched.code == 0, launched.err
    assert project.status(*args)["n_trials"]["COMPLETE"] == 2
    listed = project.run("study list", "--json")
    assert listed.code == 0 and study_name in listed.out, listed.err
    tested = project.run("study test", *args)
    assert tested.code == 0, tested.err

    # The dashboard (writable: this PgBouncer knows only the workers' role).
    port = free_port()
    server = project.popen("study dashboard", "--port", str(port), "dashboard.writable=true")
    try:

        def listening() -> bool:
            assert server.poll() is None, server.communicate()[1]
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=60, what="for the dashboard to listen")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as r:
            names = [s["study_name"] for s in json.load(r)["study_summaries"]]
        assert study_name in names
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # PgBouncer here refuses clients without TLS.
        ("sslmode=disable", "SSL"),
        # A certificate the client cannot verify: signed by another CA.
        ("sslmode=verify-full&sslrootcert={other}", "certificate verify failed"),
    ],
    ids=["no-tls", "unknown-ca"],
)
def test_a_refused_tls_connection_is_one_line_naming_the_settings(
    tls_bouncer: PgBouncer, pg_url: str, tmp_path: Path, query: str, expected: str
) -> None:
    other = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=other-ca", "-keyout", str(tmp_path / "other.key"), "-out", str(other)],
        check=True, capture_output=True,
    )  # fmt: skip
    url = _url(tls_bouncer, pg_url, query.format(other=other))
    project = Project(tmp_path, ["storage=postgres", f"storage.url='{url}'"])
    result = project.run("study status")
    assert result.code == 3, result.err
    (line,) = result.err.strip().splitlines()
    assert expected in line and "sslmode" in line and "Traceback" not in line


def test_a_missing_ca_file_is_refused_before_connecting(tmp_path: Path) -> None:
    url = "postgresql://postgres@localhost:5432/test?sslmode=verify-full&sslrootcert=/nope/ca.pem"
    unquoted = Project(tmp_path, ["storage=postgres", f"storage.url={url}"]).run("study status")
    assert unquoted.code == 2
    assert unquoted.err.strip() == (
        f"error: cannot read 'storage.url={url}': quote a value holding spaces, quotes or = "
        "(storage.url='...'), or leave them out"
    )
    result = Project(tmp_path, ["storage=postgres", f"storage.url='{url}'"]).run("study status")
    assert result.code == 2
    assert result.err.strip() == (
        "error: storage.url: sslrootcert=/nope/ca.pem is not a file; give the path of that "
        "certificate (or key) on this machine"
    )
