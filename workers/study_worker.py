"""study-worker: one worker process on the shared study (what study-launch starts, and what a
user starts by hand on a remote machine with ``storage=postgres``)."""

from __future__ import annotations

import sys

from study.cli import run
from study.config import Config
from study.loop import work


def _work(cfg: Config, overrides: list[str]) -> int:
    return work(cfg)


def main() -> None:
    sys.exit(run(_work, sys.argv[1:], worker=True))


if __name__ == "__main__":
    main()
