"""Channel timelines: conflicts, interval order and minimum intervals, frame by frame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgectl.cabinet.channels import ChannelState
from edgectl.testing.checker.findings import Finding

__all__ = ["ChannelChecker", "check_timeline"]

_S = ChannelState
_NON_RED = frozenset({_S.G, _S.Y, _S.W, _S.FDW})
_FLASHING = frozenset({_S.FR, _S.FY, _S.OFF})
_GO = frozenset({_S.G, _S.W})


@dataclass(slots=True)
class _Channel:
    state: ChannelState
    since: float
    need: float = 0.0  # minimum of the running interval (yellow / ped clear) when it began
    red_from: float | None = None  # end of the last yellow
    red_need: float = 0.0
    arrow: bool = False  # a flashing yellow arrow showing a permissive movement
    arrow_end: bool = False  # the steady yellow that ends one


class ChannelChecker:
    """Checks a timeline of channel frames, fed in time order (one call per frame or change).

    ``conflicts`` are channel pairs; the minimum maps are per channel (a missing channel has
    no minimum). A frame may be partial: channels it does not mention keep their state; a
    channel never seen is dark (OFF). ``tolerance`` absorbs measurement jitter (s).
    """

    def __init__(
        self,
        conflicts: Iterable[tuple[int, int]],
        min_yellow: Mapping[int, float],
        min_red_clear: Mapping[int, float],
        min_ped_clear: Mapping[int, float] | None = None,
        *,
        tolerance: float = 1e-3,
        permissive: Mapping[int, Iterable[int]] | None = None,
    ) -> None:
        # flashing yellow arrows: channel → the channels whose traffic it yields to
        self._yields = {ch: frozenset(to) for ch, to in (permissive or {}).items()}
        self._partners: dict[int, set[int]] = {}
        for a, b in conflicts:
            if a == b:
                continue
            self._partners.setdefault(a, set()).add(b)
            self._partners.setdefault(b, set()).add(a)
        self._pairs = sorted({(min(a, b), max(a, b)) for a, b in conflicts if a != b})
        self._tol = tolerance
        self._channels: dict[int, _Channel] = {}
        self.set_minimums(min_yellow, min_red_clear, min_ped_clear)

    def set_minimums(
        self,
        min_yellow: Mapping[int, float],
        min_red_clear: Mapping[int, float],
        min_ped_clear: Mapping[int, float] | None = None,
    ) -> None:
        """New minimums (a plan change); intervals already running keep the smaller one."""
        self._yellow = dict(min_yellow)
        self._red = dict(min_red_clear)
        self._ped = dict(min_ped_clear or {})

    def state(self, channel: int) -> ChannelState:
        track = self._channels.get(channel)
        return _S.OFF if track is None else track.state

    def feed(self, t: float, frame: Mapping[int, ChannelState]) -> list[Finding]:
        """Apply the states in ``frame`` at time ``t`` and check the result."""
        findings: list[Finding] = []
        after = {ch: tr.state for ch, tr in self._channels.items()}
        after.update((ch, _S(st)) for ch, st in frame.items())
        # FY on an arrow channel outside the controller's own flash: a permissive movement
        flash = all(st in _FLASHING for st in after.values())
        arrows = frozenset(ch for ch in self._yields if not flash and after.get(ch) == _S.FY)
        # ... and the steady yellows ending one (no conflict with the phase yielded to)
        ending = set()
        for ch in self._yields:
            tr = self._channels.get(ch)
            if (
                tr is not None
                and after.get(ch) == _S.Y
                and ((tr.state == _S.FY and tr.arrow) or (tr.state == _S.Y and tr.arrow_end))
            ):
                ending.add(ch)
        # red first: a yellow ending in the frame a conflicting green starts is a red clearance
        # of zero, whatever the channel numbers
        for ch in sorted(frame, key=lambda c: (frame[c] in _NON_RED or c in arrows, c)):
            new = _S(frame[ch])
            track = self._channels.get(ch)
            if track is None:
                self._channels[ch] = _Channel(new, t, self._need_for(ch, new))
                self._channels[ch].arrow = ch in arrows
                continue
            if new == track.state:
                track.arrow = ch in arrows
                continue
            findings += self._change(t, ch, track, new, arrow=ch in arrows)
        yielding = arrows | ending
        for a, b in self._pairs:
            if (a in yielding and b in self._yields[a]) or (b in yielding and a in self._yields[b]):
                continue
            sa, sb = self.state(a), self.state(b)
            on_a = sa in _NON_RED or (a in arrows and b not in self._yields[a])
            on_b = sb in _NON_RED or (b in arrows and a not in self._yields[b])
            if on_a and on_b:
                findings.append(
                    Finding(t, "conflict", (a, b), detail=f"{a}={sa.name} with {b}={sb.name}")
                )
        for ch in sorted(arrows):
            if all(self.state(o) != _S.G for o in self._yields[ch]):
                findings.append(
                    Finding(
                        t,
                        "permissive_without_opposing_green",
                        (ch,),
                        detail=f"{ch} flashes a yellow arrow with nothing green to yield to",
                    )
                )
        return findings

    def _need_for(self, ch: int, state: ChannelState) -> float:
        if state == _S.Y:
            return self._yellow.get(ch, 0.0)
        if state == _S.FDW:
            return self._ped.get(ch, 0.0)
        return 0.0

    def _change(
        self, t: float, ch: int, track: _Channel, new: ChannelState, *, arrow: bool = False
    ) -> list[Finding]:
        old = track.state
        out: list[Finding] = []
        if track.arrow and new not in (_S.Y, _S.FR, _S.OFF):
            out.append(Finding(t, "permissive_not_to_yellow", (ch,), detail=f"FY→{new.name}"))
        if arrow:
            if old == _S.Y:
                out.append(Finding(t, "yellow_to_permissive", (ch,), detail="Y→FY"))
            if old in _FLASHING:
                out.append(Finding(t, "flash_exit_not_red", (ch,), detail=f"{old.name}→FY"))
            if old not in _GO:
                out += self._red_clearance(t, ch, new, skip=self._yields[ch])
        if new not in _FLASHING:
            if old in _FLASHING and new in _NON_RED and not track.arrow:
                out.append(Finding(t, "flash_exit_not_red", (ch,), detail=f"{old.name}→{new.name}"))
            if old == _S.G and new != _S.Y:
                out.append(Finding(t, "green_not_to_yellow", (ch,), detail=f"G→{new.name}"))
            if old == _S.Y and new == _S.G:
                out.append(Finding(t, "yellow_to_green", (ch,), detail="Y→G"))
            if old == _S.Y and new != _S.G:
                out += self._short(
                    t, ch, track, kind="short_yellow", interval="yellow", minimums=self._yellow
                )
            if old == _S.W and new != _S.FDW:
                out.append(Finding(t, "walk_not_to_ped_clear", (ch,), detail=f"W→{new.name}"))
            if old == _S.FDW:
                out += self._short(
                    t,
                    ch,
                    track,
                    kind="short_ped_clear",
                    interval="ped clearance",
                    minimums=self._ped,
                )
            if new in _GO and old not in _GO:
                out += self._red_clearance(t, ch, new)
        # bookkeeping
        if old == _S.Y and new == _S.R:
            track.red_from = t
            track.red_need = self._red.get(ch, 0.0)
        elif new in _NON_RED or arrow:
            track.red_from = None
        track.state = new
        track.since = t
        track.need = self._need_for(ch, new)
        track.arrow_end = new == _S.Y and track.arrow
        track.arrow = arrow
        return out

    def _short(
        self,
        t: float,
        ch: int,
        track: _Channel,
        *,
        kind: str,
        interval: str,
        minimums: Mapping[int, float],
    ) -> list[Finding]:
        """A yellow or ped clearance ending before its minimum (the smaller of the one when
        it began and the one now)."""
        lasted = t - track.since
        need = min(track.need, minimums.get(ch, track.need))
        if lasted >= need - self._tol:
            return []
        detail = f"{interval} lasted {lasted:.2f} s, minimum {need:.2f} s"
        return [Finding(t, kind, (ch,), detail=detail)]

    def _red_clearance(
        self, t: float, ch: int, new: ChannelState, skip: frozenset[int] = frozenset()
    ) -> list[Finding]:
        out: list[Finding] = []
        for other in sorted(self._partners.get(ch, set()) - skip):
            track = self._channels.get(other)
            if track is None or track.red_from is None or track.state in _FLASHING:
                continue
            need = min(track.red_need, self._red.get(other, track.red_need))
            red = t - track.red_from
            if red < need - self._tol:
                out.append(
                    Finding(
                        t,
                        "short_red_clear",
                        (ch, other),
                        detail=f"{ch} turned {new.name} {red:.2f} s after {other} turned red "
                        f"(red clearance {need:.2f} s)",
                    )
                )
        return out


def check_timeline(
    frames: Iterable[tuple[float, Mapping[int, ChannelState]]],
    conflicts: Iterable[tuple[int, int]],
    min_yellow: Mapping[int, float],
    min_red_clear: Mapping[int, float],
    min_ped_clear: Mapping[int, float] | None = None,
    *,
    tolerance: float = 1e-3,
) -> list[Finding]:
    """Check ``(t, frame)`` pairs in time order; frames may be full or partial."""
    checker = ChannelChecker(
        conflicts, min_yellow, min_red_clear, min_ped_clear, tolerance=tolerance
    )
    findings: list[Finding] = []
    for t, frame in frames:
        findings += checker.feed(t, frame)
    return findings
