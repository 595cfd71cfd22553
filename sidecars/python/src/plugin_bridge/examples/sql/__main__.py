"""Runs the ``sql`` plugin as a sidecar (settings from the PLUGIN_BRIDGE_* environment)."""

from ... import serve
from .plugin import build_plugin

if __name__ == "__main__":
    serve(build_plugin())
