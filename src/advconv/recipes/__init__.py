"""The recipes that ship inside the package, by name: ``advconv train --config fast`` from any folder.

A recipe is a YAML config in this folder; its name is the file's stem. ``--config`` and ``base:``
take a name or a path: a value ending in ``.yaml``/``.yml`` or holding a ``/`` is a path, anything
else a recipe's name. What each reached in a finished run is recorded in ``measured.yaml``, beside
the recipes, so that ``advconv recipes`` can say it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError

FOLDER = Path(__file__).resolve().parent
RENAMED = {"assignment9": "default", "best": "accurate", "best_long": "accurate_long"}  # CHANGELOG.md


def names() -> list[str]:
    """The shipped recipes' names, the default first."""
    found = sorted(p.stem for p in FOLDER.glob("*.yaml") if p.stem != "measured")
    return ["default"] + [n for n in found if n != "default"]


def is_name(value: str | Path) -> bool:
    """Whether ``value`` names a recipe rather than a file: no folder, no YAML suffix."""
    text = str(value)
    return "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml"))


def path_of(name: str) -> Path:
    """The file of the recipe ``name``, or one line naming the recipes there are."""
    if name in names():
        return FOLDER / f"{name}.yaml"
    if name in RENAMED:
        raise ConfigError(f"recipe {name!r} is now {RENAMED[name]!r} (CHANGELOG.md)")
    raise ConfigError(f"no recipe named {name!r}; the shipped recipes are {', '.join(names())} "
                      "(`advconv recipes`), or give a .yaml path")


@dataclass(frozen=True)
class Measured:
    """What a recipe reached at the last epoch of one finished run (seed 0)."""

    accuracy: float     # %
    split: str          # "test", or "val" for a recipe measured on a validation split only
    minutes: float      # the run's wall clock, evaluations included
    machine: str


def measured() -> dict[str, Measured]:
    return {name: Measured(**fields) for name, fields in yaml.safe_load((FOLDER / "measured.yaml").read_text()).items()}

