"""Benchmark 8 (issue 17): the fixed overhead of a small study, as a user meets it.

``study-launch n_trials=4 max_epochs=3`` (the default study: JapaneseVowels, 2 workers, the
embedded PostgreSQL) runs in a new directory, then again in the same directory with another
study name (the server's files exist). Each launcher line is timed as it arrives, which splits
the wall time into phases:

- *start-up*: the command starts -> the study is created (settings, data, the embedded server);
- *join*: the study exists -> the first trial starts (worker processes import and connect);
- *trials*: the first trial starts -> the last one ends;
- *wind-down*: the last trial ends -> the command exits (drain, the test evaluation, the
  classical baselines, the final lines).

Training is the epochs' own seconds, read back from the study (each trial's learning curve),
divided by the workers; the fixed overhead is the wall time minus that. Beside them, the
commands a person types while waiting: ``study --help`` and ``study status``. Usage:

    python bench/overhead.py [--repeats 2] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402

BIN = Path(sys.executable).parent
WORKERS = 2
ARGS = ["n_trials=4", "max_epochs=3", f"workers={WORKERS}"]


def _timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def launch(folder: Path, name: str) -> dict[str, float]:
    """One launch, its phases in seconds."""
    marks: dict[str, float] = {}
    started = time.perf_counter()
    argv = [str(BIN / "study-launch"), *ARGS, f"study.name={name}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with subprocess.Popen(
        argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            now = time.perf_counter() - started
            lines.append(line)
            if "created study" in line:
                marks.setdefault("created", now)
            if " start at epoch " in line:
                marks.setdefault("first_start", now)
            if " complete: " in line or " pruned after " in line:
                marks["last_end"] = now
        code = proc.wait()
    marks["exit"] = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"study-launch exited {code}:\n{''.join(lines[-30:])}")
    marks["training"] = _training_seconds(folder, name) / WORKERS
    return marks


def _training_seconds(folder: Path, name: str) -> float:
    """The epochs' own seconds, summed over the study's trials (from their learning curves)."""
    code = (
        "import sys; from study.config import load_config; "
        "from study.storage import open_storage, load_existing; "
        f"cfg = load_config(['study.name={name}']); "
        "study = load_existing(open_storage(cfg.storage, create=False), cfg.study.name); "
        "print(sum(r['seconds'] for t in study.trials for r in t.user_attrs.get('curve') or []))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {"new directory": [], "second study": []}
    helps, statuses = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
            folder = Path(tmp)
            helps.append(_timed([str(BIN / "study"), "--help"], folder))
            runs["new directory"].append(launch(folder, f"first-{uuid.uuid4().hex[:6]}"))
            runs["second study"].append(launch(folder, f"second-{uuid.uuid4().hex[:6]}"))
            statuses.append(_timed([str(BIN / "study"), "status"], folder))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    header = (
        "| launch | wall | start-up | join | trials | wind-down | training (epochs / workers) "
        "| fixed overhead |\n|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for label, rs in runs.items():
        wall, training = med(rs, "exit"), med(rs, "training")
        phases = [
            med(rs, "created"),
            med([{"v": r["first_start"] - r["created"]} for r in rs], "v"),
            med([{"v": r["last_end"] - r["first_start"]} for r in rs], "v"),
            med([{"v": r["exit"] - r["last_end"]} for r in rs], "v"),
        ]
        cells = " | ".join(f"{p:.1f} s" for p in phases)
        rows.append(
            f"| {label} | {wall:.1f} s | {cells} | {training:.1f} s | **{wall - training:.1f} s** |"
        )
    table = "\n".join([header, *rows])
    table += (
        f"\n\n`study --help`: {statistics.median(helps):.2f} s; `study status` (the embedded "
        f"server started and stopped): {statistics.median(statuses):.2f} s."
    )
    print(table)
    if args.write:
        command = f"python bench/overhead.py --repeats {args.repeats} --write"
        when = time.strftime("%Y-%m-%d")
        import torch

        body = (
            f"`{command}` ({when}, torch {torch.__version__}; `study-launch {' '.join(ARGS)}`, "
            f"medians of {args.repeats}):\n\n{table}"
        )
        write_block("overhead", body)


if __name__ == "__main__":
    main()
