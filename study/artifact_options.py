"""The artifacts group's settings (``conf/artifacts/``): which store to build and where, checked
before anything is created. What the config and the commands that only read a study need, without
importing Optuna's artifact stores (boto3); :mod:`study.artifacts` builds the stores from them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from study.errors import ConfigError


class ArtifactOptions(Protocol):
    """An ``artifacts=`` option: which store to build, how to check it, how to name a file."""

    _target_: str

    def validate(self) -> None:
        """Refuse what cannot work, before anything is created."""

    def describe(self, artifact_id: str) -> str:
        """Where an artifact lives, as a person would look for it."""
        ...


@dataclass
class FileSystemArtifacts:
    _target_: str = "study.artifacts.AtomicFileSystemStore"
    #: A directory every worker of the study sees (a shared file system across machines).
    base_path: str = ".study/artifacts"

    def validate(self) -> None:
        pass

    def describe(self, artifact_id: str) -> str:
        return str(Path(self.base_path) / artifact_id)


@dataclass
class S3Artifacts:
    _target_: str = "optuna.artifacts.Boto3ArtifactStore"
    #: The endpoint and credentials come from boto3's usual settings (AWS_ENDPOINT_URL, ...).
    bucket_name: str = ""

    def validate(self) -> None:
        if not self.bucket_name:
            raise ConfigError(
                "artifacts.bucket_name is empty; export STUDY_S3_BUCKET=<bucket> "
                "(and AWS_ENDPOINT_URL for a non-AWS server) or pass artifacts.bucket_name=..."
            )

    def describe(self, artifact_id: str) -> str:
        return f"s3://{self.bucket_name}/{artifact_id}"


def check_writable(cfg: ArtifactOptions) -> None:
    """Refuse, before a study exists, a file-system store the workers could not write to (a
    read-only mount, a path through a file, no permission): found at the first checkpoint, it
    would fail every trial instead."""
    base = getattr(cfg, "base_path", None)
    if base is None:  # a bucket: its settings are checked by validate(), access on first use
        return
    path = Path(base).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ConfigError(
            f"artifacts.base_path={base} is not writable ({e.strerror or e}); point it at a "
            "directory every worker can write, e.g. artifacts.base_path=/shared/artifacts"
        ) from e
