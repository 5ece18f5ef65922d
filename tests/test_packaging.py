"""The wheel holds every module, every config group and the report's template, found in the
tree (no hand-kept list), and installs the commands the README names."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_whole_tree(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert "absent from the `packages` configuration" not in built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        *(str(p.relative_to(ROOT)) for d in ("study", "workers") for p in (ROOT / d).rglob("*.py")),
        *(f"study/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")),
        "study/report/report.html.j2",
    }
    assert expected - names == set()
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    commands = zipfile.ZipFile(wheel).read(entry_points).decode()
    for command in ("study", "study-launch", "study-worker", "study-slurm"):
        assert f"\n{command} = " in commands
