"""Shared fixtures and helpers: a fresh database on the real PostgreSQL server, a way to run
commands, a study finished once for the tests that only read it, and polling with a deadline."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import psycopg2
import pytest

SERVER = os.environ.get("STUDY_TEST_DB_URL", "postgresql://postgres@127.0.0.1:5432/test")

#: Overrides that make a trial take about a second on a CPU.
TINY = [
    "max_epochs=3",
    "search_space.hidden_size.low=8",
    "search_space.hidden_size.high=16",
    "search_space.num_layers.high=1",
    "search_space.bidirectional.choices=[false]",
    "search_space.batch_size.choices=[64]",
]
#: Epochs of a few tenths of a second, so that a signal or a kill lands mid-trial.
SLOW = [
    "search_space.hidden_size.value=96",
    "search_space.num_layers.value=2",
    "search_space.bidirectional.choices=[true]",
    "search_space.batch_size.choices=[16]",
    "search_space.lr.value=0.003",
    "search_space.optimizer.choices=[adam]",
    "pruner=none",
    "worker.threads=1",
]
#: A dead worker's trial is noticed within seconds instead of half a minute.
HEARTBEAT = ["storage.heartbeat_interval=1", "storage.grace_period=3"]


def wait_until(condition: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting {what}"
        time.sleep(0.1)


def run_worker(cfg: Any) -> int:
    """``study.loop.work`` in this process, its signal handlers put back afterwards."""
    from study.loop import work

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return work(cfg)
    finally:  # the worker installs its own
        for s, handler in handlers.items():
            signal.signal(s, handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_study(url: str, name: str) -> optuna.Study:
    """A study as the database holds it, read with plain Optuna (not the product's storage)."""
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg2://"))
    return optuna.load_study(study_name=name, storage=storage)


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return load_study(url, name).get_trials(deepcopy=False)


def curve_lengths(url: str, name: str) -> dict[int, int]:
    """Epochs recorded so far by each trial (number -> length of its learning curve); empty
    while the database is restarting or before the study's tables exist."""
    try:
        conn = psycopg2.connect(url)
    except psycopg2.OperationalError:  # the database is restarting
        return {}
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trial_user_attributes') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            "SELECT t.number, a.value_json FROM trial_user_attributes a"
            " JOIN trials t USING (trial_id) JOIN studies s USING (study_id)"
            " WHERE s.study_name = %s AND a.key = 'curve'",
            (name,),
        )
        return {n: len(json.loads(v)) for n, v in cur.fetchall()}


def study_exists(url: str, name: str) -> bool:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('studies') IS NOT NULL")
        if not cur.fetchone()[0]:
            return False
        cur.execute("SELECT count(*) FROM studies WHERE study_name = %s", (name,))
        return bool(cur.fetchone()[0])


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new database on the real PostgreSQL server (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(SERVER)
    except psycopg2.OperationalError as e:
        pytest.fail(f"PostgreSQL at {SERVER} is not reachable ({e}); .ci/run starts it")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER.rpartition('/')[0]}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of the session's own, dropped at the end."""
    with fresh_database("study_test") as url:
        yield url


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


@dataclass
class Project:
    """A directory a user runs the commands in, with the study's storage chosen by the test."""

    path: Path
    storage: list[str]
    #: Extra environment variables for the commands (credentials, endpoints).
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, command: str, args: tuple[str, ...]) -> list[str]:
        """``command`` may carry a subcommand ("study status"); storage settings come first."""
        exe, *sub = command.split()
        return [str(Path(sys.executable).with_name(exe)), *sub, *self.storage, *args]

    def run(self, command: str, *args: str, timeout: float = 300) -> Result:
        proc = subprocess.run(
            self.argv(command, args),
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, command: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, args),
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a process group of its own, like a separate machine
        )

    def status(self, *args: str) -> dict:
        result = self.run("study status", "--json", *args)
        assert result.code == 0, result.err
        return result.json()


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Project:
    """Commands against the real PostgreSQL server (storage=postgres)."""
    return Project(tmp_path, ["storage=postgres", f"storage.url={pg_url}"])


@pytest.fixture
def study_name(request: pytest.FixtureRequest) -> str:
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}".replace("[", "-").replace("]", "")


#: The hand-tuned steps of the shared finished study.
STEPS = """\
steps:
  - name: baseline
    params: {hidden_size: 8, lr: 1.0e-3, optimizer: adam}
  - name: units 16
    params: {hidden_size: 16}
  - name: lr 1e-2
    params: {lr: 1.0e-2}
"""


@dataclass
class Finished:
    """A study that ran to its end: 8 trials of up to 4 epochs, the first 3 the steps above."""

    project: Project
    name: str
    #: The overrides it ran with (every command on it takes the same).
    args: list[str]


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Finished:
    """Run once per session for the tests that only read a finished study (status, iterations,
    the dashboard) and for the report test, the one that scores its test split. Tests that
    change a study otherwise run their own."""
    folder = tmp_path_factory.mktemp("finished")
    steps = folder / "iterations.yaml"
    steps.write_text(STEPS)
    project = Project(folder, ["storage=postgres", f"storage.url={pg_url}"])
    name = f"finished-{uuid.uuid4().hex[:6]}"
    args = [f"study.name={name}", f"iterations.file={steps}", *TINY, "max_epochs=4"]
    ran = project.run("study-worker", "n_trials=8", *args)
    assert ran.code == 0, ran.err
    return Finished(project, name, args)


def write_user_files(folder: Path) -> dict[str, Path]:
    """Small files in each layout users bring; separable, so a few epochs learn them."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    # Time-series classification, long CSV: one row per step; class b rises, class a falls.
    rows = ["id,label,x,y"]
    for i in range(60):
        label = "ab"[i % 2]
        for t in range(int(rng.integers(5, 12))):
            slope = 1.0 if label == "b" else -1.0
            rows.append(f"s{i},{label},{slope * t + rng.normal(0, 0.3):.3f},{rng.normal():.3f}")
    files["series_csv"] = folder / "series.csv"
    files["series_csv"].write_text("\n".join(rows) + "\n")

    # The same as .npz: NaN after each sequence's end.
    x = np.full((60, 12, 1), np.nan, dtype=np.float32)
    y = np.array(["ab"[i % 2] for i in range(60)])
    for i in range(60):
        n = 4 + i % 8
        x[i, :n, 0] = (1.0 if y[i] == "b" else -1.0) * np.arange(n)
    files["series_npz"] = folder / "series.npz"
    np.savez(files["series_npz"], x=x, y=y)

    # Text: positive and negative words, 300 short texts.
    good, bad = ["great", "superb", "moving", "fine"], ["dull", "awful", "boring", "flat"]
    texts, labels = [], []
    for i in range(300):
        words = list(rng.choice(good if i % 2 else bad, 3)) + list(rng.choice(["a", "film"], 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if i % 2 else "neg")
    files["text_csv"] = folder / "reviews.csv"
    files["text_csv"].write_text(
        "review,sentiment\n"
        + "".join(f'"{t}",{lab}\n' for t, lab in zip(texts, labels, strict=True))
    )

    # Forecasting: a monthly seasonal series with a trend, rows in shuffled order.
    months = np.arange(120)
    values = 100 + 0.5 * months + 10 * np.sin(2 * np.pi * months / 12) + rng.normal(0, 1, 120)
    order = rng.permutation(120)
    files["sales_csv"] = folder / "sales.csv"
    files["sales_csv"].write_text(
        "month,units\n" + "".join(f"{months[i]},{values[i]:.3f}\n" for i in order)
    )
    return files


@pytest.fixture(scope="session")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_user_files(tmp_path_factory.mktemp("user-files"))


@dataclass
class PgBouncer:
    """A real PgBouncer (Debian's package) in transaction mode in front of the test server, on
    a loopback port: how a fleet reaches its database."""

    folder: Path
    port: int
    #: Server connections it may open per database and user: fewer than the clients it serves.
    pool_size: int = 4
    #: Seconds a client may wait for a server connection before PgBouncer drops it.
    query_wait_timeout: int = 120
    #: Clients must speak TLS, with a certificate for localhost signed by ``ca`` (made here).
    tls: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> Path:
        """The CA certificate that signed PgBouncer's (``tls=True``)."""
        return self.folder / "ca.pem"

    def _certificates(self) -> str:
        """A CA and a server certificate for localhost and 127.0.0.1 signed by it (openssl)."""
        ext = self.folder / "san.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for args in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=study-test-ca", "-keyout", "ca.key", "-out", "ca.pem"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem"],
        ):  # fmt: skip
            subprocess.run(["openssl", *args], cwd=self.folder, check=True, capture_output=True)
        return (
            "client_tls_sslmode = require\n"
            f"client_tls_key_file = {self.folder / 'server.key'}\n"
            f"client_tls_cert_file = {self.folder / 'server.pem'}\n"
        )

    def url(self, database_url: str) -> str:
        """``database_url`` (on the test server) reached through this PgBouncer instead."""
        rest = database_url.split("@", 1)[1].split("/", 1)[1]
        return f"postgresql://postgres@127.0.0.1:{self.port}/{rest}"

    def start(self) -> None:
        import shutil

        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(exe).exists():
            if os.environ.get("CI"):
                pytest.fail("Debian's pgbouncer is missing; .ci/run installs it")
            pytest.skip("Debian's pgbouncer is not installed (apt-get install pgbouncer)")
        host, port = SERVER.split("@", 1)[1].split("/", 1)[0].split(":")
        tls = self._certificates() if self.tls else ""
        (self.folder / "users.txt").write_text('"postgres" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={host} port={port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.folder / "users.txt"}
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.pool_size}
query_wait_timeout = {self.query_wait_timeout}
max_client_conn = 2000
ignore_startup_parameters = extra_float_digits,options
logfile = {self.folder / "pgbouncer.log"}
{tls}"""
        )
        # PgBouncer refuses to run as root: as root (CI), it runs as the postgres user.
        user = ["-u", "postgres"] if os.geteuid() == 0 else []
        if user:
            subprocess.run(["chown", "-R", "postgres", str(self.folder)], check=True)
            os.chmod(self.folder, 0o755)
        self.proc = subprocess.Popen([exe, *user, str(self.folder / "pgbouncer.ini")])

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "PgBouncer exited"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_until(listening, timeout=30, what="for PgBouncer to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def show(self, what: str) -> list[tuple]:
        """A ``SHOW`` of PgBouncer's admin console (``SHOW POOLS``, ``SHOW SERVERS``)."""
        conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f"SHOW {what}")
                return list(cur.fetchall())
        finally:
            conn.close()


@contextlib.contextmanager
def running_pgbouncer(**settings: Any) -> Iterator[PgBouncer]:
    import shutil
    import tempfile

    # Not under pytest's tmp_path: as root, PgBouncer runs as postgres, who cannot enter it.
    folder = Path(tempfile.mkdtemp(prefix="study-pgbouncer-"))
    bouncer = PgBouncer(folder, free_port(), **settings)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    with running_pgbouncer() as bouncer:
        yield bouncer


@pytest.fixture
def bounced(tmp_path: Path, pg_url: str, pgbouncer: PgBouncer) -> Project:
    """Commands against the session's database through PgBouncer in transaction mode, as a
    fleet reaches it; read the results directly at ``pg_url``."""
    return Project(tmp_path, ["storage=postgres", f"storage.url={pgbouncer.url(pg_url)}"])


# --- a real headless browser --------------------------------------------------------------

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


def chromium() -> str:
    """Debian's Chromium (the tests of what a browser shows)."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing; .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return found


def browse(url: str, profile: Path, *extra: str) -> str:
    """The page's DOM after its scripts ran (virtual time lets the API calls finish)."""
    result = subprocess.run(
        [
            chromium(),
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
