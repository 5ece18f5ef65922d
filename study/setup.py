"""Creating the shared study once and loading it everywhere else."""

from __future__ import annotations

import logging
from typing import Any

import optuna
from omegaconf import OmegaConf

from study import samplers, space
from study.config import Config
from study.storage import BudgetedRDBStorage, setup_lock

log = logging.getLogger(__name__)


def settings_of(cfg: Config) -> dict[str, Any]:
    """The settings that define what a study searches; recorded on the study when created."""

    def plain(node: Any) -> Any:
        return OmegaConf.to_container(OmegaConf.structured(node), resolve=True)

    return {
        "sampler": plain(cfg.sampler),
        "pruner": plain(cfg.pruner),
        "model": plain(cfg.model),
        "data": plain(cfg.data),
        "search_space": plain(cfg.search_space),
        "metric": cfg.study.metric,
        "max_epochs": cfg.max_epochs,
    }


def prepare_study(cfg: Config, storage: BudgetedRDBStorage, **kwargs: Any) -> optuna.Study:
    """Load the study, creating it first if this is the first process to arrive.

    Creation happens under a PostgreSQL advisory lock so that two launchers (or workers) on
    different machines cannot both create it or both enqueue the grid.
    """
    name = cfg.study.name
    with setup_lock(storage):
        exists = name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction=cfg.study.direction,  # type: ignore[arg-type]  # validated in config
            load_if_exists=True,
            **kwargs,
        )
        if not exists:
            study.set_user_attr("settings", settings_of(cfg))
            log.info("created study %s", name)
            if samplers.is_grid(cfg.sampler):
                _enqueue_grid(study, cfg)
    return study


def _enqueue_grid(study: optuna.Study, cfg: Config) -> None:
    points = space.grid_points(cfg.search_space)
    if len(points) > cfg.n_trials:
        log.warning(
            "the grid has %d points but n_trials=%d: only the first %d run",
            len(points),
            cfg.n_trials,
            cfg.n_trials,
        )
    for point in points[: cfg.n_trials]:
        study.enqueue_trial(point)
    study.set_user_attr("grid_size", len(points))
    log.info("enqueued %d grid points", min(len(points), cfg.n_trials))
