"""The ``sql`` example plugin: ``python -m plugin_bridge.examples.sql``."""

from .plugin import QueryRunner, build_plugin

__all__ = ["QueryRunner", "build_plugin"]
