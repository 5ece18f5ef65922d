"""Benchmark 7 (issue 16): a fleet of W workers on one study, through PgBouncer.

W virtual workers run on this machine, a thread each, spread over a few processes. Each one is
what a real worker is to the database: its own storage (``study.storage.open_storage``: its own
connection pool, the exact budget, heartbeats and the retry of dead trials, outage retries), and
the same storage calls a trial makes — ask, one report per "epoch", tell, a heartbeat every
``heartbeat_interval`` — around an objective that sleeps instead of training, so that trials last
as long as real GPU trials do while the 2 cores measure coordination. ``sampler=random`` and no
pruner: a real fleet runs TPE on each worker's own CPU, so TPE's cost per ask at the same history
size is measured apart, in one process. Workers whose budget is spent wait for the trials still
running elsewhere, fail the stale ones and run their retries with the product's own
:class:`study.drain.Drain`, as ``study.loop`` does.

They reach a PostgreSQL with the default ``max_connections`` (100) through a real PgBouncer in
transaction mode (Debian's package, started here on a free loopback port, ``default_pool_size``
40). During each run one fault is injected: ``kill -9`` of one worker process (all its virtual
workers at once: their trials must be retried), and a restart of PgBouncer (every connection
cut: each worker must ride it out).

The table: server connections used (the most seen in ``pg_stat_activity``), p50/p99 of each
storage call as the workers timed it, trials per second, errors (a virtual worker that died of
anything but the planned kill), whether the budget held exactly, and each worker process's RSS.
Usage:

    python bench/fleet.py [--workers 50 200 500 1000] [--epochs 6] [--epoch-seconds 5]
                           [--heartbeat 10] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import optuna
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402

SERVER = os.environ.get("STUDY_TEST_DB_URL", "postgresql://postgres@127.0.0.1:5432/test")
POOL_SIZE = 40
#: The storage calls timed, by what a worker does with them.
CALLS = {
    "insert_trial": "ask (new trial)",
    "set_trial_intermediate_value": "report",
    "set_trial_state_values": "tell",
    "record_heartbeat": "heartbeat",
    "stale_trial_ids": "stale check",
}
GOAL = (
    "1,000 virtual workers, zero crashes, exact budget, p99 storage call < 1 s, "
    "<= 50 server connections"
)


# --- PgBouncer and the database --------------------------------------------------------------


class Bouncer:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        host, server_port = SERVER.split("@", 1)[1].split("/", 1)[0].split(":")
        (folder / "users.txt").write_text('"postgres" ""\n')
        (folder / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={host} port={server_port}\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {folder / 'users.txt'}\nadmin_users = postgres\n"
            f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 6000\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            "log_connections = 0\nlog_disconnections = 0\n"
            f"logfile = {folder / 'pgbouncer.log'}\n"
        )
        if os.geteuid() == 0:  # PgBouncer refuses root: it runs as postgres
            subprocess.run(["chown", "-R", "postgres", str(folder)], check=True)
            os.chmod(folder, 0o755)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        user = "-u postgres " if os.geteuid() == 0 else ""
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        # 3 client connections per worker: raise the open-files limit to match.
        self.proc = subprocess.Popen(
            ["sh", "-c", f"ulimit -n 20000; exec {exe} {user}{self.folder / 'pgbouncer.ini'}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("PgBouncer did not start; see " + str(self.folder / "pgbouncer.log"))

    def stop(self) -> None:
        if self.proc is not None:
            self.stats = _add(getattr(self, "stats", {}), self.database_stats())
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def database_stats(self) -> dict[str, int]:
        """PgBouncer's counters over the benchmark's database since it started: transactions,
        and the microseconds they spent on a server and clients spent waiting for one."""
        keys = ("total_xact_count", "total_xact_time", "total_wait_time")
        with contextlib.suppress(psycopg2.Error):
            conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SHOW STATS")
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            conn.close()
            return {
                k: sum(int(r[k]) for r in rows if str(r["database"]).startswith("fleet_"))
                for k in keys
            }
        return {}


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


def _pgbouncer_version() -> str:
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
    return out[1] if len(out) > 1 else "?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _running(database: str) -> int:
    url = SERVER.rsplit("/", 1)[0] + "/" + database
    with contextlib.suppress(psycopg2.Error), psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'")
        return int(cur.fetchone()[0])
    return 0


def _server_connections(database: str) -> int:
    with psycopg2.connect(SERVER) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,))
        return int(cur.fetchone()[0])


# --- one worker process: a thread per virtual worker ----------------------------------------


def _timed(
    storage: Any, samples: dict[str, list[tuple[float, float]]], lock: threading.Lock
) -> None:
    """Time each storage call a worker makes (outage retries included, as a worker feels
    them): (wall-clock start, seconds) per call."""
    for name in CALLS:
        method = getattr(storage, name)

        def wrapper(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            at, started = time.time(), time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                with lock:
                    samples[_name].append((at, elapsed))

        setattr(storage, name, wrapper)


def _virtual_worker(
    index: int, args: dict[str, Any], samples: dict[str, list[tuple[float, float]]],
    lock: threading.Lock, errors: list[str], taken: list[int],
) -> None:  # fmt: skip
    from study.drain import Drain
    from study.rdb import BudgetExhausted
    from study.storage import StorageConfig, open_storage
    from study.trial_cache import TrialCache

    try:
        cfg = StorageConfig(
            kind="postgres", url=args["url"], heartbeat_interval=args["heartbeat"],
            grace_period=args["grace"], retry_seconds=120,
        )  # fmt: skip
        storage = open_storage(cfg, new_trial_limit=args["trials"])
        _timed(storage, samples, lock)
        study = optuna.load_study(  # through the trial cache a worker reads the study with
            study_name=args["study"], storage=TrialCache(storage, cfg.sync_seconds),
            sampler=optuna.samplers.RandomSampler(seed=index), pruner=optuna.pruners.NopPruner(),
        )  # fmt: skip
        study_id = storage.get_study_id_from_name(args["study"])
        drain = Drain(storage, study_id, threading.Event(), lambda: None)

        pace = random.Random(index)

        current: list[int] = []

        def objective(trial: optuna.Trial) -> float:
            current[:] = [trial.number]
            x = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            units = trial.suggest_int("hidden_size", 16, 256)
            # Trials differ in length, as real ones do (their sizes differ): +-50%.
            epoch_seconds = args["epoch_seconds"] * pace.uniform(0.5, 1.5)
            loss = 1.0
            for epoch in range(args["epochs"]):
                time.sleep(epoch_seconds)
                loss = abs(x - 0.01) + 1.0 / units + 1.0 / (epoch + 1)
                trial.report(loss, epoch)
            return loss

        # Spread the first asks over one epoch, as real workers spread by their start-up.
        time.sleep(args["epoch_seconds"] * (index % 97) / 97)
        while True:
            try:
                study.optimize(objective, gc_after_trial=False)
            except BudgetExhausted:
                pass
            except Exception:
                # As study.loop does: a trial another worker failed as stale (this one was cut
                # off past the grace period) cannot be told; its retry carries on elsewhere.
                state = study.get_trials(deepcopy=False)[current[0]].state if current else None
                if state != optuna.trial.TrialState.FAIL:
                    raise
                with lock:
                    taken.append(1)
                continue
            # The budget is spent: wait for the trials running elsewhere as study.loop does;
            # going back to Optuna fails the stale ones and runs their retries.
            if drain.settled():
                return
    except Exception as e:  # noqa: BLE001 - every crash is counted, with its one-line reason
        root: BaseException = e
        while root.__cause__ is not None:
            root = root.__cause__
        where = "".join(traceback.format_tb(e.__traceback__)[-2:]).replace("\n", " ")[-300:]
        with lock:
            errors.append(
                f"{type(e).__name__} <- {type(root).__name__}: "
                f"{str(root).strip().splitlines()[0][:160]} at {where}"
            )


def _process(rank: int, indices: list[int], args: dict[str, Any], out: str) -> None:
    """A worker process: its virtual workers as threads; writes its timings and errors."""
    import logging
    import resource
    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning about heartbeats, per worker
    # Each virtual worker would log every outage once: a thousand lines per fault.
    logging.getLogger("study").setLevel(logging.ERROR)
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    errors: list[str] = []
    taken: list[int] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_virtual_worker, args=(i, args, samples, lock, errors, taken))
        for i in indices
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(
        json.dumps({"samples": samples, "errors": errors, "taken": len(taken), "rss_mb": rss_mb})
    )


# --- one run ---------------------------------------------------------------------------------


def _tpe_seconds_per_ask(history: int) -> float:
    """TPE (the default sampler: multivariate, constant liar) asking once after ``history``
    finished trials of the same two parameters, in memory: what each GPU worker's CPU pays."""
    sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(history):
        t = study.ask()
        study.tell(
            t,
            t.suggest_float("lr", 1e-4, 1e-1, log=True) + 1 / t.suggest_int("hidden_size", 16, 256),
        )
    study.sampler = sampler
    started = time.perf_counter()
    for _ in range(5):
        t = study.ask()
        t.suggest_float("lr", 1e-4, 1e-1, log=True)
        t.suggest_int("hidden_size", 16, 256)
        study.tell(t, 1.0)
    return (time.perf_counter() - started) / 5


def run(
    workers: int, epochs: int, epoch_seconds: float, heartbeat: int, folder: Path
) -> dict[str, Any]:
    from study.storage import StorageConfig, database_url

    database = f"fleet_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(SERVER)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    bouncer = Bouncer(Path(tempfile.mkdtemp(prefix="fleet-pgbouncer-")), _free_port())
    bouncer.start()
    url = f"postgresql://postgres@127.0.0.1:{bouncer.port}/{database}"
    trials = 2 * workers  # each worker runs about two trials
    args = {
        "url": url, "study": "fleet", "trials": trials, "epochs": epochs,
        "epoch_seconds": epoch_seconds, "heartbeat": heartbeat, "grace": 3 * heartbeat,
    }  # fmt: skip
    optuna.create_study(
        study_name="fleet",
        storage=optuna.storages.RDBStorage(database_url(StorageConfig(kind="postgres", url=url))),
    )
    n_proc = max(2, workers // 100)
    ctx = mp.get_context("spawn")
    outs = [folder / f"{workers}-{rank}.json" for rank in range(n_proc)]
    procs = [
        ctx.Process(
            target=_process,
            args=(rank, list(range(rank, workers, n_proc)), args, str(outs[rank])),
        )
        for rank in range(n_proc)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    trial_seconds = epochs * epoch_seconds
    # The faults come once the fleet is busy (most workers in a trial), whatever its start-up.
    faults: dict[str, float] = {}
    busy_at = None
    killed: list[int] = []
    bounced_at = float("inf")
    busy_wall = float("inf")
    peak = 0
    while any(p.is_alive() for p in procs):
        now = time.monotonic()
        if busy_at is None and _running(database) >= 0.8 * workers:
            busy_at, busy_wall = now, time.time()
            faults = {"kill": now + 0.5 * trial_seconds, "bounce": now + 1.5 * trial_seconds}
        if "kill" in faults and now >= faults["kill"]:
            faults.pop("kill")
            victim = procs[-1]
            os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
            killed.append(n_proc - 1)
        if "bounce" in faults and now >= faults["bounce"]:
            faults.pop("bounce")
            bounced_at = time.time()
            bouncer.stop()
            time.sleep(2)
            bouncer.start()
        with contextlib.suppress(psycopg2.Error):
            peak = max(peak, _server_connections(database))
        if now - started > 40 * trial_seconds + 600:
            for p in procs:
                p.kill()
            break
        time.sleep(0.5)
    wall = time.monotonic() - started
    for p in procs:
        p.join()

    # Calls that started while PgBouncer restarted (and the seconds after, while every worker
    # reconnects) are what the outage costs: reported apart from the steady state.
    samples: dict[str, list[float]] = defaultdict(list)
    outage: list[float] = []
    startup: list[float] = []
    errors: list[str] = []
    taken_over = 0
    rss: list[float] = []
    for rank, out in enumerate(outs):
        if rank in killed or not out.exists():
            continue
        data = json.loads(out.read_text())
        for name, values in data["samples"].items():
            for at, seconds in values:
                if at < busy_wall:  # W workers starting at once on this machine's 2 cores
                    startup.append(seconds)
                elif bounced_at - 1 <= at <= bounced_at + 10:
                    outage.append(seconds)
                else:
                    samples[name].append(seconds)
        errors.extend(data["errors"])
        taken_over += data["taken"]
        rss.append(data["rss_mb"])
    direct = optuna.storages.RDBStorage(
        database_url(StorageConfig(kind="postgres", url=SERVER.rsplit("/", 1)[0] + "/" + database))
    )
    all_trials = optuna.load_study(study_name="fleet", storage=direct).get_trials(deepcopy=False)
    by_state: dict[str, int] = defaultdict(int)
    for t in all_trials:
        by_state[t.state.name] += 1
    done = [t for t in all_trials if t.state.name == "COMPLETE"]
    first = min(t.datetime_start for t in all_trials)
    last = max(t.datetime_complete for t in done)
    bouncer.stop()  # adds its counters to those of the instance the restart stopped
    xacts = max(1, bouncer.stats.get("total_xact_count", 0))
    direct.engine.dispose()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    admin.close()

    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        return (
            statistics.quantiles(values, n=100, method="inclusive")[q - 1]
            if len(values) > 1
            else values[0]
        )

    return {
        "workers": workers, "processes": n_proc, "wall_s": wall,
        "startup_s": (busy_at - started) if busy_at is not None else float("nan"),
        "server_connections": peak, "complete": len(done), "budget": trials,
        "exact": len(done) == trials and by_state["RUNNING"] == 0 and by_state["WAITING"] == 0,
        "failed": by_state["FAIL"], "errors": errors, "taken_over": taken_over,
        "trials_per_s": len(done) / (last - first).total_seconds(),
        "calls": {name: (pct(v, 50), pct(v, 99), len(v)) for name, v in samples.items()},
        "outage_calls": len(outage), "outage_max_s": max(outage) if outage else 0.0,
        "startup_calls": len(startup), "startup_p99_s": pct(startup, 99),
        "rss_mb": max(rss) if rss else float("nan"),
        # In the database, as PgBouncer saw it: a transaction's mean time on a server
        # connection, and a client's mean wait for one, per transaction.
        "xact_ms": bouncer.stats.get("total_xact_time", 0) / xacts / 1000,
        "wait_ms": bouncer.stats.get("total_wait_time", 0) / xacts / 1000,
        "tpe_ask_s": _tpe_seconds_per_ask(trials),
    }  # fmt: skip


def worker_rss() -> tuple[float, float]:
    """Peak RSS (MB) of a real ``study-worker`` on the default study, 3 trials each: with the
    per-machine cache of parsed data and splits empty, then filled (as under ``study-launch``,
    which fills it before its workers start)."""
    database = f"fleet_rss_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(SERVER)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    url = SERVER.rsplit("/", 1)[0] + "/" + database
    exe = str(Path(sys.executable).with_name("study-worker"))
    peaks = []
    with tempfile.TemporaryDirectory() as cache:
        for n in (3, 6):  # the second run adds 3 trials to the same study
            probe = (
                "import resource, subprocess, sys; "
                "r = subprocess.run(sys.argv[1:], capture_output=True); "
                "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
            )
            cmd = [exe, "storage=postgres", f"storage.url={url}", f"n_trials={n}"]
            out = subprocess.run(
                [sys.executable, "-c", probe, *cmd],
                capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": cache},
            ).stdout.split()  # fmt: skip
            if out[0] != "0":
                raise RuntimeError(f"study-worker exited {out[0]}")
            peaks.append(int(out[1]) / 1024)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    admin.close()
    return peaks[0], peaks[1]


def table(
    results: list[dict[str, Any]],
    epochs: int,
    epoch_seconds: float,
    heartbeat: int,
    rss: tuple[float, float],
) -> str:
    lines = [
        f"Each trial: {epochs} epochs of {epoch_seconds:g} s +-50% (a sleep; the length drawn "
        "per trial), one report per epoch; "
        f"heartbeat every {heartbeat} s, grace period {3 * heartbeat} s; budget 2 trials per "
        "worker. PostgreSQL "
        f"`max_connections` 100, PgBouncer transaction mode, `default_pool_size` {POOL_SIZE}. "
        "Faults in every run, once 80% of the workers are in a trial: `kill -9` of one worker "
        "process (all its virtual workers) half a trial later, a PgBouncer restart a trial after "
        "that. Latencies in ms, p50 / p99, as the "
        "workers timed them once the fleet is busy, except the calls made during the PgBouncer "
        "restart (from 1 s before it to 10 s after), which are counted apart with the longest "
        "one. The start-up (every virtual worker connecting and asking at once, W of them on 2 "
        "cores, which a real fleet spreads over its machines) is counted apart too: its length "
        "and the p99 of its calls. PgBouncer's own counters (`SHOW STATS`, summed over its two "
        "lives) give what the database side costs, apart from this machine's crowded cores: a "
        "transaction's mean time on a server connection, and a client's mean wait for one.",
        "",
        "| workers (processes) | server connections | ask | report | tell | heartbeat | "
        "stale check | PgBouncer: transaction, wait (mean ms) | "
        "restart: calls, longest | start-up: s, p99 | trials/s | "
        "complete / budget | exact | failed (killed or taken over, all retried) | taken over | "
        "errors | RSS per process | "
        "TPE ask at that history |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = []
        for name in CALLS:
            p50, p99, _ = r["calls"].get(name, (float("nan"),) * 3)
            cells.append(f"{p50 * 1000:.0f} / {p99 * 1000:.0f}")
        lines.append(
            f"| {r['workers']} ({r['processes']}) | {r['server_connections']} | "
            + " | ".join(cells)
            + f" | {r.get('xact_ms', float('nan')):.1f}, {r.get('wait_ms', float('nan')):.1f}"
            + f" | {r['outage_calls']}, {r['outage_max_s']:.1f} s"
            + f" | {r['startup_s']:.0f} s, {r['startup_p99_s'] * 1000:.0f} ms"
            + f" | {r['trials_per_s']:.2f} | {r['complete']} / {r['budget']} | "
            f"{'yes' if r['exact'] else 'NO'} | {r['failed']} | {r['taken_over']} | "
            f"{len(r['errors'])} | "
            f"{r['rss_mb']:.0f} MB | {r['tpe_ask_s'] * 1000:.0f} ms |"
        )
    lines += [
        "",
        f"Goal: {GOAL}.",
        "",
        f"A real worker (`study-worker`, the default study, 3 trials): peak RSS {rss[0]:.0f} MB "
        f"with the per-machine cache of parsed data and splits empty, {rss[1]:.0f} MB with it "
        "filled, as under `study-launch` (goal: 350 MB). Importing torch alone takes about "
        "220 MB of it.",
    ]
    for r in results:
        for e in sorted(set(r["errors"]))[:5]:
            lines.append(f"- {r['workers']} workers, error: `{e}`")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[50, 200, 500, 1000])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--epoch-seconds", type=float, default=5.0)
    parser.add_argument(
        "--heartbeat", type=int, default=10, help="seconds (storage.heartbeat_interval; grace 3x)"
    )
    parser.add_argument("--write", action="store_true", help="write the table to BENCHMARKS.md")
    a = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fleet-"))
    results = []
    for w in a.workers:
        r = run(w, a.epochs, a.epoch_seconds, a.heartbeat, folder)
        print(
            json.dumps(
                {k: v for k, v in r.items() if k != "errors"} | {"errors": len(r["errors"])}
            ),
            flush=True,
        )
        results.append(r)
    text = table(results, a.epochs, a.epoch_seconds, a.heartbeat, worker_rss())
    print(text)
    if a.write:
        command = "python bench/fleet.py " + " ".join(sys.argv[1:])
        header = (
            f"`{command}` ({time.strftime('%Y-%m-%d')}, optuna {optuna.__version__}, "
            f"PgBouncer {_pgbouncer_version()}, 2 cores):"
        )
        write_block(
            "fleet",
            "## 7. The fleet: W workers through PgBouncer (issue 16)\n\n" + header + "\n\n" + text,
        )


if __name__ == "__main__":
    main()
