"""Tune PyTorch sequence models with many workers on one shared Optuna study."""

from __future__ import annotations

from study.config import Config, load_config
from study.errors import ConfigError, StorageError, StudyError

__all__ = ["Config", "ConfigError", "StorageError", "StudyError", "load_config"]
