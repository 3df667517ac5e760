"""edgectl — the edge signal controller of a city traffic brain."""

__version__ = "0.1.0"
