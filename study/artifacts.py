"""Artifacts (``conf/artifacts/``): where checkpoints and final models live.

Any Optuna artifact store every worker can reach: a directory (``filesystem``, the default)
or an S3-compatible bucket (``s3``, Optuna's ``Boto3ArtifactStore``), built from the settings in
:mod:`study.artifact_options`.

Checkpoints: a trial killed or stopped mid-way resumes from its last completed epoch.

One checkpoint per trial *lineage* (a trial and the retries that replace it share it), replaced
atomically after every epoch in an Optuna artifact store that every worker can reach. It holds
everything needed to continue: model, optimizer, epoch, RNG states, the best epoch so far and
the learning curve. Loading uses ``torch.load(weights_only=True)``.

Finished trials leave no checkpoint behind; of the final models only the current best trial's
(the best ``protocol.ensemble`` trials', or greedy selection's ``protocol.pool``) are kept
(:class:`KeepBestModels`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import optuna
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from optuna.artifacts import download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from study.artifact_options import ArtifactOptions
from study.errors import ConfigError
from study.storage import best_trials

if TYPE_CHECKING:  # torch is imported where a model is read or written: `study status` needs none
    import torch

log = logging.getLogger(__name__)


class ArtifactStore(Protocol):
    """What every artifact store offers (Optuna's stores and :class:`AtomicFileSystemStore`):
    read, write and remove one artifact by id; a missing one raises ``ArtifactNotFound``."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...

    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...

    def remove(self, artifact_id: str) -> None: ...


def build_store(cfg: ArtifactOptions) -> ArtifactStore:
    """Instantiate the configured store."""
    try:
        store: ArtifactStore = instantiate(cfg)
    except InstantiationException as e:
        if isinstance(e.__cause__, ImportError) or "boto3" in str(e):
            raise ConfigError("artifacts=s3 needs boto3: pip install 'caviar-study[s3]'") from e
        raise
    return store


def read_model(cfg: ArtifactOptions, artifact_id: str) -> dict[str, Any]:
    """A saved model (``state_dict``, ``arch``, ``dims``) from the store, loaded with
    ``weights_only=True``; raises what the store or torch raised, for the caller to explain."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        download_artifact(
            artifact_store=build_store(cfg), file_path=str(path), artifact_id=artifact_id
        )
        saved: dict[str, Any] = torch.load(path, weights_only=True, map_location="cpu")
    return saved


def write_model(
    store: ArtifactStore,
    study_or_trial: optuna.Study | optuna.Trial,
    state_dict: dict[str, torch.Tensor],
    arch: dict[str, Any],
    dims: dict[str, int],
) -> str:
    """Upload a model (weights, architecture, data sizes) as :func:`read_model` reads it back;
    returns the artifact id."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save({"state_dict": state_dict, "arch": arch, "dims": dims}, path)
        artifact_id: str = upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study_or_trial
        )
    return artifact_id


#: The file name of each trial's learning curve (optuna-dashboard shows a CSV as a table).
CURVE_FILE = "learning_curve.csv"


def write_curve(store: ArtifactStore, trial: optuna.Trial, curve: list[dict[str, float]]) -> str:
    """Upload the trial's learning curve as a CSV artifact, one row per epoch (step with folds):
    what optuna-dashboard shows as a table in the trial's artifacts, where the ``curve`` user
    attribute is one line of JSON. Returns the artifact id."""
    import csv

    columns = list(dict.fromkeys(k for row in curve for k in row))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CURVE_FILE
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            for row in curve:
                writer.writerow({k: _short(v) for k, v in row.items()})
        artifact_id: str = upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=trial
        )
    return artifact_id


def _short(value: float) -> str | float:
    """Whole numbers as they are, others to 6 significant digits (a table, not a dump)."""
    return value if float(value).is_integer() else f"{value:.6g}"


class AtomicFileSystemStore:
    """A directory as an artifact store (the layout of Optuna's ``FileSystemArtifactStore``:
    ``<base_path>/<artifact id>``), whose writes replace a file atomically.

    A worker killed mid-write must leave the previous checkpoint intact, never half a file.
    """

    def __init__(self, base_path: str | Path) -> None:
        self.base_path = Path(base_path)
        self.base_path.mkdir(parents=True, exist_ok=True)

    def _path(self, artifact_id: str) -> Path:
        path = self.base_path / artifact_id
        root = os.path.abspath(self.base_path)
        if os.path.isabs(artifact_id) or os.path.commonpath([root, os.path.abspath(path)]) != root:
            raise ValueError(f"invalid artifact id: {artifact_id}")  # it would leave the store
        return path

    def open_reader(self, artifact_id: str) -> BinaryIO:
        try:
            return open(self._path(artifact_id), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError as e:
            raise ArtifactNotFound(artifact_id) from e

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        target = self._path(artifact_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(content_body, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, artifact_id: str) -> None:
        try:
            self._path(artifact_id).unlink()
        except FileNotFoundError as e:
            raise ArtifactNotFound(artifact_id) from e


@dataclass
class TrainingState:
    """Where a trial's training stands after an epoch; what a checkpoint stores."""

    next_epoch: int = 0
    best_value: float | None = None
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)


def lineage(trial: optuna.Trial) -> int:
    """The number of the first trial of a retry chain (the trial itself when not a retry)."""
    # A Trial has no public system attributes (where the retry records its origin); the stored
    # copy, found through the storage's public lookups, has them.
    storage = trial.storage
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    frozen = storage.get_trial(
        storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    )
    root = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    return trial.number if root is None else root


class Checkpointer:
    """Saves and restores one trial lineage's checkpoint in the artifact store."""

    def __init__(self, store: ArtifactStore, study: str, root: int) -> None:
        self.store = store
        self.artifact_id = f"checkpoints/{study}/trial-{root}.pt"

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        shuffle: torch.Generator,
        state: TrainingState,
    ) -> None:
        import torch

        payload: dict[str, Any] = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle_rng": shuffle.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "next_epoch": state.next_epoch,
            "best_value": state.best_value,
            "best_epoch": state.best_epoch,
            "best_state": state.best_state,
            "curve": state.curve,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        buffer.seek(0)
        self.store.write(self.artifact_id, buffer)

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        shuffle: torch.Generator,
        device: torch.device,
    ) -> TrainingState | None:
        """Load the checkpoint into model, optimizer and RNGs; None when there is none.

        An unreadable checkpoint is reported in one line and the trial starts from epoch 0:
        its parameters are kept and nothing else is lost.
        """
        import torch

        try:
            with self.store.open_reader(self.artifact_id) as f:
                payload = torch.load(io.BytesIO(f.read()), weights_only=True, map_location=device)
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
        except ArtifactNotFound:
            return None
        except Exception as e:  # noqa: BLE001 - any unreadable file means the same thing
            log.warning("checkpoint %s is unreadable (%s); starting over", self.artifact_id, e)
            return None
        shuffle.set_state(payload["shuffle_rng"].cpu())
        torch.set_rng_state(payload["torch_rng"].cpu())
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in payload["cuda_rng"]])
        return TrainingState(
            next_epoch=payload["next_epoch"],
            best_value=payload["best_value"],
            best_epoch=payload["best_epoch"],
            best_state=payload["best_state"],
            curve=payload["curve"],
        )

    def remove(self) -> None:
        with contextlib.suppress(ArtifactNotFound):
            self.store.remove(self.artifact_id)


class KeepBestModels:
    """After each completed trial, remove every final model but the ``keep`` best trials' (one,
    ``protocol.ensemble``'s members, or greedy selection's pool: :func:`study.protocol.pool_size`).

    The models kept are listed in the study's ``models`` user attribute (trial number to
    artifact id); the study's lock serialises workers.
    """

    def __init__(
        self,
        store: ArtifactStore,
        lock: Callable[[], contextlib.AbstractContextManager[Any]],
        keep: int = 1,
    ) -> None:
        self.store = store
        self.lock = lock
        self.keep = keep

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        artifact = trial.user_attrs.get("model_artifact")
        if trial.state != TrialState.COMPLETE or artifact is None:
            return
        with self.lock():
            # A warm start's copies have no model here and are never among these.
            best = {t.number for t in best_trials(study, self.keep)}
            models: dict[str, str] = dict(study.user_attrs.get("models", {}))
            models[str(trial.number)] = artifact
            for number, artifact_id in list(models.items()):
                if int(number) not in best:
                    with contextlib.suppress(ArtifactNotFound):
                        self.store.remove(artifact_id)
                    del models[number]
            study.set_user_attr("models", models)
