"""Print the constraints file of the tested venv: every distribution edgectl and its extras
pull in, at the version installed (``pip freeze`` restricted to edgectl's dependency closure).

    .venv/bin/python scripts/freeze_constraints.py > constraints.txt

``scripts/setup.sh`` installs with ``-c constraints.txt``, so a cabinet (and CI) gets the
versions the tests ran; ``tests/package/test_wheel.py`` checks the file against the venv.
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "edgectl"
EXTRAS = ("dev", "demo", "report", "sumo")


def closure(project: str = PROJECT, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """canonical name → installed version, for everything ``project[extras]`` requires."""
    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        dist = metadata.distribution(name)
        key = canonicalize_name(name)
        if key != PROJECT:
            found[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return found


def render(found: dict[str, str]) -> str:
    head = (
        "# The versions the tests ran: edgectl's dependencies and those of its extras\n"
        f"# ({', '.join(EXTRAS)}). Generated from the tested venv by\n"
        "#   .venv/bin/python scripts/freeze_constraints.py > constraints.txt\n"
        "# and used by scripts/setup.sh (pip install -c constraints.txt ...).\n"
    )
    return head + "".join(f"{name}=={version}\n" for name, version in sorted(found.items()))


if __name__ == "__main__":
    sys.stdout.write(render(closure()))
