"""Which packages the wheel holds, found in the tree (everything else is in pyproject.toml).

``conf/`` is installed as ``study.conf`` (Hydra reads it as ``pkg://study.conf``), each config
group a package of its own, so a new group or module needs no entry anywhere.
"""

from setuptools import find_namespace_packages, find_packages, setup

setup(
    packages=[
        *find_packages(include=["study", "study.*", "workers"]),
        "study.conf",
        *(f"study.conf.{group}" for group in find_namespace_packages("conf")),
    ],
    package_dir={"study.conf": "conf"},
)
