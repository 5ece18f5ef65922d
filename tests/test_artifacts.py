"""Checkpoints and models in an S3-compatible bucket (a real S3 server on loopback: moto)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY, Project

from study.config import load_config
from study.errors import ConfigError

BUCKET = "study-artifacts"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STUDY_S3_BUCKET": BUCKET,
    }
    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)
    yield env
    server.stop()


def _objects(env: dict[str, str]) -> dict[str, bytes]:
    """Every object in the bucket: key -> content."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_s3_without_a_bucket_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDY_S3_BUCKET", raising=False)
    with pytest.raises(ConfigError, match="STUDY_S3_BUCKET"):
        load_config(["artifacts=s3"])


@pytest.mark.slow
def test_a_study_keeps_its_models_in_s3(
    tmp_path: Path, pg_url: str, study_name: str, s3_env: dict[str, str]
) -> None:
    project = Project(
        tmp_path, ["storage=postgres", f"storage.url={pg_url}", "artifacts=s3"], env=s3_env
    )
    result = project.run("study-launch", f"study.name={study_name}", "n_trials=4", *TINY)
    assert result.code == 0, result.err
    assert "TEST accuracy" in result.out, "the best model was read back from the bucket"
    best = project.status(f"study.name={study_name}")["best"]
    key = best["model"].removeprefix(f"s3://{BUCKET}/")
    # Checkpoints of finished trials are gone; of the final models only the best one stays,
    # beside each trial's learning curve (a small CSV).
    objects = _objects(s3_env)
    curves = [k for k, body in objects.items() if body.startswith(b"epoch,")]
    assert len(curves) == 4
    assert sorted(set(objects) - set(curves)) == [key]
    assert not (tmp_path / ".study" / "artifacts").exists(), "nothing went to the local disk"
