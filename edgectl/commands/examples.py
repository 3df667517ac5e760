"""The example junctions shipped inside the package (``edgectl/examples/*.toml``).

``edgectl demo``, ``edgectl simulate`` and ``edgectl init`` use them; they are package data,
found through :mod:`importlib.resources`, so they work from an installed wheel as well as
from a checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: example name → the cabinet profile its channels and detectors are wired for
EXAMPLES = {"eight_phase": "builtin:nema-cabinet", "two_phase": "builtin:two-phase"}
DEFAULT_EXAMPLE = "eight_phase"


def example_path(name: str = DEFAULT_EXAMPLE) -> Path:
    """The file of example ``name`` (``eight_phase`` or ``eight_phase.toml``).

    Raises :class:`FileNotFoundError` naming the examples there are.
    """
    stem = name.removesuffix(".toml")
    resource = resources.files("edgectl").joinpath("examples", f"{stem}.toml")
    if stem not in EXAMPLES or not resource.is_file():
        raise FileNotFoundError(
            f"no example {name!r} in this installation; known: {', '.join(EXAMPLES)}"
        )
    # an installed package is a directory on disk (the wheel is never imported zipped)
    return Path(str(resource))


def example_text(name: str = DEFAULT_EXAMPLE) -> str:
    return example_path(name).read_text("utf-8")
