"""Find SUMO (binaries, tools, libsumo) without any manual environment setup."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType


class SumoUnavailable(ImportError):
    """The ``sumo`` extra (eclipse-sumo, libsumo) is not installed."""


def sumo_home() -> Path:
    """SUMO_HOME: the environment's if set, else the eclipse-sumo wheel's."""
    env = os.environ.get("SUMO_HOME")
    if env and Path(env, "bin").is_dir():
        return Path(env)
    sumo = _import("sumo", "SUMO")
    return Path(str(sumo.SUMO_HOME))


def binary(name: str) -> str:
    """Path of a SUMO binary (``sumo``, ``netconvert``...)."""
    return str(sumo_home() / "bin" / name)


def load_libsumo() -> ModuleType:
    """Import libsumo with SUMO_HOME set (it needs the data files for vehicle types)."""
    os.environ.setdefault("SUMO_HOME", str(sumo_home()))
    return _import("libsumo", "libsumo")


def _import(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SumoUnavailable(
            f"{what} is not installed: pip install 'edgectl[sumo]' (eclipse-sumo, libsumo)"
        ) from exc
