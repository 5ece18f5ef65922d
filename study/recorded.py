"""The study is the unit: ``study status|test|report`` find the study and re-apply its settings.

A study records what it searches when it is created (:func:`study.setup.settings_of`). The
commands that read a study take only its name, or none at all: the name given, else the default
name if that study exists, else the study last launched from this directory, else the storage's
only study. The recorded data, model, search space, protocol, metric and seed then replace the
command line's defaults, so ``study test`` after ``study-launch data=airline seed=1`` needs no
``data=airline`` and retrains the final models with seed 1, as the launch did.
A setting the command line names explicitly (``protocol.ensemble=3``) still wins.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from study.config import GROUP_SCHEMAS, Config, validate
from study.errors import ConfigError
from study.rdb import BudgetedRDBStorage

log = logging.getLogger(__name__)

#: Where study-launch leaves the name of the study it ran (relative to the directory it ran in).
LAST = Path(".study") / "last-study"

#: The recorded groups a reading command re-applies.
GROUPS = ("data", "model", "search_space", "protocol")


def remember(name: str) -> None:
    """Note the study launched from this directory (best effort: a read-only directory only
    costs the default)."""
    try:
        LAST.parent.mkdir(parents=True, exist_ok=True)
        LAST.write_text(name + "\n")
    except OSError:
        pass


def _named(overrides: list[str]) -> bool:
    return any(o.split("=", 1)[0].lstrip("+~") == "study.name" for o in overrides)


def resolve_name(cfg: Config, storage: BudgetedRDBStorage, overrides: list[str]) -> str:
    """The study a reading command means (see the module's docstring)."""
    if _named(overrides):
        return cfg.study.name
    known = [s.study_name for s in storage.get_all_studies()]
    if cfg.study.name in known:
        return cfg.study.name
    last = LAST.read_text().strip() if LAST.is_file() else ""
    if last in known:
        return last
    if len(known) == 1:
        return known[0]
    return cfg.study.name  # missing: load_existing names the studies there are


def _schema(group: str, recorded: dict[str, Any]) -> Any:
    """The option's dataclass for a recorded group (the data option by its loader)."""
    schemas = GROUP_SCHEMAS[group]
    if len(schemas) == 1:
        return next(iter(schemas.values()))
    for schema in schemas.values():
        if OmegaConf.structured(schema).get("_target_") == recorded.get("_target_"):
            return schema
    raise ConfigError(
        f"the study's {group} ({recorded.get('_target_')}) is not an option of this version; "
        "use the version that created it"
    )


#: The recorded top-level keys a reading command re-applies, besides the groups.
KEYS = ("study.metric", "seed")


def _explicit(overrides: list[str]) -> list[tuple[str, Any]]:
    """``key=value`` overrides inside the recorded groups (or of :data:`KEYS`), parsed."""
    parsed = OverridesParser.create().parse_overrides([o for o in overrides if "=" in o])
    keep = []
    for o in parsed:
        key = o.key_or_group
        if (key.count(".") and key.split(".")[0] in GROUPS) or key in KEYS:
            keep.append((key, o.value()))
    return keep


def apply(cfg: Config, settings: dict[str, Any] | None, overrides: list[str]) -> Config:
    """``cfg`` with the study's recorded settings, the command line's explicit keys on top,
    checked as a whole (the command line alone is not, see :func:`study.config.load_config`)."""
    if not settings:
        validate(cfg)
        return cfg
    node = OmegaConf.structured(cfg)
    for group in GROUPS:
        if group in settings:
            base = node[group]
            if group in GROUP_SCHEMAS:  # an option of a config group: its own schema
                base = OmegaConf.structured(_schema(group, settings[group]))
            node[group] = OmegaConf.merge(base, settings[group])
    if settings.get("metric"):
        node.study.metric = settings["metric"]
        node.study.direction = "auto"
    if "seed" in settings:  # recorded since greedy ensembles: older studies keep the default
        node.seed = settings["seed"]
    for key, value in _explicit(overrides):
        OmegaConf.update(node, key, value, merge=False)
    result: Config = OmegaConf.to_object(node)  # type: ignore[assignment]
    validate(result)
    return result


def for_study(cfg: Config, storage: BudgetedRDBStorage, overrides: list[str]) -> Config:
    """The configuration a reading command needs for the study it means."""
    from study.storage import load_existing

    name = resolve_name(cfg, storage, overrides)
    if name != cfg.study.name:
        log.info("study %s (study.name=... picks another)", name)
    cfg.study.name = name
    study = load_existing(storage, name)
    return apply(cfg, pinned(study.user_attrs.get("settings"), study.user_attrs), overrides)


def pinned(settings: dict[str, Any] | None, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The settings with ``data.scaling=auto`` replaced by what it chose when the study was
    created (the ``data`` attribute's ``scaling``): a later release may choose otherwise for the
    same data (``series_stats`` where it chose ``series``), and the study's saved models were
    trained on what it chose then."""
    chosen = (attrs.get("data") or {}).get("scaling")
    if not settings or not chosen or (settings.get("data") or {}).get("scaling") != "auto":
        return settings
    return {**settings, "data": {**settings["data"], "scaling": chosen}}
