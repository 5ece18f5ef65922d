"""Artifacts (``conf/artifacts/``): where checkpoints and final models live.

Any Optuna artifact store every worker can reach: a directory (``filesystem``, the default)
or an S3-compatible bucket (``s3``, Optuna's ``Boto3ArtifactStore``).

Checkpoints: a trial killed or stopped mid-way resumes from its last completed epoch.

One checkpoint per trial *lineage* (a trial and the retries that replace it share it), replaced
atomically after every epoch in an Optuna artifact store that every worker can reach. It holds
everything needed to continue: model, optimizer, epoch, RNG states, the best epoch so far and
the learning curve. Loading uses ``torch.load(weights_only=True)``.

Finished trials leave no checkpoint behind; of the final models only the current best trial's
is kept (:class:`KeepBestModel`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import optuna
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.artifacts._protocol import ArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from study.errors import ConfigError
from study.storage import best_trial

log = logging.getLogger(__name__)


@dataclass
class FileSystemArtifacts:
    _target_: str = "study.artifacts.AtomicFileSystemArtifactStore"
    #: A directory every worker of the study sees (a shared file system across machines).
    base_path: str = ".study/artifacts"


@dataclass
class S3Artifacts:
    _target_: str = "optuna.artifacts.Boto3ArtifactStore"
    #: The endpoint and credentials come from boto3's usual settings (AWS_ENDPOINT_URL, ...).
    bucket_name: str = ""


def validate(cfg: Any) -> None:
    if isinstance(cfg, S3Artifacts) and not cfg.bucket_name:
        raise ConfigError(
            "artifacts.bucket_name is empty; export STUDY_S3_BUCKET=<bucket> "
            "(and AWS_ENDPOINT_URL for a non-AWS server) or pass artifacts.bucket_name=..."
        )


def build_store(cfg: Any) -> ArtifactStore:
    """Instantiate the configured store (creating a local directory when needed)."""
    if isinstance(cfg, FileSystemArtifacts):
        Path(cfg.base_path).mkdir(parents=True, exist_ok=True)
    try:
        store: ArtifactStore = instantiate(cfg)
    except InstantiationException as e:
        if isinstance(e.__cause__, ImportError) or "boto3" in str(e):
            raise ConfigError("artifacts=s3 needs boto3: pip install 'caviar-study[s3]'") from e
        raise
    return store


def describe(cfg: Any, artifact_id: str) -> str:
    """Where an artifact lives, as a person would look for it."""
    if isinstance(cfg, S3Artifacts):
        return f"s3://{cfg.bucket_name}/{artifact_id}"
    return str(Path(cfg.base_path) / artifact_id)


def read_model(cfg: Any, artifact_id: str) -> dict[str, Any]:
    """A saved model (``state_dict``, ``arch``, ``dims``) from the store, loaded with
    ``weights_only=True``; raises what the store or torch raised, for the caller to explain."""
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
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save({"state_dict": state_dict, "arch": arch, "dims": dims}, path)
        artifact_id: str = upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study_or_trial
        )
    return artifact_id


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system store, but a write replaces the file atomically.

    A worker killed mid-write must leave the previous checkpoint intact, never half a file.
    """

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        target = self._get_filepath(artifact_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content_body.read())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


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
    # Trial has no public system_attrs; the frozen copy does.
    frozen = trial.storage.get_trial(trial._trial_id)
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


class KeepBestModel:
    """After each completed trial, remove every final model but the best trial's.

    The models kept are listed in the study's ``models`` user attribute (trial number to
    artifact id), so no trial needs to be loaded; a study lock serialises workers.
    """

    def __init__(self, store: ArtifactStore, lock: Any) -> None:
        self.store = store
        self.lock = lock

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        artifact = trial.user_attrs.get("model_artifact")
        if trial.state != TrialState.COMPLETE or artifact is None:
            return
        with self.lock(study):
            best = best_trial(study).number  # a warm start's copies have no model here
            models: dict[str, str] = dict(study.user_attrs.get("models", {}))
            models[str(trial.number)] = artifact
            for number, artifact_id in list(models.items()):
                if int(number) != best:
                    with contextlib.suppress(ArtifactNotFound):
                        self.store.remove(artifact_id)
                    del models[number]
            study.set_user_attr("models", models)
