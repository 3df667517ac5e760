"""What the checker reports: one :class:`Finding` per violation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation found in a timeline."""

    t: float
    kind: str
    channels: tuple[int, ...] = ()
    phases: tuple[int, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        who = []
        if self.channels:
            who.append("channels " + ",".join(map(str, self.channels)))
        if self.phases:
            who.append("phases " + ",".join(map(str, self.phases)))
        return f"t={self.t:.1f}s {self.kind} [{'; '.join(who)}]: {self.detail}"
