"""Small helpers shared by configuration and plan validation."""

from __future__ import annotations

from edgectl.errors import Problem


def err(path: str, message: str) -> Problem:
    return Problem(path, message)


def warn(path: str, message: str) -> Problem:
    return Problem(path, message, severity="warning")


def join(prefix: str, rest: str) -> str:
    if not prefix:
        return rest
    if not rest:
        return prefix
    return f"{prefix}{rest}" if rest.startswith("[") else f"{prefix}.{rest}"


def duplicates(kind: str, section: str, ids: list[int]) -> list[Problem]:
    out: list[Problem] = []
    first: dict[int, int] = {}
    for index, ident in enumerate(ids):
        if ident in first:
            out.append(
                err(
                    f"{section}[{index}].id",
                    f"duplicate {kind} id {ident} (also {section}[{first[ident]}])",
                )
            )
        else:
            first[ident] = index
    return out
