"""The typed configuration: Hydra composes ``conf/``, this module checks it and hands back objects.

Every group is validated by a dataclass registered in Hydra's ConfigStore (``<option>_schema``),
so an unknown key, a wrong type or an empty range fails before anything runs, with one line that
names the setting and the fix (:class:`study.errors.ConfigError`, exit code 2).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, MissingConfigException
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from study import artifact_options, iterations, protocol, pruners, samplers, space, tracking
from study.conf import options
from study.dashboard import DashboardConfig
from study.data import forecast, series_files, text, ucr
from study.errors import ConfigError
from study.iterations import IterationsConfig
from study.model_options import ModelConfig
from study.protocol import ProtocolConfig
from study.report import ReportConfig
from study.secrets import hide_password
from study.storage import StorageConfig
from study.tracking import TrackingConfig
from study.warm_start import WarmStartConfig

#: What a trial's value can be, and whether larger is better.
METRICS = {
    "val_loss": "minimize",
    "val_accuracy": "maximize",
    "val_f1": "maximize",
    "val_rmse": "minimize",
    "val_mae": "minimize",
    "val_mape": "minimize",
}
#: The metrics each task records per epoch.
TASK_METRICS = {
    "classification": ("val_loss", "val_accuracy", "val_f1"),
    "forecasting": ("val_loss", "val_rmse", "val_mae", "val_mape"),
}


@dataclass
class StudySettings:
    name: str = MISSING
    #: auto follows the metric (minimize a loss or an error, maximize accuracy or F1).
    direction: str = "auto"
    #: The validation metric a trial returns (its best epoch's).
    metric: str = "val_loss"
    #: The validation metric reported to the pruner after every epoch.
    prune_on: str = "val_loss"
    #: Continue an existing study even though its sampler, pruner, model, data or search space
    #: differ from the settings it was created with (they are recorded on the study).
    allow_changes: bool = False


@dataclass
class WorkerSettings:
    #: Set by study-launch for each worker it starts; seeds the sampler apart from its siblings.
    index: int = 0
    #: Torch CPU threads; 0 leaves PyTorch's default.
    threads: int = 0
    #: A worker whose trials fail this many times in a row stops.
    max_consecutive_failures: int = 5
    #: On a GPU: the share of its memory this process may take (0 = no limit); with
    #: workers_per_gpu=K, 1/K keeps one trial from starving the others.
    gpu_memory_fraction: float = 0.0
    #: A file the worker touches after each epoch and while it waits; `study health` checks its
    #: age (for container health checks). Empty: none.
    health_file: str = "${oc.env:STUDY_HEALTH_FILE,''}"


# The groups with several schemas: OmegaConf validates each against the option's own dataclass
# (so the field must say Any), while the code below the entry points sees the seam's Protocol.
if TYPE_CHECKING:
    from study.artifact_options import ArtifactOptions as _ArtifactsField
    from study.data import DataOptions as _DataField
    from study.pruners import PrunerOptions as _PrunerField
    from study.samplers import SamplerOptions as _SamplerField
else:
    _ArtifactsField = _DataField = _PrunerField = _SamplerField = Any


@dataclass
class Config:
    storage: StorageConfig = MISSING
    sampler: _SamplerField = MISSING
    pruner: _PrunerField = MISSING
    model: ModelConfig = MISSING
    data: _DataField = MISSING
    search_space: space.SearchSpace = MISSING
    study: StudySettings = field(default_factory=StudySettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    #: Cross-validation, tuning on a fraction, retraining the final model.
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    #: Start from another study's trials and/or its best model.
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    #: What `study report` writes and how it diagnoses.
    report: ReportConfig = field(default_factory=ReportConfig)
    #: Log trials to MLflow too.
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    #: How `study dashboard` reaches the database and who may see it.
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    artifacts: _ArtifactsField = MISSING
    #: A baseline and hand-tuned configurations, run before the automatic search.
    iterations: IterationsConfig = MISSING
    #: The global budget: trials over all workers, machines and restarts.
    n_trials: int = 40
    max_epochs: int = 40
    seed: int = 0
    #: Local worker processes study-launch starts.
    workers: int = 2
    workers_per_gpu: int = 1
    #: auto (CUDA when visible, else CPU), cpu, or cuda.
    device: str = "auto"
    #: The index of a cluster job (``study-slurm -m job='range(N)'`` makes N jobs).
    job: int = 0


GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "storage": {"storage": StorageConfig},
    "sampler": {
        "tpe": samplers.TPEConfig,
        "random": samplers.RandomConfig,
        "gp": samplers.GPConfig,
        "grid": samplers.GridConfig,
    },
    "pruner": {
        "median": pruners.MedianConfig,
        "percentile": pruners.PercentileConfig,
        "successive_halving": pruners.SuccessiveHalvingConfig,
        "hyperband": pruners.HyperbandConfig,
        "patient": pruners.PatientConfig,
        "threshold": pruners.ThresholdConfig,
        "wilcoxon": pruners.WilcoxonConfig,
        "none": pruners.NoneConfig,
    },
    "model": {"model": ModelConfig},
    "data": {
        "ucr": ucr.UCRConfig,
        "series_files": series_files.SeriesFilesConfig,
        "text": text.TextConfig,
        "rotten_tomatoes": text.RottenTomatoesConfig,
        "forecast": forecast.ForecastConfig,
        "airline": forecast.AirlineConfig,
        "lynx": forecast.LynxConfig,
    },
    "search_space": {"search_space": space.SearchSpace},
    "artifacts": {
        "filesystem": artifact_options.FileSystemArtifacts,
        "s3": artifact_options.S3Artifacts,
    },
    "iterations": {"iterations": iterations.IterationsConfig},
}


def _register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for group, schemas in GROUP_SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=group, name=f"{name}_schema", node=node)


_register()


def load_config(overrides: list[str], check: bool = True) -> Config:
    """Compose ``conf/`` with command-line overrides, validate, and return typed objects.

    ``check=False`` (a command that reads a study) checks only the storage and artifact
    settings it opens the study with: the rest depends on the study's recorded settings
    (``study test protocol.retrain_seeds=5`` on a forecasting study is sound, though the
    default data is not forecasting), and :func:`study.recorded.apply` checks it then."""
    try:
        if GlobalHydra.instance().is_initialized():  # inside a @hydra.main job (study-slurm)
            raw = compose(config_name="config", overrides=overrides)
        else:
            with initialize_config_module(config_module="study.conf", version_base="1.3"):
                raw = compose(config_name="config", overrides=overrides)
        extra = set(raw) - set(OmegaConf.structured(Config))
        if extra:
            raise ConfigError(f"unknown setting {sorted(extra)[0]!r}; see `study-worker --cfg`")
        cfg: Config = OmegaConf.to_object(raw)  # type: ignore[assignment]
    except MissingConfigException as e:
        raise ConfigError(_missing_option(e)) from e
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(_one_line(e, overrides)) from e
    if check:
        validate(cfg)
    else:
        cfg.storage.validate()
        cfg.artifacts.validate()
    return cfg


#: The longest study name: it names folders (checkpoints, reports), and file names stop at 255.
MAX_NAME = 120


def validate(cfg: Config) -> None:
    """Cross-setting checks that no single field's type can express."""
    for key in ("n_trials", "max_epochs", "workers", "workers_per_gpu"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}={getattr(cfg, key)} must be at least 1")
    if not 0.0 <= cfg.worker.gpu_memory_fraction <= 1.0:
        raise ConfigError(
            f"worker.gpu_memory_fraction={cfg.worker.gpu_memory_fraction} must be in [0, 1]"
        )
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device={cfg.device!r} is not one of auto, cpu, cuda")
    _validate_metrics(cfg)
    protocol.validate(cfg.protocol, cfg.data.task())
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", cfg.study.name):
        raise ConfigError(f"study.name={cfg.study.name!r}: use letters, digits, '.', '_' and '-'")
    if len(cfg.study.name) > MAX_NAME:
        raise ConfigError(
            f"study.name is {len(cfg.study.name)} characters long; use at most {MAX_NAME} "
            "(it names folders of checkpoints and reports)"
        )
    space.validate(cfg.search_space)
    if samplers.is_grid(cfg.sampler):
        try:
            space.grid_points(cfg.search_space, cfg.data.uses())
        except ConfigError as e:
            raise ConfigError(f"{e} (or pick the discrete space: search_space=grid)") from e
    _validate_iterations(cfg)
    tracking.validate(cfg.tracking)
    cfg.storage.validate()
    cfg.dashboard.validate()
    cfg.artifacts.validate()


def _validate_iterations(cfg: Config) -> None:
    steps = iterations.resolve(cfg.iterations, cfg.search_space, cfg.data.uses())
    if steps and samplers.is_grid(cfg.sampler):
        raise ConfigError("iterations with sampler=grid: the grid is enumerated already; pick one")
    if len(steps) > cfg.n_trials:
        raise ConfigError(
            f"n_trials={cfg.n_trials} is fewer than the {len(steps)} iterations; raise n_trials"
        )


def _validate_metrics(cfg: Config) -> None:
    """The metric and the pruning metric must be the task's; the direction follows the metric."""
    task = cfg.data.task()
    known = TASK_METRICS[task]
    for key in ("metric", "prune_on"):
        value = getattr(cfg.study, key)
        if value not in known:
            raise ConfigError(f"study.{key}={value!r}: {task} records {', '.join(known)}")
    if cfg.study.direction == "auto":
        cfg.study.direction = METRICS[cfg.study.metric]
    if cfg.study.direction not in ("minimize", "maximize"):
        raise ConfigError(
            f"study.direction={cfg.study.direction!r}: use auto, minimize or maximize"
        )
    if METRICS[cfg.study.metric] != cfg.study.direction:
        raise ConfigError(
            f"study.direction={cfg.study.direction} does not fit study.metric={cfg.study.metric}; "
            f"set study.direction={METRICS[cfg.study.metric]} (or auto)"
        )


def _missing_option(e: MissingConfigException) -> str:
    m = re.search(r"Could not (?:find|load) '([\w/]+)/(\w+)'", str(e))
    if not m:
        return _flatten(str(e))
    group, bad = m.group(1), m.group(2)
    return f"{group}={bad} is not an option; choose one of: {', '.join(options(group))}"


def _all_keys(node: Any, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items() if isinstance(node, dict) else []:
        path = f"{prefix}{k}"
        keys.append(path)
        keys += _all_keys(v, path + ".")
    return keys


def _unparsable(text: str, overrides: list[str]) -> str | None:
    """Hydra's parser errors ("LexerNoViableAltException: --n_trials=5") as what to type."""
    if "LexerNoViableAltException" not in text and "mismatched input" not in text:
        return None
    bad = next(
        (o for o in overrides if o in text),
        # "mismatched input '='": an unquoted value holding "=" (a URL's query, say)
        next((o for o in overrides if "=" in o.partition("=")[2]), text.rsplit(": ", 1)[-1]),
    )
    if bad.startswith("-"):
        plain = bad.lstrip("-")
        example = plain if "=" in plain else "n_trials=5"
        return (
            f"{bad!r} is not an option here; settings are key=value without dashes "
            f"({example}); see --help"
        )
    key, eq, value = bad.partition("=")
    shown = f"{key}{eq}{hide_password(value)}"
    return (
        f"cannot read {shown!r}: quote a value holding spaces, quotes or = ({key}='...'), or "
        "leave them out"
    )


def _one_line(e: Exception, overrides: list[str]) -> str:
    unparsable = _unparsable(str(e), overrides)
    if unparsable:
        return unparsable
    cause: BaseException = e
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    text = str(cause)
    key = getattr(cause, "full_key", None)
    if "is not in struct" in text or "Key '" in text and "not in" in text:
        bad = key or text
        try:
            with initialize_config_module(config_module="study.conf", version_base="1.3"):
                known = _all_keys(OmegaConf.to_container(compose("config"), resolve=False))
        except Exception:  # noqa: BLE001 - a suggestion is optional
            known = []
        hint = difflib.get_close_matches(str(bad), known, n=1)
        fix = f"did you mean {hint[0]}?" if hint else "see `study-worker --cfg` for every setting"
        return f"unknown setting {bad!r}; {fix}"
    m = re.search(r"Value '(.*?)' (?:of type '\w+' )?could not be converted to (\w+)", text)
    if m and key:
        kind = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}
        return f"{key}={m.group(1)!r} is invalid; give {kind.get(m.group(2), m.group(2))}"
    m = re.search(r"Invalid value '(.*?)', expected one of \[(.*?)\]", text)
    if m and key:
        return f"{key}={m.group(1)!r} is not one of {m.group(2)}"
    if "Missing mandatory value" in text and key:
        return f"{key} is not set; give {key}=..."
    return _flatten(text) + (f" (setting {key})" if key else "")


def _flatten(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)
    return first
