"""study-slurm: launch study workers as cluster jobs through Hydra's submitit launcher.

Each job of a multirun runs ``study-launch`` on its node (``workers`` processes over the node's
GPUs). ``job=range(N)`` makes N jobs; ``hydra/launcher=slurm`` submits them to SLURM,
``hydra/launcher=submitit_local`` runs them as local processes (how CI proves the path).
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from study import _logging
from study.config import load_config
from study.errors import StudyError
from study.launcher import launch
from study.secrets import has_password


@hydra.main(config_path="pkg://study.conf", config_name="config", version_base="1.3")
def job(_: DictConfig) -> int:
    # Recompose through load_config: the same typed validation as every other command.
    overrides = list(HydraConfig.get().overrides.task)
    try:
        cfg = load_config(overrides)
        _logging.setup()
        code = launch(cfg, overrides)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from e
    if code:
        raise SystemExit(code)
    return code


def main() -> None:
    if has_password(sys.argv[1:]):
        # Hydra writes the overrides into each job's folder and submitit pickles them.
        print(
            "error: storage.url carries a password, which the jobs' files would keep: leave it "
            "out of the URL and export STUDY_DB_PASSWORD (the jobs inherit the environment)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    job()


if __name__ == "__main__":
    main()
