"""Command-line entry points: compose and validate the config, then call a plain function.

Every user error ends as one line on stderr, ``error: ...``, and a non-zero exit code
(2 for configuration, 3 for the database or the study).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from omegaconf import OmegaConf

from study import _logging
from study.config import Config, load_config
from study.errors import StudyError
from study.storage import masked

log = logging.getLogger(__name__)


def _show(cfg: Config) -> str:
    node = OmegaConf.structured(cfg)
    if node.storage.url:
        node.storage.url = masked(node.storage.url)
    return OmegaConf.to_yaml(node)


def run(command: Callable[[Config, list[str]], int], argv: list[str], worker: bool = False) -> int:
    """Parse ``[--cfg] overrides...``, compose the config, and run ``command`` on it."""
    if any(a in ("-h", "--help") for a in argv):
        print(
            "usage: [--cfg] [key=value ...] [group=option ...]\n"
            "  --cfg   print the composed configuration and exit\n"
            "Settings and options: see README.md and conf/."
        )
        return 0
    show = "--cfg" in argv
    overrides = [a for a in argv if a != "--cfg"]
    try:
        cfg = load_config(overrides)
        if show:
            print(_show(cfg))
            return 0
        from study.loop import worker_id

        _logging.setup(worker_id(cfg) if worker else None)
        return command(cfg, overrides)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def status_main(argv: list[str]) -> int:
    from study.recorded import for_study
    from study.status import best_line, iterations_lines, summary
    from study.storage import open_storage

    parser = argparse.ArgumentParser(prog="study status")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args, overrides = parser.parse_known_args(argv)

    def show(cfg: Config, given: list[str]) -> int:
        storage = open_storage(cfg.storage)
        cfg = for_study(cfg, storage, given)
        s = summary(storage, cfg.study.name, cfg.artifacts)
        if args.json:
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

    return run(show, overrides)


def test_main(argv: list[str]) -> int:
    from study.recorded import for_study
    from study.storage import open_storage
    from study.testset import test_score

    def score(cfg: Config, given: list[str]) -> int:
        storage = open_storage(cfg.storage)
        result = test_score(for_study(cfg, storage, given), storage)
        print(json.dumps(result))
        return 0

    return run(score, argv)


def dashboard_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="study dashboard")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    args, overrides = parser.parse_known_args(argv)

    def serve(cfg: Config, _: list[str]) -> int:
        import optuna_dashboard

        from study.artifacts import build_store
        from study.storage import open_storage

        storage = open_storage(cfg.storage)  # for embedded: keeps the server up meanwhile
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "optuna-dashboard has no authentication: anyone reaching this port can edit"
            )
        print(f"optuna-dashboard: http://{args.host}:{args.port}/dashboard/", flush=True)
        try:
            optuna_dashboard.run_server(
                storage, host=args.host, port=args.port, artifact_store=build_store(cfg.artifacts)
            )
        except OSError as e:
            raise StudyError(
                f"cannot serve on {args.host}:{args.port} ({e.strerror}); try --port"
            ) from e
        except KeyboardInterrupt:
            pass
        return 0

    return run(serve, overrides)


def report_main(argv: list[str]) -> int:
    from study.recorded import for_study
    from study.report.page import build
    from study.storage import open_storage

    def write(cfg: Config, given: list[str]) -> int:
        storage = open_storage(cfg.storage)
        report = build(for_study(cfg, storage, given), storage)
        for line in report.summary:
            print(line)
        print(f"report: {report.html}")
        print(f"plots:  {', '.join(p.png.name for p in report.plots)}")
        print(f"tables: {', '.join(p.name for p in report.tables)}")
        for skipped in report.skipped:
            print(f"not drawn: {skipped}")
        return 0

    return run(write, argv)


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
  status [--json]               trials by state, best trial, its model and test score
  test                          the best trial's test score (computed once, then stored)
  report                        HTML report, PNGs, CSV/Parquet tables, diagnosis (report.*)
  dashboard [--host H] [--port P]  optuna-dashboard on the study's storage (127.0.0.1:8080)
  health [--file F] [--max-age S]  exit 0 if the worker made progress lately (healthchecks)"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "status": status_main,
        "test": test_main,
        "report": report_main,
        "dashboard": dashboard_main,
        "health": health_main,
    }
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[argv[0]](argv[1:]))
