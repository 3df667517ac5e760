"""The SUMO scenarios of the bench, built by ``python -m bench.scenarios.build``."""
