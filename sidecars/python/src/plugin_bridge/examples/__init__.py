"""Example plugins built on the kit; each runs with ``python -m plugin_bridge.examples.<name>``."""
