"""Creating the shared study once and loading it everywhere else."""

from __future__ import annotations

import logging
from typing import Any

import optuna
from omegaconf import OmegaConf

from study import iterations, protocol, pruners, samplers, space, warm_start
from study.config import Config
from study.data import CLASSIFICATION, SequenceData, load_data
from study.errors import ConfigError
from study.rdb import BudgetedRDBStorage
from study.recorded import pinned
from study.storage import setup_lock
from study.trial_cache import TrialCache

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
        "protocol": plain(cfg.protocol),
        "iterations": plain(cfg.iterations),
        "warm_start": plain(cfg.warm_start),
        # The final models' retraining draws from it: `study test` retrains with the same seed.
        "seed": cfg.seed,
    }


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """Settings that changed; a setting the study did not record (one added by a later release,
    at its default) is not a difference."""
    if isinstance(old, dict) and isinstance(new, dict):
        diffs = []
        for key in sorted(old):
            diffs += _differences(old[key], new.get(key), f"{path}.{key}" if path else key)
        return diffs
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def _check_unchanged(study: optuna.Study, cfg: Config, data: SequenceData) -> None:
    """Refuse to continue a study under different settings unless the user says so."""
    recorded = study.user_attrs.get("settings")
    current = settings_of(cfg)
    if recorded is None:
        return
    _check_scaling(study, cfg, data)
    diffs = _differences(recorded, current, "")
    if not diffs or not _differences(pinned(recorded, study.user_attrs), current, ""):
        return  # data.scaling named as what auto chose then is no change
    if not cfg.study.allow_changes:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise ConfigError(
            f"study {cfg.study.name!r} was created with other settings ({shown}); use the same "
            "settings, a new study.name, or study.allow_changes=true"
        )
    log.warning("continuing study %s with changed settings: %s", cfg.study.name, "; ".join(diffs))
    study.set_user_attr("settings", current)


def _check_scaling(study: optuna.Study, cfg: Config, data: SequenceData) -> None:
    """A study whose ``data.scaling=auto`` chose otherwise under an earlier release (``series``
    where this one chooses ``series_stats``) goes on as it began: its trials' checkpoints and
    models read the inputs it had then."""
    chosen = (study.user_attrs.get("data") or {}).get("scaling")
    now = data.info.get("scaling")
    if getattr(cfg.data, "scaling", None) == "auto" and chosen and now and chosen != now:
        raise ConfigError(
            f"study {cfg.study.name!r} scaled its series {chosen!r} when it was created, and "
            f"data.scaling=auto now chooses {now!r}; add data.scaling={chosen} to continue it"
        )


#: Fewer validation examples than this and the pick between trials is mostly noise.
SMALL_VALIDATION = 30


def load_checked_data(cfg: Config, warn: bool = False) -> SequenceData:
    """Load the data before anything is created: bad data is refused here, with one line.
    ``warn``: log the data's warnings (the launcher, or a lone worker, does it once)."""
    data = load_data(cfg.data)
    cut = None
    if "input_length" in data.uses:
        cut = _cut_input_length(cfg, data)
        longest = space.upper(cfg.search_space.input_length)
        limit = getattr(data, "max_input_length", longest)
        if longest > limit:
            raise ConfigError(
                f"search_space.input_length reaches {longest} but {data.name} leaves room for "
                f"at most {limit} steps of history; lower it"
            )
    if "seasonal" in data.uses:
        _check_seasonal(cfg, data)
    if "base" in data.uses:
        _check_base(cfg, data)
    if warn:
        for note in ([cut] if cut else []) + _notes(cfg, data):
            log.warning("%s", note)
    return data


def _cut_input_length(cfg: Config, data: SequenceData) -> str | None:
    """Cut a searched range of input windows at the data's ``input_cap`` (a share of the
    training part, ``data.max_input_share``), in ``cfg`` itself, so every worker draws from the
    same cut range and the study records it; keep any window a hand-tuned iteration names.
    Returns the line that says so, or None when nothing was cut."""
    p, cap = cfg.search_space.input_length, getattr(data, "input_cap", 0)
    if not cap:  # data.max_input_share=1: the whole range
        return None
    narrowed = space.cut(p, max([cap, *iterations.named(cfg.iterations, "input_length")]))
    if narrowed is None:
        return None
    cfg.search_space.input_length = narrowed
    share = getattr(cfg.data, "max_input_share", 1)
    searched = (
        f"{narrowed.low:g} steps"
        if narrowed.low == narrowed.high
        else f"{narrowed.low:g} to {narrowed.high:g} steps"
    )
    return (
        f"search_space.input_length searches {searched}, not up to {p.high:g}: at most "
        f"{share:g} of the {data.info['train']} training steps (data.max_input_share; 1 "
        "searches the whole range)"
    )


def _check_seasonal(cfg: Config, data: SequenceData) -> None:
    """The seasonal treatments the space allows must fit the training part."""
    p, train, season = cfg.search_space.seasonal, data.info["train"], getattr(data, "season", 1)
    if space.contains(p, "decompose") and train < 2 * season:
        raise ConfigError(
            f"search_space.seasonal=decompose needs two seasons of training data ({2 * season} "
            f"steps, {train} here); drop it from search_space.seasonal.choices"
        )
    room = getattr(data, "max_input_length", train) - season
    if space.contains(p, "difference") and space.upper(cfg.search_space.input_length) > room:
        raise ConfigError(
            f"search_space.seasonal=difference needs a season more history ({season} steps): "
            f"lower search_space.input_length.high to {room} or drop difference from "
            "search_space.seasonal.choices"
        )


def _check_base(cfg: Config, data: SequenceData) -> None:
    """A classical base needs a season and a step of history before a training origin."""
    train, season = data.info["train"], getattr(data, "season", 1)
    need = season + 1 + getattr(data, "horizon", 1)
    if space.contains(cfg.search_space.base, "arima") and train < need:
        raise ConfigError(
            f"search_space.base=arima needs {need} training steps (a season, a step and the "
            f"horizon; {train} here); drop arima from search_space.base.choices"
        )


def _notes(cfg: Config, data: SequenceData) -> list[str]:
    notes = list(data.notes)
    if data.task == CLASSIFICATION and cfg.protocol.folds < 2 and len(data.val) < SMALL_VALIDATION:
        notes.append(
            f"validation holds {len(data.val)} examples: trials tie and the pick rests on a "
            "handful; set protocol.folds=5 (k-fold over the training and validation splits)"
        )
    bracketed = pruners.startup_note(
        cfg.pruner,
        int(getattr(cfg.sampler, "n_startup_trials", 0)),  # samplers that learn after a start
        cfg.n_trials,
        protocol.schedule(cfg.protocol, cfg.max_epochs).steps,
    )
    if bracketed:
        notes.append(bracketed)
    return notes


def _exists(storage: BudgetedRDBStorage, name: str) -> bool:
    """One indexed lookup (study summaries would read every trial of every study in the
    database: seconds per worker start once a database holds large studies)."""
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def prepare_study(
    cfg: Config,
    storage: BudgetedRDBStorage,
    data: SequenceData,
    warm: warm_start.WarmStart | None = None,
    **kwargs: Any,
) -> optuna.Study:
    """Load the study, creating it first if this is the first process to arrive.

    Creation happens under a PostgreSQL advisory lock so that two launchers (or workers) on
    different machines cannot both create it or both enqueue the grid.
    """
    name = cfg.study.name
    with setup_lock(storage):
        exists = _exists(storage, name)
        study = optuna.create_study(
            study_name=name,
            storage=TrialCache(storage, cfg.storage.sync_seconds),
            direction=cfg.study.direction,  # type: ignore[arg-type]  # validated in config
            load_if_exists=True,
            **kwargs,
        )
        if exists:
            _check_unchanged(study, cfg, data)
        else:
            study.set_user_attr("settings", settings_of(cfg))
            study.set_user_attr("data", data.info)  # sizes, vocabulary, baselines
            study.set_metric_names([cfg.study.metric])  # the dashboard's axis label
            log.info("created study %s", name)
            if warm is not None and cfg.warm_start.trials:
                warm_start.copy_trials(study, warm, cfg.search_space)
            iterations.enqueue(
                study, iterations.resolve(cfg.iterations, cfg.search_space, data.uses)
            )
            if samplers.is_grid(cfg.sampler):
                _enqueue_grid(study, cfg, data.uses)
    return study


def _enqueue_grid(study: optuna.Study, cfg: Config, uses: tuple[str, ...]) -> None:
    points = space.grid_points(cfg.search_space, uses)
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
