"""study-worker: one worker process on the shared study (what study-launch starts, and what a
user starts by hand on a remote machine with ``storage=postgres``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from study.cli import run

if TYPE_CHECKING:
    from study.config import Config


def _work(cfg: Config, overrides: list[str]) -> int:
    from study.loop import work

    return work(cfg)


def main() -> None:
    sys.exit(run(_work, sys.argv[1:], worker=True, prog="study-worker"))


if __name__ == "__main__":
    main()
