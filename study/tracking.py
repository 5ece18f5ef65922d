"""Tracking (``tracking.*``): log every finished trial to MLflow as well, when asked.

Optuna's own ``optuna_integration.MLflowCallback`` does the logging: one MLflow run per trial,
in an experiment named after the study, with the trial's parameters and its value under the
study's metric name. It needs ``pip install 'caviar-study[mlflow]'`` (mlflow-skinny and
optuna-integration); without a tracking URI nothing is imported.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from study.errors import ConfigError
from study.secrets import hide_password


@dataclass
class TrackingConfig:
    #: An MLflow tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``); empty: no MLflow.
    mlflow_uri: str = "${oc.env:MLFLOW_TRACKING_URI,''}"


def validate(cfg: TrackingConfig) -> None:
    """Refuse a tracking URI without MLflow before anything is created."""
    import importlib.util

    if cfg.mlflow_uri and not all(
        importlib.util.find_spec(m) for m in ("mlflow", "optuna_integration")
    ):
        raise ConfigError(
            "tracking.mlflow_uri is set but MLflow is not installed: "
            "pip install 'caviar-study[mlflow]', or unset tracking.mlflow_uri"
        )
    if cfg.mlflow_uri:
        _check_uri(cfg.mlflow_uri)


#: The URI schemes MLflow's tracking stores serve (a plain folder has none); a database one may
#: name its driver (postgresql+psycopg2).
MLFLOW_SCHEMES = (
    "", "file", "http", "https", "databricks", "databricks-uc", "uc",
    "sqlite", "postgresql", "mysql", "mssql",
)  # fmt: skip


def _check_uri(uri: str) -> None:
    """An unknown scheme fails here, in one line, rather than in every worker after its first
    trial (checked by name: asking MLflow would create a database file for some schemes)."""
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme.split("+")[0].lower()
    if scheme not in MLFLOW_SCHEMES:
        raise ConfigError(
            f"tracking.mlflow_uri={hide_password(uri)!r}: MLflow cannot use {scheme!r}; give a "
            "folder, file:, sqlite:///, postgresql:// or http(s):// URI"
        )


def callbacks(cfg: TrackingConfig, metric: str) -> list[Any]:
    """The trial callbacks tracking asks for (none without a URI)."""
    if not cfg.mlflow_uri:
        return []
    try:
        from optuna_integration import MLflowCallback
    except ImportError as e:
        raise ConfigError(
            "tracking.mlflow_uri is set but MLflow is not installed: "
            "pip install 'caviar-study[mlflow]', or unset tracking.mlflow_uri"
        ) from e
    # optuna-integration 4.9 marks its callbacks deprecated (removal in 6.0) while they move to
    # OptunaHub, where no MLflow callback is published yet; this is still the maintained one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:  # the learning curve stays in the study (too long for an MLflow tag)
            callback = MLflowCallback(
                tracking_uri=cfg.mlflow_uri, metric_name=metric, tag_trial_user_attrs=False
            )
        except Exception as e:  # noqa: BLE001 - MLflow's own errors, one line each
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"tracking.mlflow_uri={hide_password(cfg.mlflow_uri)}: {first}"
            ) from e
    return [callback]
