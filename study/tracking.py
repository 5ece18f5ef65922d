"""Tracking (``tracking.*``): log every finished trial to MLflow or TensorBoard as well, when
asked.

MLflow: Optuna's own ``optuna_integration.MLflowCallback`` does the logging: one MLflow run per
trial, in an experiment named after the study, with the trial's parameters and its value under
the study's metric name. It needs ``pip install 'caviar-study[mlflow]'`` (mlflow-skinny and
optuna-integration).

TensorBoard: one run per finished trial (complete or pruned) under
``<tensorboard_dir>/<study>/trial-NNNNN``, written with PyTorch's ``SummaryWriter``: every
per-epoch metric of its learning curve as scalars (``train/loss``, ``val/accuracy``, ...), and its
parameters with its value in TensorBoard's HParams view. Optuna-integration's TensorBoard
callback logs the final value only, and needs TensorFlow. It needs ``pip install
'caviar-study[tensorboard]'``. Without either setting nothing is imported.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

from study.errors import ConfigError
from study.secrets import hide_password


@dataclass
class TrackingConfig:
    #: An MLflow tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``); empty: no MLflow.
    mlflow_uri: str = "${oc.env:MLFLOW_TRACKING_URI,''}"
    #: A folder for TensorBoard runs, one per trial (``tensorboard --logdir <it>``); empty: none.
    tensorboard_dir: str = ""


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported; one already imported counts, even when, like
    optuna_integration's lazy module, it has no ``__spec__`` (``find_spec`` raises then)."""
    import importlib.util

    return module in sys.modules or importlib.util.find_spec(module) is not None


def validate(cfg: TrackingConfig) -> None:
    """Refuse a tracking URI without MLflow before anything is created."""
    if cfg.mlflow_uri and not all(_installed(m) for m in ("mlflow", "optuna_integration")):
        raise ConfigError(
            "tracking.mlflow_uri is set but MLflow is not installed: "
            "pip install 'caviar-study[mlflow]', or unset tracking.mlflow_uri"
        )
    if cfg.mlflow_uri:
        _check_uri(cfg.mlflow_uri)
    if cfg.tensorboard_dir:
        if not _installed("tensorboard"):
            raise ConfigError(
                "tracking.tensorboard_dir is set but TensorBoard is not installed: "
                "pip install 'caviar-study[tensorboard]', or unset tracking.tensorboard_dir"
            )
        _check_writable(cfg.tensorboard_dir)


def _check_writable(folder: str) -> None:
    import tempfile
    from pathlib import Path

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise ConfigError(
            f"tracking.tensorboard_dir={folder}: cannot write there ({e.strerror}); give a "
            "folder this machine can write to"
        ) from e


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
    """The trial callbacks tracking asks for (none without a URI or a folder)."""
    found: list[Any] = []
    if cfg.tensorboard_dir:
        found.append(TensorBoardRuns(cfg.tensorboard_dir, metric))
    if cfg.mlflow_uri:
        found.append(_mlflow(cfg, metric))
    return found


#: Curve columns that say where a row is, not what was measured.
_POSITION = ("epoch", "step", "fold")


class TensorBoardRuns:
    """A trial callback: one TensorBoard run per complete or pruned trial (see the module's
    docstring). A failed trial is left out: it was interrupted and its retry writes the run."""

    def __init__(self, folder: str, metric: str) -> None:
        self.folder, self.metric = folder, metric

    def __call__(self, study: Any, trial: Any) -> None:
        from pathlib import Path

        from optuna.trial import TrialState
        from torch.utils.tensorboard import SummaryWriter

        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            return
        curve: list[dict[str, float]] = trial.user_attrs.get("curve", [])
        run = Path(self.folder) / study.study_name / f"trial-{trial.number:05d}"
        with SummaryWriter(log_dir=str(run)) as writer:
            for row in curve:
                step = int(row.get("step", row["epoch"]))
                for key, measured in row.items():
                    if key not in _POSITION:
                        writer.add_scalar(key.replace("_", "/", 1), measured, step)
            values = [row[self.metric] for row in curve if self.metric in row]
            value = trial.value if trial.value is not None else _best(values, study)
            params = {k: v for k, v in trial.params.items() if isinstance(v, (int, float, str))}
            params["state"] = trial.state.name.lower()
            if value is not None:  # the HParams view: parameters beside the value
                writer.add_hparams(params, {f"hparam/{self.metric}": value}, run_name=".")


def _best(values: list[float], study: Any) -> float | None:
    """A pruned trial's best epoch by the study's metric (its value, had it completed)."""
    from optuna.study import StudyDirection

    if not values:
        return None
    return max(values) if study.direction == StudyDirection.MAXIMIZE else min(values)


def _mlflow(cfg: TrackingConfig, metric: str) -> Any:
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
    return callback
