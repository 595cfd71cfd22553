"""Where a sidecar listens and how the host dials it.

Unix sockets are the default: no port to pick, no network exposure. TCP binds loopback unless told otherwise.
The announced endpoint is exactly what the host's grpc-js dials: ``unix:/abs/path`` or ``host:port``.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Endpoint:
    """``kind`` is "unix" (with ``path``) or "tcp" (with ``host`` and ``port``; port 0 picks a free one)."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0


_HOST_PORT = re.compile(r"^(?:\[([^\]]+)\]|([^:]*)):(\d+)$")


def parse_endpoint(text: str) -> Endpoint:
    """Parses ``unix:/path`` (also ``unix:///path``; relative paths are made absolute) or ``host:port`` /
    ``:port`` (which binds 127.0.0.1)."""
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f"endpoint {text!r} has no socket path")
        return Endpoint(kind="unix", path=os.path.abspath(path))
    match = _HOST_PORT.match(text)
    if not match:
        raise ValueError(f"endpoint {text!r} is neither unix:/path nor host:port")
    host = match.group(1) or match.group(2) or ""
    port = int(match.group(3))
    if port > 65535:
        raise ValueError(f"endpoint {text!r} has an invalid port")
    return Endpoint(kind="tcp", host=host or "127.0.0.1", port=port)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_address(endpoint: Endpoint) -> str:
    """The address grpcio binds."""
    return f"unix:{endpoint.path}" if endpoint.kind == "unix" else _host_port(endpoint.host, endpoint.port)


def dial_address(endpoint: Endpoint, bound_port: int) -> str:
    """The address a host dials, as announced. A wildcard bind is announced as loopback."""
    if endpoint.kind == "unix":
        return f"unix:{endpoint.path}"
    host = "127.0.0.1" if endpoint.host in ("0.0.0.0", "::") else endpoint.host
    return _host_port(host, bound_port)


def default_endpoint(instance_id: str) -> Endpoint:
    """A unix socket in the temp directory, named after the instance."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", instance_id)[:64]
    return Endpoint(kind="unix", path=os.path.join(tempfile.gettempdir(), f"plugin-bridge-{safe}.sock"))


def remove_stale_socket(path: str) -> None:
    """Removes a socket file left by a process that died, so bind does not fail. A socket that still accepts
    connections belongs to a live process: refuse rather than steal its address."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    live: Optional[bool]
    try:
        probe.connect(path)
        live = True
    except OSError:
        live = False
    finally:
        probe.close()
    if live:
        raise RuntimeError(f"{path} is in use by a live process")
    os.unlink(path)
