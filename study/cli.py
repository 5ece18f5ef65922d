"""Command-line entry points: compose and validate the config, then call a plain function.

Every user error ends as one line on stderr, ``error: ...``, and a non-zero exit code
(2 for configuration, 3 for the database or the study).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from study.errors import ConfigError, StudyError

if TYPE_CHECKING:  # the entry points import the heavy parts only once they run
    from study.config import Config

log = logging.getLogger(__name__)

#: The settings outside the config groups, for ``--help`` (``--cfg`` prints every one).
TOP_LEVEL = """top-level settings (key=value):
  study.name, study.metric, study.direction, study.prune_on   which study, what a trial returns
  n_trials, max_epochs, seed                                   the global budget, per trial
  workers, workers_per_gpu, device (auto|cpu|cuda)             local processes, where they train
  protocol.folds, protocol.train_fraction, protocol.retrain, protocol.ensemble,
  protocol.selection (top|greedy), protocol.pool
  warm_start.study, report.out_dir, tracking.mlflow_uri, tracking.tensorboard_dir,
  storage.url, artifacts.base_path
  dashboard.writable, dashboard.user                           study dashboard: edits, its role"""


def usage(prog: str) -> str:
    """What ``--help`` prints: the groups with their options (the default first), the top-level
    settings and where to read on; built without importing torch."""
    from study.conf import GROUPS, defaults, options

    chosen = defaults()
    lines = [
        f"usage: {prog} [--cfg] [group=option ...] [key=value ...]",
        "  --cfg   print every setting, composed with the overrides given, and exit",
        "",
        "config groups (group=option; the default first):",
    ]
    for group in GROUPS:
        names = sorted(options(group), key=lambda o: (o != chosen.get(group), o))
        lines.append(f"  {group:<13} {', '.join(names)}")
    lines += ["", TOP_LEVEL, "", "every setting: --cfg; the manual: README.md"]
    return "\n".join(lines)


def _show(cfg: Config) -> str:
    from omegaconf import OmegaConf

    from study.secrets import hide_password

    node = OmegaConf.structured(cfg)
    node.storage.url = hide_password(node.storage.url)
    node.tracking.mlflow_uri = hide_password(node.tracking.mlflow_uri)
    return OmegaConf.to_yaml(node)


Command = Callable[["Config", list[str]], int]


def run(
    command: Command | str,
    argv: list[str],
    worker: bool = False,
    prog: str = "",
    reads_study: bool = False,
) -> int:
    """Parse ``[--cfg] overrides...``, compose the config, and run ``command`` on it
    (``"module:function"`` is imported only then, so ``--help`` stays instant). A command that
    ``reads_study`` checks its settings once the study's recorded ones apply
    (:func:`study.recorded.for_study`)."""
    if any(a in ("-h", "--help") for a in argv):
        print(usage(prog or sys.argv[0].rsplit("/", 1)[-1]))
        return 0
    show = "--cfg" in argv
    overrides = [a for a in argv if a != "--cfg"]
    try:
        from study import _logging
        from study.config import load_config

        cfg = load_config(overrides, check=not reads_study)
        if show:
            print(_show(cfg))
            return 0
        prefixed = os.environ.get("STUDY_LAUNCHED") == "1"  # study-launch shows [wI] instead
        if worker and not prefixed:
            from study.loop import worker_id  # the worker's loop: torch and the rest

            _logging.setup(worker_id(cfg))
        else:
            _logging.setup(None)
        if isinstance(command, str):
            module, _, name = command.partition(":")
            resolved: Command = getattr(importlib.import_module(module), name)
        else:
            resolved = command
        return resolved(cfg, overrides)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:
        # A database condition no storage call translated (a thread, a library's own query):
        # still one line, never a traceback.
        from study.storage import database_failure

        failure = database_failure(e)
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return failure.exit_code


def _json_flag(argv: list[str]) -> tuple[bool, list[str]]:
    """``--json`` (print JSON on stdout instead of lines) and the other arguments."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--json", action="store_true")
    args, rest = parser.parse_known_args(argv)
    return bool(args.json), rest


def status_main(argv: list[str]) -> int:
    as_json, overrides = _json_flag(argv)

    def show(cfg: Config, given: list[str]) -> int:
        from study.recorded import for_study
        from study.status import best_line, iterations_lines, summary
        from study.storage import open_storage

        storage = open_storage(cfg.storage, create=False)
        cfg = for_study(cfg, storage, given)
        s = summary(storage, cfg.study.name, cfg.artifacts)
        if as_json:
            print(json.dumps(s))
            return 0
        counts = ", ".join(
            f"{k.lower()} {v}" for k, v in s["n_trials"].items() if v and k != "total"
        )
        print(f"study {s['study']}: {s['n_trials']['total']} trials ({counts or 'none'})")
        print(best_line(s))
        if s["best"]:
            print(f"  params: {s['best']['params']}")
        for line in iterations_lines(s):
            print(line)
        return 0

    return run(show, overrides, prog="study status [--json]", reads_study=True)


def list_main(argv: list[str]) -> int:
    as_json, overrides = _json_flag(argv)

    def show(cfg: Config, given: list[str]) -> int:
        from study.recorded import resolve_name
        from study.status import list_lines, studies
        from study.storage import open_storage

        storage = open_storage(cfg.storage, create=False)
        rows = studies(storage)
        if as_json:
            print(json.dumps(rows))
            return 0
        for line in list_lines(rows, resolve_name(cfg, storage, given)):
            print(line)
        return 0

    return run(show, overrides, prog="study list [--json]")


def test_main(argv: list[str]) -> int:
    def score(cfg: Config, given: list[str]) -> int:
        from study.recorded import for_study
        from study.storage import open_storage
        from study.testset import test_score

        storage = open_storage(cfg.storage, create=False)
        result = test_score(for_study(cfg, storage, given), storage)
        print(json.dumps(result))
        return 0

    return run(score, argv, prog="study test", reads_study=True)


def interrupt(signum: int, frame: object) -> None:
    """A signal handler that ends the process as Ctrl-C does (SIGTERM's default kills it at
    once, leaving an embedded server the process holds running)."""
    raise KeyboardInterrupt


def dashboard_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="study dashboard", add_help=False)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--viewer-sql", action="store_true")
    args, overrides = parser.parse_known_args(argv)

    def serve(cfg: Config, _: list[str]) -> int:
        from study import dashboard

        if args.viewer_sql:
            if cfg.storage.kind != "postgres":
                raise ConfigError(
                    "--viewer-sql is for storage=postgres: on the embedded server "
                    "`study dashboard` makes its read-only role itself"
                )
            print(dashboard.viewer_sql(cfg.storage, cfg.dashboard), end="")
            return 0
        # SIGTERM ends the start-up like Ctrl-C (the server, once it runs, stops between
        # requests): the process exits normally, so the embedded PostgreSQL it holds stops
        # with it instead of running on.
        signal.signal(signal.SIGTERM, interrupt)
        try:
            dashboard.serve(cfg, args.host, args.port)
        except OSError as e:
            raise StudyError(
                f"cannot serve on {args.host}:{args.port} ({e.strerror}); try --port"
            ) from e
        except KeyboardInterrupt:
            pass
        return 0

    return run(serve, overrides, prog="study dashboard [--host H] [--port P] [--viewer-sql]")


def report_main(argv: list[str]) -> int:
    def write(cfg: Config, given: list[str]) -> int:
        from study.recorded import for_study
        from study.report.page import build
        from study.storage import open_storage

        storage = open_storage(cfg.storage, create=False)
        report = build(for_study(cfg, storage, given), storage)
        for line in report.summary:
            print(line)
        print(f"report: {report.html}")
        print(f"plots:  {', '.join(p.png.name for p in report.plots)}")
        print(f"tables: {', '.join(p.name for p in report.tables)}")
        for skipped in report.skipped:
            print(f"not drawn: {skipped}")
        return 0

    return run(write, argv, prog="study report", reads_study=True)


def health_main(argv: list[str]) -> int:
    """Exit 0 when the worker touched its health file lately, else 1 (for healthchecks)."""
    import os
    import time

    parser = argparse.ArgumentParser(prog="study health")
    parser.add_argument("--file", default=os.environ.get("STUDY_HEALTH_FILE", ""))
    parser.add_argument("--max-age", type=float, default=600.0, help="seconds (default 600)")
    args = parser.parse_args(argv)
    if not args.file:
        print("error: no health file; set STUDY_HEALTH_FILE or --file", file=sys.stderr)
        return 2
    try:
        age = time.time() - os.stat(args.file).st_mtime
    except FileNotFoundError:
        print(f"unhealthy: {args.file} does not exist (worker not started?)")
        return 1
    if age > args.max_age:
        print(f"unhealthy: no progress for {age:.0f} s (limit {args.max_age:.0f} s)")
        return 1
    print(f"healthy: last progress {age:.0f} s ago")
    return 0


USAGE = """usage: study COMMAND [options] [overrides...]
  status, test and report read a study with the settings it was created with: give study.name
  (or nothing: the default study, else the one last launched here, else the storage's only one)
  list [--json]                 the studies in the storage; * marks the one read without a name
  status [--json]               trials by state, best trial, its model and test score
  test                          the best trial's test score (computed once, then stored)
  report                        HTML report, PNGs, CSV/Parquet tables, diagnosis (report.*)
  dashboard [--host H] [--port P]  optuna-dashboard on the study's storage (127.0.0.1:8080),
                                read-only; a login from STUDY_DASHBOARD_AUTH=name:password
  dashboard --viewer-sql        the SQL that makes the dashboard's read-only role (postgres)
  health [--file F] [--max-age S]  exit 0 if the worker made progress lately (healthchecks)"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "list": list_main,
        "status": status_main,
        "test": test_main,
        "report": report_main,
        "dashboard": dashboard_main,
        "health": health_main,
    }
    if argv and argv[0] in ("-h", "--help"):
        print(
            USAGE + "\n\nstudy COMMAND --help: the config groups and settings every command takes"
        )
        sys.exit(0)
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[argv[0]](argv[1:]))
