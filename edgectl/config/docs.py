"""Generate ``docs/configuration.md`` from the models' field descriptions.

``python -m edgectl.config.docs > docs/configuration.md``; a test keeps the file current.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from edgectl.config.model import DaemonConfig

HEADER = """# Configuration reference

One TOML file describes the junction and the daemon (see `edgectl/examples/eight_phase.toml`).
Every setting can be overridden by an environment variable `EDGECTL_<SECTION>__<KEY>`
(e.g. `EDGECTL_MQTT__URL=mqtts://broker:8883`). `edgectl check-config FILE` lists every
problem with its path; the daemon refuses to start (and SIGHUP refuses to reload) while any
remains. Times are seconds unless a name says otherwise.

This file is generated from the models' field descriptions:
`python -m edgectl.config.docs > docs/configuration.md`.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"table {_type_name(args[0])} → {_type_name(args[1])}"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined:
        return "required" if info.default_factory is None else "(empty)"
    value = info.default
    if isinstance(value, BaseModel):
        return "(defaults)"
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if value in ((), None, ""):
        return "—"
    return f"`{value}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for info in model.model_fields.values():
            stack = [info.annotation]
            while stack:
                ann = stack.pop()
                if isinstance(ann, type) and issubclass(ann, BaseModel):
                    visit(ann)
                stack.extend(typing.get_args(ann))

    visit(root)
    return seen


def render() -> str:
    parts = [HEADER]
    for model in _models(DaemonConfig):
        parts.append(f"\n## {model.__name__}\n")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc:
            parts.append(doc[0] + "\n")
        parts.append("\n| key | type | default | description |\n|---|---|---|---|")
        for name, info in model.model_fields.items():
            desc = (info.description or "").replace("|", "\\|")
            # pydantic keeps ge and le as separate metadata objects: merge them
            lo = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
            hi = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
            bounds = ""
            if lo is not None or hi is not None:
                bounds = f" ({lo if lo is not None else ''}..{hi if hi is not None else ''})"
            parts.append(
                f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {desc}{bounds} |"
            )
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
