"""Cluster jobs through Hydra's submitit launcher: the local executor proves the SLURM path."""

from __future__ import annotations

import re

import psycopg2
import pytest
from conftest import TINY, Project
from hydra import compose, initialize_config_module


def test_slurm_launcher_config_composes_with_gpus_per_job() -> None:
    with initialize_config_module(config_module="study.conf", version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node >= 1 and launcher.signal_delay_s > 0


@pytest.mark.slow
def test_cluster_jobs_share_one_study(project: Project, pg_url: str, study_name: str) -> None:
    result = project.run(
        "study-slurm -m",
        "hydra/launcher=submitit_local",
        "job=range(2)",
        f"study.name={study_name}",
        "n_trials=6",
        "workers=1",
        *TINY,
    )
    assert result.code == 0, result.out + result.err
    assert re.search(r"#1 : .*\bjob=1\b", result.out), "two jobs were submitted"
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT t.state, a.value_json FROM trials t JOIN studies s USING (study_id)"
            " JOIN trial_user_attributes a USING (trial_id)"
            " WHERE s.study_name = %s AND a.key = 'worker'",
            (study_name,),
        )
        rows = cur.fetchall()
    assert len(rows) == 6 and {s for s, _ in rows} <= {"COMPLETE", "PRUNED"}
    assert len({w for _, w in rows}) == 2, "both jobs' workers took trials"
