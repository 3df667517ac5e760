"""Tables and plot of the sensing matrix (``python -m bench.adaptive_zones``), from its rows.

A row is one run: ``scenario``, ``controller`` (``sumo:static|actuated|delay_based``,
``edgectl:adaptive``, ``edgectl:actuated``), ``sensing`` (``loops`` / ``zones`` /
``degraded`` for edgectl's controllers, ``None`` for SUMO's programs), ``seed`` and the
measurements: ``time_loss_s``, ``worst_approach_delay_s``, ``stops`` (mean per arrived
vehicle) and ``ok`` (valid, every vehicle arrived, no teleport). Rows written before the
matrix had ``edgectl:actuated`` name adaptive's sensing mode as the controller (``"loops"``
…); :func:`normalise` reads both.

Nothing here runs SUMO: :func:`report` and :func:`write_plot` redo the tables and the plot
of a saved JSON (``--from-json``). Every figure is a mean over the seeds of a scenario; a
ratio is a ratio of those means; geometric means are over scenarios.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONTROLLERS",
    "EDGECTL",
    "MODES",
    "PEERS",
    "Column",
    "columns",
    "normalise",
    "report",
    "write_plot",
]

PEERS = ("sumo:static", "sumo:actuated", "sumo:delay_based")
EDGECTL = ("edgectl:adaptive", "edgectl:actuated")
CONTROLLERS = (*EDGECTL, "edgectl:maxpressure")  # what a sensing run may be asked for
MODES = ("loops", "zones", "degraded")
REFERENCE = "sumo:actuated"
WORST_LIMIT = 1.10  # issue 19: no approach more than 10 % above SUMO actuated's worst


@dataclass(frozen=True, slots=True)
class Column:
    """One controller in one sensing mode (``sensing`` is None for SUMO's programs)."""

    controller: str
    sensing: str | None = None

    @property
    def is_peer(self) -> bool:
        return self.sensing is None

    @property
    def label(self) -> str:
        if self.sensing is None:
            return f"`{self.controller}`"
        return f"{self.controller.removeprefix('edgectl:')} {self.sensing}"


def normalise(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``controller`` and ``sensing`` as today's, whatever version wrote them."""
    out = []
    for r in rows:
        row = dict(r)
        if row["controller"] in MODES:  # before edgectl:actuated joined: adaptive's mode
            row["sensing"], row["controller"] = row["controller"], "edgectl:adaptive"
        row.setdefault("sensing", None)
        out.append(row)
    return out


def columns(rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    """The columns present, in report order: SUMO's programs, then each edgectl controller
    in its three sensing modes."""
    present = {Column(r["controller"], r["sensing"]) for r in rows}
    order = [Column(c) for c in PEERS] + [Column(c, m) for c in EDGECTL for m in MODES]
    known = [c for c in order if c in present]
    return known + sorted(present - set(order), key=lambda c: (c.controller, c.sensing or ""))


class _Means:
    """Means over seeds, per scenario and column."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows

    def get(self, scenario: str, col: Column, key: str = "time_loss_s") -> float | None:
        vals = [
            float(r[key])
            for r in self.rows
            if r["scenario"] == scenario
            and r["controller"] == col.controller
            and r["sensing"] == col.sensing
            and r.get(key) is not None
        ]
        return statistics.fmean(vals) if vals else None


def _geo(vals: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in vals))


def _cell(v: float | None, fmt: str = ".1f") -> str:
    return "–" if v is None else format(v, fmt)


def _ratio(v: float | None, ref: float | None) -> float | None:
    return v / ref if v is not None and ref else None


def _best_peer(means: _Means, scenario: str, cols: Sequence[Column]) -> Column | None:
    peers = [(v, c) for c in cols if c.is_peer and (v := means.get(scenario, c)) is not None]
    return min(peers, key=lambda p: p[0])[1] if peers else None


def report(raw: Iterable[Mapping[str, Any]]) -> str:
    """The markdown tables: mean time loss, ratios to SUMO actuated and to the best SUMO
    program (geometric means under them), worst approach, stops per vehicle."""
    rows = normalise(raw)
    cols = columns(rows)
    ours = [c for c in cols if not c.is_peer]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    means = _Means(rows)
    seeds = sorted({int(r["seed"]) for r in rows})

    def header(labels: Sequence[str], first: str = "scenario") -> list[str]:
        return ["| " + " | ".join([first, *labels]) + " |", "|---" * (1 + len(labels)) + "|"]

    lines = [
        f"Mean time loss per vehicle (s), mean over seeds {', '.join(map(str, seeds))}"
        f" ({len(rows)} runs):",
        "",
        *header([c.label for c in cols] + ["all valid"]),
    ]
    for name in scenarios:
        cells = [_cell(means.get(name, c)) for c in cols]
        ok = all(r["ok"] for r in rows if r["scenario"] == name)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'yes' if ok else '**no**'} |")

    lines += [
        "",
        f"Ratios of mean time loss, to `{REFERENCE}` / to the best SUMO program:",
        "",
        *header([c.label for c in ours] + ["best SUMO"]),
    ]
    to_ref: dict[Column, list[float]] = {c: [] for c in ours}
    to_best: dict[Column, list[float]] = {c: [] for c in ours}
    for name in scenarios:
        ref = means.get(name, Column(REFERENCE))
        best = _best_peer(means, name, cols)
        best_v = means.get(name, best) if best is not None else None
        cells = []
        for c in ours:
            v = means.get(name, c)
            a, b = _ratio(v, ref), _ratio(v, best_v)
            if a is not None:
                to_ref[c].append(a)
            if b is not None:
                to_best[c].append(b)
            cells.append(f"{_cell(a, '.2f')} / {_cell(b, '.2f')}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {best.label if best else '–'} |")
    geo = [
        f"{_cell(_geo(to_ref[c]) if to_ref[c] else None, '.2f')}"
        f" / {_cell(_geo(to_best[c]) if to_best[c] else None, '.2f')}"
        for c in ours
    ]
    lines.append("| **geometric mean** | " + " | ".join(geo) + " | |")

    lines += [
        "",
        "Worst approach: mean delay on the worst signalised approach of each run (s), mean over"
        f" seeds; in brackets the ratio to `{REFERENCE}`'s (bold above {WORST_LIMIT:.2f}):",
        "",
        *header([c.label for c in cols]),
    ]
    for name in scenarios:
        ref = means.get(name, Column(REFERENCE), "worst_approach_delay_s")
        cells = []
        for c in cols:
            v = means.get(name, c, "worst_approach_delay_s")
            r = None if c.is_peer else _ratio(v, ref)
            text = _cell(v)
            if r is not None:
                shown = f"{r:.2f}"
                text += f" (**{shown}**)" if r > WORST_LIMIT else f" ({shown})"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "Stops per arrived vehicle, mean over seeds:",
        "",
        *header([c.label for c in cols]),
    ]
    for name in scenarios:
        cells = [_cell(means.get(name, c, "stops"), ".2f") for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_PEER_GREYS = ("#bdbdbd", "#8c8c8c", "#5a5a5a")
_FAMILIES = {
    "edgectl:adaptive": ("#08519c", "#3182bd", "#9ecae1"),
    "edgectl:actuated": (
        "#a63603",
        "#e6550d",
        "#fdae6b",
    ),
}


def _colour(col: Column, k: int) -> str:
    if col.is_peer:
        return _PEER_GREYS[k % len(_PEER_GREYS)]
    family = _FAMILIES.get(col.controller, ("#31a354", "#74c476", "#c7e9c0"))
    mode = MODES.index(col.sensing) if col.sensing in MODES else 0
    return family[mode]


def write_plot(raw: Iterable[Mapping[str, Any]], png: Path) -> Path:
    """Grouped bars per scenario and column: mean time loss (top) and the worst approach's
    mean delay (bottom); SUMO's programs hatched. Written with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = normalise(raw)
    cols = columns(rows)
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    means = _Means(rows)
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.6 * len(scenarios) + 3.0), 8.0))
    width = 0.84 / max(1, len(cols))
    panels = (
        ("time_loss_s", "mean time loss per vehicle (s)"),
        ("worst_approach_delay_s", "worst approach: mean delay (s)"),
    )
    peers = [c for c in cols if c.is_peer]
    colours = {c: _colour(c, peers.index(c) if c.is_peer else 0) for c in cols}
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for i, c in enumerate(cols):
            xs = [k + (i - (len(cols) - 1) / 2) * width for k in range(len(scenarios))]
            ys = [means.get(name, c, key) or 0.0 for name in scenarios]
            ax.bar(
                xs,
                ys,
                width,
                color=colours[c],
                edgecolor="black",
                linewidth=0.3,
                hatch="//" if c.is_peer else None,
                label=c.label.strip("`"),
            )
        ax.set_xticks(range(len(scenarios)), scenarios)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    seeds = sorted({int(r["seed"]) for r in rows})
    axes[0].set_title(
        "SUMO's programs (Webster-timed) and edgectl on loops / zones / degraded zones"
        f" ({'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))})",
        fontsize=10,
    )
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=min(len(cols), 5), fontsize=8)
    fig.tight_layout(rect=(0.0, 0.015 + 0.03 * math.ceil(len(cols) / 5), 1.0, 1.0))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
