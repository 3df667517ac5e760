"""The whole suite: edgectl's own pytest plugin (broker fixtures, leak checks, ``--target``)."""

pytest_plugins = ["edgectl.testing.pytest_plugin"]
