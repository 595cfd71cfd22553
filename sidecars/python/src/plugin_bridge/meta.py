"""Resource meta is opaque bytes to the host; the kit lets a plugin return a JSON value instead and hands the
parsed value back on Get and Delete, so most plugins never touch bytes (the TypeScript kit does the same, so
meta written by one kit reads the same in another)."""

from __future__ import annotations

import json
from typing import Any

import grpc

from .errors import PluginError


def encode_resource_meta(encoding: str, value: Any) -> bytes:
    """Encodes what ``create`` returned. A mismatch with the declared encoding is the plugin's bug: INTERNAL."""
    if encoding == "bytes" or isinstance(value, (bytes, bytearray, memoryview)):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise PluginError(grpc.StatusCode.INTERNAL, 'create must return bytes when resource_meta is "bytes"')
        return bytes(value)
    if value is None:
        return b""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise PluginError(grpc.StatusCode.INTERNAL, f"create returned a value JSON cannot encode: {error}") from None


def decode_resource_meta(encoding: str, data: bytes) -> Any:
    """Decodes the ``resource_meta`` the host passed back: the parsed JSON, or the bytes when they are not JSON."""
    if encoding == "bytes":
        return data
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        # Not JSON: create returned bytes (passed through untouched); hand them back as they are.
        return bytes(data)
