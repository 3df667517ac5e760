"""The daemon: the only place that combines field, sync and control (the composition root)."""
