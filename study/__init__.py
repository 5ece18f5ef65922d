"""Tune PyTorch sequence models with many workers on one shared Optuna study."""

from __future__ import annotations

from typing import Any

from study._versions import refuse_unsupported
from study.errors import ConfigError, StorageError, StudyError

refuse_unsupported()  # one line, before anything relies on a dependency's private parts

__all__ = ["Config", "ConfigError", "StorageError", "StudyError", "load_config"]


def __getattr__(name: str) -> Any:
    """``Config`` and ``load_config`` on first use: ``--help`` must not wait for torch."""
    if name in ("Config", "load_config"):
        from study import config

        return getattr(config, name)
    raise AttributeError(f"module 'study' has no attribute {name!r}")
