"""The pictures: a split monitor and Purdue coordination diagrams, as PNG files.

matplotlib (the ``report`` extra) is imported when a picture is drawn, never at import time,
so nothing that only reads or analyses a log needs it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgectl.atspm.analysis import Report
from edgectl.atspm.events import ReportError

__all__ = ["draw_purdue", "draw_split_monitor"]

_TERMINATION_COLOURS = {
    "gap_out": "#2ca02c",
    "max_out": "#d62728",
    "force_off": "#1f77b4",
    None: "#7f7f7f",
}


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise ReportError(
            "edgectl report draws with matplotlib, which is not installed: "
            "install the report extra, pip install 'edgectl[report]'"
        ) from exc
    return Figure(figsize=(width, height), layout="constrained")


def draw_split_monitor(report: Report, path: Path) -> Path:
    """Green time per phase per cycle, one panel per phase, coloured by how it ended."""
    phases = report.phases
    fig = _figure(10.0, 1.0 + 1.6 * len(phases))
    axes = fig.subplots(len(phases), 1, sharex=True, squeeze=False)[:, 0]
    for ax, phase in zip(axes, phases, strict=True):
        points = [
            (c, s) for c in report.cycles for s in c.services.get(phase, ()) if s.green is not None
        ]
        for term, colour in _TERMINATION_COLOURS.items():
            chosen = [(c, s) for c, s in points if s.termination == term]
            if chosen:
                ax.scatter(
                    [_when(c.start) for c, _ in chosen],
                    [s.green or 0.0 for _, s in chosen],
                    s=14,
                    color=colour,
                    label=(term or "unknown").replace("_", "-"),
                )
        ax.set_ylabel(f"phase {phase}\ngreen (s)")
        ax.set_ylim(0, 1.15 * max((s.green or 0.0 for _, s in points), default=1.0))
        ax.grid(alpha=0.3)
        if points:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small")
    axes[-1].set_xlabel("cycle start (UTC)")
    fig.suptitle(
        f"Split monitor — signal {report.signal}, {len(report.cycles)} cycles "
        f"(cycle start: {report.cycle_reference})"
    )
    fig.savefig(path, format="png", dpi=100)
    return path


def draw_purdue(report: Report, phase: int, path: Path) -> Path:
    """Arrivals at their time in the cycle over the phase's green / yellow / red bands."""
    pa = report.arrivals[phase]
    fig = _figure(10.0, 5.0)
    ax = fig.subplots()
    from matplotlib.collections import PolyCollection
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

    def band(colour: str, label: str, rects: list[tuple[float, float, float, float]]) -> None:
        """One collection of (x0, x1, y0, y1) rectangles: thousands of cycles stay fast."""
        if rects:
            verts = [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)] for x0, x1, y0, y1 in rects]
            ax.add_collection(
                PolyCollection(verts, facecolors=colour, edgecolors="none", label=label)
            )

    def num(t: float) -> float:
        return float(date2num(_when(t)))  # type: ignore[no-untyped-call]

    x = {c.index: (num(c.start), num(c.end)) for c in report.cycles}
    band("#f4b6b6", "red", [(*x[c.index], 0.0, c.length) for c in report.cycles])
    greens, yellows = [], []
    for c in report.cycles:
        for s in c.services.get(phase, ()):
            if s.yellow_start is None:
                continue
            yellow_end = s.red_clear_start or (s.yellow_start + 3.0)
            greens.append((*x[c.index], s.green_start - c.start, s.yellow_start - c.start))
            yellows.append((*x[c.index], s.yellow_start - c.start, yellow_end - c.start))
    band("#9fd89f", "green", greens)
    band("#f7e27a", "yellow", yellows)
    if pa.arrivals:  # at the time they happened, at their position in the cycle
        ax.scatter(
            [num(a.t) for a in pa.arrivals],
            [a.in_cycle for a in pa.arrivals],
            s=6,
            color="black",
            label="arrival",
            zorder=3,
        )
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlim(x[report.cycles[0].index][0], x[report.cycles[-1].index][1])
    ax.set_ylim(0, 1.02 * max(c.length for c in report.cycles))
    ax.set_ylabel("time in cycle (s)")
    ax.set_xlabel("time (UTC)")
    pog = pa.percent_on_green
    ratio = pa.platoon_ratio
    ax.set_title(
        f"Purdue coordination diagram — signal {report.signal}, phase {phase} "
        f"(detectors {', '.join(map(str, pa.detectors))})\n"
        + (
            f"{pog:.1f} % of {len(pa.arrivals)} arrivals on green"
            if pog is not None
            else "no arrivals"
        )
        + (f", platoon ratio {ratio:.2f}" if ratio is not None else "")
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.savefig(path, format="png", dpi=100)
    return path
