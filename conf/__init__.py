"""The config groups (installed as ``study.conf``): one folder per group, one YAML per option.

Light on purpose: ``--help`` lists the groups and options from here without importing torch.
"""

from __future__ import annotations

from importlib.resources import files

#: The groups a user picks an option of, in the order ``--help`` lists them.
GROUPS = (
    "data",
    "model",
    "sampler",
    "pruner",
    "search_space",
    "storage",
    "artifacts",
    "iterations",
)


def options(group: str) -> list[str]:
    """The options a user can pick for a config group (schemas hidden)."""
    folder = files("study.conf").joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def defaults() -> dict[str, str]:
    """Each group's default option (the ``defaults`` list of ``config.yaml``)."""
    import yaml

    text = files("study.conf").joinpath("config.yaml").read_text()
    chosen: dict[str, str] = {}
    for entry in yaml.safe_load(text)["defaults"]:
        if isinstance(entry, dict):
            chosen.update({str(k): str(v) for k, v in entry.items()})
    return chosen
