"""Where the default policy lives (packaged or in a source checkout) and `mailflow init`."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from mailflow.errors import ConfigError

POLICY_DIRS = ("rules", "state_machines", "templates")
"""The policy folders, each at the top level of a checkout and under mailflow/_policy/ in a wheel."""
CONFIG_FILE = "config.yaml"
PACKAGED = "_policy"  # mailflow/_policy/{rules,state_machines,templates,config.yaml} in a wheel


def default_policy_root() -> Path:
    """The folder holding the shipped rules/, state_machines/, templates/, samples/, config.yaml.

    An installed wheel carries them as package data under `mailflow/_policy/` (see setup.py);
    an editable install or a source checkout reads them from the repository's top level.
    Raises ConfigError when neither is present (a broken installation).
    """
    packaged = resources.files("mailflow").joinpath(PACKAGED)
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent
    if all((checkout / name).is_dir() for name in POLICY_DIRS):
        return checkout
    raise ConfigError(
        "no se encontró la política por defecto (rules/, state_machines/, templates/) en el "
        "paquete instalado; reinstale mailflow o indique rules_dir, state_machines_dir y "
        "templates_dir en config.yaml"
    )


def default_policy_dir(name: str) -> Path:
    """One shipped policy folder (`rules`, `state_machines` or `templates`)."""
    if name not in POLICY_DIRS:
        raise ValueError(f"unknown policy folder {name!r}")
    return default_policy_root() / name


def samples_dir() -> Path:
    """The demo's sample requests (samples/*.eml), shipped beside the default policy."""
    return default_policy_root() / "samples"


def init_directory(target: Path) -> list[Path]:
    """Write a commented config.yaml and copies of the shipped policy into `target`.

    Returns the paths written (config file first). Refuses (ConfigError) to overwrite an
    existing config.yaml or policy folder, so an institution's edited policy is never lost.
    """
    root = default_policy_root()
    target.mkdir(parents=True, exist_ok=True)
    existing = [target / n for n in (CONFIG_FILE, *POLICY_DIRS) if (target / n).exists()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise ConfigError(f"{names}: ya existe; mailflow init no sobrescribe una política editada")
    written = [target / CONFIG_FILE]
    shutil.copyfile(root / CONFIG_FILE, target / CONFIG_FILE)
    for name in POLICY_DIRS:
        shutil.copytree(root / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        written.append(target / name)
    return written
