"""One logger setup for the whole kit.

Everything goes to stderr: a sidecar's stdout belongs to the plugin author, and whatever runs the sidecar (a
terminal, systemd, Kubernetes) collects stderr as its log. The level comes from ``PLUGIN_BRIDGE_LOG_LEVEL``
(``debug``, ``info``, ``warn``, ``error``; default ``info``), as in the TypeScript kit.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_ROOT = "plugin_bridge"


class _Formatter(logging.Formatter):
    """``<iso time> LEVEL [component] message key=value ...``: one line per record, like the TS kit."""

    def format(self, record: logging.LogRecord) -> str:
        level = "WARN" if record.levelno == logging.WARNING else record.levelname
        component = record.name.split(".", 1)[1] if "." in record.name else record.name
        line = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {level} [{component}] {record.getMessage()}"
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        for key, value in fields.items():
            if value is None:
                continue
            text = str(value)
            if not text or any(c.isspace() or c in '"=' for c in text):
                text = repr(text)
            line += f" {key}={text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _configure_root() -> logging.Logger:
    root = logging.getLogger(_ROOT)
    if not getattr(root, "_plugin_bridge_configured", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
        root.setLevel(_LEVELS.get(os.environ.get("PLUGIN_BRIDGE_LOG_LEVEL", "info").lower(), logging.INFO))
        # Our handler writes the line; the application's root logger should not write it twice.
        root.propagate = False
        root._plugin_bridge_configured = True  # type: ignore[attr-defined]
    return root


class KitLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose keyword arguments become ``key=value`` fields: ``log.info("create", execution=id)``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        known = {k: kwargs.pop(k) for k in ("exc_info", "stack_info", "stacklevel") if k in kwargs}
        fields = dict(kwargs)
        return msg, {**known, "extra": {"fields": fields}}

    # LoggerAdapter.log/info/... pass **kwargs to process(); nothing else to override.


def get_logger(component: str) -> KitLogger:
    """A logger tagged with ``component`` (such as the plugin's name), writing to stderr."""
    _configure_root()
    return KitLogger(logging.getLogger(f"{_ROOT}.{component}"), {})
