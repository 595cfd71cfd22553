"""The conformance reference plugin: ``python -m plugin_bridge.conformance`` (``CONFORMANCE_KIND=sync`` or
``core`` for the sync or core variant)."""

from .plugin import LANGUAGE, act, build_plugin

__all__ = ["LANGUAGE", "act", "build_plugin"]
