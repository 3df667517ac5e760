"""constraints.txt is what the tests run with: generated from this venv, and inside the bounds
pyproject.toml declares."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"


def _freezer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "freeze_constraints", ROOT / "scripts" / "freeze_constraints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pinned() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version
    return out


def test_constraints_are_the_tested_venv() -> None:
    """Fails after an upgrade of the venv until constraints.txt is regenerated (the command
    is in its header), so a cabinet never installs versions the tests did not run."""
    freezer = _freezer()
    assert CONSTRAINTS.read_text() == freezer.render(freezer.closure())


def test_constraints_fit_the_declared_bounds() -> None:
    versions = pinned()
    for line in metadata.distribution("edgectl").requires or []:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name == "edgectl":
            continue
        assert name in versions, f"{name} is required but not pinned"
        assert req.specifier.contains(versions[name], prereleases=True), (req, versions[name])


# distribution → the module it is imported as
MODULES = {"paho-mqtt": "paho", "prometheus-client": "prometheus_client"}


def test_every_runtime_dependency_is_imported() -> None:
    """Nothing declared and unused (pydantic-settings was: config/loader.py does the
    EDGECTL_* overrides; pyserial comes with pymodbus[serial])."""
    runtime = {
        canonicalize_name(req.name)
        for req in map(Requirement, metadata.distribution("edgectl").requires or [])
        if req.marker is None
    }
    source = "\n".join(
        p.read_text() for pkg in ("edgectl", "firmware_sim") for p in (ROOT / pkg).rglob("*.py")
    )
    for name in sorted(runtime):
        module = MODULES.get(name, name.replace("-", "_"))
        assert f"import {module}" in source or f"from {module}" in source, name
    assert "pydantic-settings" not in runtime
