"""Iterations (``conf/iterations/``): a baseline and hand-tuned configurations, run first.

The practice before automating: train a baseline, then change one thing at a time ("units 128",
"+ dropout 0.3", "lr 5e-4", "stacked") and keep what helps. A list of named steps is enqueued
when the study is created, ahead of the sampler's trials; each trial carries its step's name in
the ``iteration`` user attribute, so the dashboard, ``study status`` and the report compare them
with the automatic search.

A step is ``{name: ..., params: {...}}``. With ``cumulative: true`` (the default) a step starts
from the previous step's parameters; the first step (the baseline) starts from each parameter's
plain default (:func:`study.space.middle`: the first choice, or the middle of the range). Values
must lie inside the search space, so the sampler can learn from these trials too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from study import space
from study.errors import ConfigError
from study.rdb import COPIED

log = logging.getLogger(__name__)


@dataclass
class IterationsConfig:
    #: A YAML file with the steps (a list, or a mapping with ``steps:``); replaces ``steps``.
    file: str = ""
    #: The steps inline: each ``{name: ..., params: {...}}``.
    steps: list[Any] = field(default_factory=list)
    #: Each step starts from the previous step's parameters.
    cumulative: bool = True


@dataclass
class Iteration:
    name: str
    #: Every parameter the trial samples (fixed ones are not sampled and not listed).
    params: dict[str, Any]


def _read_steps(cfg: IterationsConfig) -> tuple[str, list[Any]]:
    if not cfg.file:
        return "iterations.steps", list(cfg.steps)
    path = Path(cfg.file)
    if not path.is_file():
        raise ConfigError(f"iterations.file={cfg.file}: no such file; give the path of a YAML file")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{cfg.file}: not valid YAML{where}; fix the file") from e
    if isinstance(loaded, dict):
        loaded = loaded.get("steps")
    if not isinstance(loaded, list):
        raise ConfigError(f"{cfg.file}: expected a list of steps ({{name, params}}) or 'steps:'")
    return cfg.file, loaded


def named(cfg: IterationsConfig, key: str) -> list[Any]:
    """The values the steps set ``key`` to themselves (not those they inherit)."""
    _, steps = _read_steps(cfg)
    return [
        step["params"][key]
        for step in steps
        if isinstance(step, dict) and isinstance(step.get("params"), dict) and key in step["params"]
    ]


def resolve(
    cfg: IterationsConfig, search: space.SearchSpace, uses: tuple[str, ...]
) -> list[Iteration]:
    """The steps with their full parameters, checked against the search space."""
    source, steps = _read_steps(cfg)
    names = space.names(search, uses)
    current: dict[str, Any] = {n: space.middle(getattr(search, n)) for n in names}
    seen: set[str] = set()
    out = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("name"), str) or not step["name"]:
            raise ConfigError(f"{source}: step {i + 1} needs a name (name: baseline, params: ...)")
        name = step["name"]
        if name in seen:
            raise ConfigError(f"{source}: two steps are named {name!r}; give each its own name")
        seen.add(name)
        extra = sorted(set(step) - {"name", "params"})
        if extra:
            raise ConfigError(f"{source}: step {name!r} has unknown key {extra[0]!r}; use params")
        changes = step.get("params") or {}
        if not isinstance(changes, dict):
            raise ConfigError(f"{source}: step {name!r}: params must be a mapping")
        for key, value in changes.items():
            if key not in names:
                raise ConfigError(
                    f"{source}: step {name!r} sets unknown parameter {key!r}; "
                    f"known: {', '.join(names)}"
                )
            p = getattr(search, key)
            if not space.contains(p, value):
                raise ConfigError(
                    f"{source}: step {name!r} sets {key}={value!r}, outside search_space.{key}; "
                    f"widen search_space.{key} or change the step"
                )
        base = current if cfg.cumulative else {n: space.middle(getattr(search, n)) for n in names}
        current = {**base, **changes}
        sampled = {
            n: v
            for n, v in current.items()
            if space.active(n, current) and getattr(search, n).value is None
        }
        out.append(Iteration(name, sampled))
    return out


def enqueue(study: optuna.Study, iterations: list[Iteration]) -> None:
    """Queue the steps ahead of the sampler's trials, each labelled with its name."""
    for i, it in enumerate(iterations):
        study.enqueue_trial(it.params, user_attrs={"iteration": it.name, "iteration_index": i})
    if iterations:
        study.set_user_attr("iterations", [it.name for it in iterations])
        names = ", ".join(i.name for i in iterations)
        log.info("enqueued %d iterations: %s", len(iterations), names)


def compare(trials: list[optuna.trial.FrozenTrial], direction: str) -> dict[str, Any]:
    """The iterations in order, each with its state and value, beside the best automatic trial."""
    steps = sorted(
        (t for t in trials if "iteration" in t.user_attrs),
        key=lambda t: t.user_attrs.get("iteration_index", 0),
    )
    rows = [
        {
            "name": t.user_attrs["iteration"],
            "trial": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
        }
        for t in steps
    ]
    searched = [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and not {"iteration", COPIED} & set(t.user_attrs)  # run here by the sampler
    ]
    pick = min if direction == "minimize" else max
    best = pick(searched, key=lambda t: t.value, default=None)  # type: ignore[arg-type, return-value]
    automatic = None if best is None else {"trial": best.number, "value": best.value}
    return {"iterations": rows, "automatic": automatic}
