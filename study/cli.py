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
        from study.worker import worker_id

        _logging.setup(worker_id(cfg) if worker else None)
        return command(cfg, overrides)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def status_main(argv: list[str]) -> int:
    from study.status import best_line, summary
    from study.storage import open_storage

    parser = argparse.ArgumentParser(prog="study status")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args, overrides = parser.parse_known_args(argv)

    def show(cfg: Config, _: list[str]) -> int:
        s = summary(open_storage(cfg.storage), cfg.study.name, cfg.artifacts)
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
        return 0

    return run(show, overrides)


def test_main(argv: list[str]) -> int:
    from study.storage import open_storage
    from study.testset import test_score

    def score(cfg: Config, _: list[str]) -> int:
        result = test_score(cfg, open_storage(cfg.storage))
        print(json.dumps(result))
        return 0

    return run(score, argv)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"status": status_main, "test": test_main}
    if not argv or argv[0] not in commands:
        print(
            "usage: study status [--json] [overrides...]  trials by state, best trial, test score\n"
            "       study test [overrides...]             the best trial's test score (computed "
            "once, then stored)",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(commands[argv[0]](argv[1:]))
