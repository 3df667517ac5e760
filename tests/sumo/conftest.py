"""Fixtures of the SUMO bench tests: scenarios built once per session into a temp dir."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _libsumo_missing() -> str | None:
    if importlib.util.find_spec("libsumo") is None or importlib.util.find_spec("sumo") is None:
        return "the sumo extra is not installed (pip install 'edgectl[sumo]')"
    return None


SKIP_REASON = _libsumo_missing()
needs_sumo = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def load_builder() -> ModuleType:
    """The project's scenario builder, :mod:`bench.scenarios.build`."""
    from bench.scenarios import build

    return build


@pytest.fixture(scope="session")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``isolated_light``, ``arterial``, ``tee`` and ``narrow`` built by the project's script."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    builder = load_builder()
    root = tmp_path_factory.mktemp("scenarios")
    return {
        name: builder.build(name, root) for name in ("isolated_light", "arterial", "tee", "narrow")
    }
