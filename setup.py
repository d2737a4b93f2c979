"""Build hook: the wheel carries the top-level policy folders as mailflow/_policy/ package data."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

POLICY = ("rules", "state_machines", "templates", "samples", "config.yaml")


class BuildPyWithPolicy(build_py):
    """Copy rules/, state_machines/, templates/, samples/ and config.yaml into mailflow/_policy/.

    Editable installs skip the copy: mailflow.policy_files reads the checkout's folders.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        here = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "mailflow" / "_policy"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name in POLICY:
            src = here / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(src, dest / name)


setup(cmdclass={"build_py": BuildPyWithPolicy})
